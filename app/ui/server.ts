import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createRequire } from "node:module";
import { isIP } from "node:net";
import { join } from "node:path";
import { bufferTime, filter } from "rxjs";
import { trialEvaluationId } from "../../processors/optimizers/history.ts";
import type { VariableState } from "../../programs/registry.ts";
import {
  attemptsOf,
  type DeadLetterView,
  deadLettersProjection,
  type ExecutionView,
  executionsProjection,
  type OptimizationView,
  optimizationsProjection,
  projectionRunner,
  type TraceView,
  tracesProjection,
  variablesProjection,
  winnerTrialOf,
} from "../../projections/index.ts";
import { groupLag } from "../../streams/lag.ts";
import type { EventLog } from "../../streams/log.ts";
import { groupInputs } from "../services.ts";

/** The read models the UI shows, folded from the log and followed live. */
export const uiModels = [
  executionsProjection,
  tracesProjection,
  optimizationsProjection,
  variablesProjection,
  deadLettersProjection,
];

export interface UiOptions {
  log: EventLog;
  /** 127.0.0.1 unless told; another interface only with `allowRemote`. */
  host?: string;
  /** 0: any free port. */
  port?: number;
  allowRemote?: boolean;
}

export interface RunningUi {
  url: string;
  close(): Promise<void>;
}

const isLoopback = (host: string) =>
  host === "localhost" || host === "::1" || (isIP(host) === 4 && host.startsWith("127."));

const listLimit = 500;

const byNewest = <T>(items: Iterable<T>, at: (item: T) => string | undefined): T[] =>
  [...items].sort((a, b) => (at(b) ?? "").localeCompare(at(a) ?? ""));

/** The page: one script, one style sheet of uPlot's, the rest of the style here. */
const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dspex</title>
<link rel="stylesheet" href="/uplot.css">
<link rel="stylesheet" href="/app.css">
</head>
<body>
<div id="app">loading…</div>
<script type="module" src="/app.js"></script>
</body>
</html>`;

const here = import.meta.dirname;

/** The front end bundled from app/ui/web with esbuild, once per process (no CDN, nothing prebuilt). */
const bundle = async (): Promise<{ js: string; css: string; uplotCss: string }> => {
  const { build } = await import("esbuild");
  const result = await build({
    entryPoints: [join(here, "web", "main.ts")],
    bundle: true,
    write: false,
    format: "esm",
    target: "es2022",
    minify: true,
    legalComments: "none",
  });
  const require = createRequire(import.meta.url);
  return {
    js: result.outputFiles[0]!.text,
    css: readFileSync(join(here, "web", "style.css"), "utf8"),
    uplotCss: readFileSync(require.resolve("uplot/dist/uPlot.min.css"), "utf8"),
  };
};

const send = (response: ServerResponse, status: number, type: string, body: string) => {
  response.writeHead(status, {
    "content-type": type,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    // Event payloads and LM outputs are untrusted text: no inline script may run, whatever slips through.
    "content-security-policy":
      "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
  });
  response.end(body);
};

const json = (response: ServerResponse, body: unknown) =>
  send(response, 200, "application/json; charset=utf-8", JSON.stringify(body));

/** What an executions row needs (the trace is fetched when one is opened). */
const executionRow = (view: ExecutionView) => ({
  executionId: view.executionId,
  programId: view.programId,
  sessionId: view.sessionId,
  status: view.status,
  startedAt: view.startedAt,
  finishedAt: view.finishedAt,
  durationMs: view.durationMs,
  stages: Object.keys(view.stages).length,
  error: view.error?.message,
});

const optimizationRow = (view: OptimizationView) => {
  const { trials, bestConfig: _, ...rest } = view;
  return { ...rest, trialCount: trials.length };
};

/**
 * Serves `dspex ui`: the page, its bundle, and JSON read models folded from the log; `/api/live` tells
 * the page (server-sent events) which read models changed, and it fetches them again.
 */
export const startUi = async (options: UiOptions): Promise<RunningUi> => {
  const host = options.host ?? "127.0.0.1";
  if (!isLoopback(host) && !options.allowRemote)
    throw new Error(
      `dspex ui serves on a loopback address only (it shows prompts and outputs); ${host} is not one: pass --allow-remote to serve it there`,
    );
  const { log } = options;
  const runner = projectionRunner({ name: "ui", log, projections: uiModels, decode: "trusted" });
  await runner.start();
  const live = new Set<ServerResponse>();
  const following = runner.follow();
  // A tail from the end misses what is appended while it joins (a Kafka consumer takes seconds): while a
  // page is open, it is never more than this behind.
  const sweep = setInterval(() => {
    if (live.size > 0) void runner.catchUp().catch(() => undefined);
  }, 2_000);
  const assets = await bundle();
  const state = <T>(name: string) => runner.state<T>(name);
  const changes = runner.changes$
    .pipe(
      bufferTime(250),
      filter((batch) => batch.length > 0),
    )
    .subscribe((batch) => {
      const message = `data: ${JSON.stringify({ changed: [...new Set(batch.map((c) => c.projection))] })}\n\n`;
      for (const client of live) client.write(message);
    });

  const lag = async () => {
    const rows = [];
    for (const [group, topics] of Object.entries(groupInputs)) {
      const lags = await groupLag(log, group, topics);
      if (lags.every((l) => l.committed === 0)) continue;
      rows.push({ group, behind: lags.reduce((sum, l) => sum + l.lag, 0) });
    }
    return rows;
  };

  const routes: [RegExp, (match: RegExpMatchArray) => unknown][] = [
    [
      /^\/api\/overview$/,
      async () => {
        const executions = [...state<ExecutionView>(executionsProjection.name).values()];
        const count = (status: string) => executions.filter((e) => e.status === status).length;
        return {
          backend: log.backend,
          events: runner.eventsApplied,
          executions: {
            running: count("running"),
            completed: count("completed"),
            failed: count("failed"),
            rejected: count("rejected"),
          },
          optimizations: state(optimizationsProjection.name).size,
          variables: state(variablesProjection.name).size,
          deadLetters: state(deadLettersProjection.name).size,
          lag: await lag(),
        };
      },
    ],
    [
      /^\/api\/executions$/,
      () =>
        byNewest(state<ExecutionView>(executionsProjection.name).values(), (e) => e.startedAt ?? e.finishedAt)
          .slice(0, listLimit)
          .map(executionRow),
    ],
    [
      /^\/api\/executions\/([^/]+)$/,
      ([, id]) => {
        const execution = state<ExecutionView>(executionsProjection.name).get(decodeURIComponent(id!));
        if (!execution) return undefined;
        const trace = state<TraceView>(tracesProjection.name).get(execution.executionId);
        return { execution, trace: trace && { ...trace, attempts: attemptsOf(trace) } };
      },
    ],
    [
      /^\/api\/optimizations$/,
      () =>
        byNewest(state<OptimizationView>(optimizationsProjection.name).values(), (o) => o.startedAt).map(
          optimizationRow,
        ),
    ],
    [
      /^\/api\/optimizations\/([^/]+)$/,
      ([, id]) => {
        const optimization = state<OptimizationView>(optimizationsProjection.name).get(
          decodeURIComponent(id!),
        );
        if (!optimization) return undefined;
        return {
          optimization,
          winnerTrial: winnerTrialOf(optimization)?.trial,
          winnerExecutions: finalExecutions(optimization),
        };
      },
    ],
    [
      /^\/api\/variables$/,
      () =>
        [...state<VariableState>(variablesProjection.name).values()].sort((a, b) =>
          a.variableId.localeCompare(b.variableId),
        ),
    ],
    [
      /^\/api\/dead-letters$/,
      () =>
        byNewest(state<DeadLetterView>(deadLettersProjection.name).values(), (d) => d.at).slice(0, listLimit),
    ],
  ];

  /** A few executions of the winner's final evaluation: what its prompts looked like. */
  const finalExecutions = (optimization: OptimizationView) => {
    const winner = winnerTrialOf(optimization);
    if (!winner) return [];
    const evaluationId = trialEvaluationId(optimization.optimizationId, winner.trial);
    return [...state<TraceView>(tracesProjection.name).values()]
      .filter((t) => t.evaluationId === evaluationId)
      .slice(0, 5)
      .map((t) => t.executionId);
  };

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const path = new URL(request.url ?? "/", "http://ui").pathname;
    if (request.method !== "GET") return send(response, 405, "text/plain", "only GET");
    if (path === "/" || path === "/index.html") return send(response, 200, "text/html; charset=utf-8", page);
    if (path === "/app.js") return send(response, 200, "text/javascript; charset=utf-8", assets.js);
    if (path === "/app.css") return send(response, 200, "text/css; charset=utf-8", assets.css);
    if (path === "/uplot.css") return send(response, 200, "text/css; charset=utf-8", assets.uplotCss);
    if (path === "/api/live") {
      response.writeHead(200, {
        "content-type": "text/event-stream",
        "cache-control": "no-store",
        connection: "keep-alive",
      });
      response.write(": live\n\n");
      live.add(response);
      request.on("close", () => live.delete(response));
      return;
    }
    for (const [pattern, route] of routes) {
      const match = path.match(pattern);
      if (!match) continue;
      await runner.catchUp();
      const body = await route(match);
      return body === undefined
        ? send(response, 404, "application/json", '{"error":"not found"}')
        : json(response, body);
    }
    send(response, 404, "text/plain", "not found");
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((error: Error) => {
      if (!response.headersSent)
        send(response, 500, "application/json", JSON.stringify({ error: error.message }));
      else response.end();
    });
  });
  await new Promise<void>((listening, fail) => {
    server.once("error", fail);
    server.listen(options.port ?? 0, host, () => listening());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  const shown = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}/`,
    close: async () => {
      clearInterval(sweep);
      changes.unsubscribe();
      following.unsubscribe();
      for (const client of live) client.end();
      live.clear();
      server.closeAllConnections();
      await new Promise<void>((closed) => server.close(() => closed()));
    },
  };
};
