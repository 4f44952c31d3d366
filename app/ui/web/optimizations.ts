import type { OptimizationView, TrialView } from "../../../projections/index.ts";
import { Chart } from "./chart.ts";
import { score, short, shown, time } from "./format.ts";
import { html } from "./html.ts";
import { useLive } from "./live.ts";

type OptimizationRow = Omit<OptimizationView, "trials" | "bestConfig"> & { trialCount: number };

const models = ["optimizations", "traces"] as const;

export const OptimizationsPage = () => {
  const rows = useLive<OptimizationRow[]>("/api/optimizations", models);
  if (rows === undefined) return html`<p>loading…</p>`;
  if (!rows || rows.length === 0) return html`<p class="empty">no optimizations on this log yet</p>`;
  return html`<table class="list" data-testid="optimizations">
    <thead><tr><th>optimization</th><th>program</th><th>optimizer</th><th>status</th><th>started</th><th>trials</th><th>dev score</th><th>adopted</th><th>LM calls</th></tr></thead>
    <tbody>
      ${rows.map(
        (o) => html`<tr key=${o.optimizationId}>
          <td><a href=${`#/optimizations/${encodeURIComponent(o.optimizationId)}`}>${o.optimizationId.slice(0, 8)}</a></td>
          <td>${o.programId ?? "—"}</td>
          <td>${o.optimizer ?? "—"}</td>
          <td><span class="status ${o.status}">${o.status}</span></td>
          <td>${time(o.startedAt)}</td>
          <td>${o.trialCount}${o.plannedTrials ? ` / ${o.plannedTrials}` : ""}</td>
          <td>${score(o.baselineScore)} → ${score(o.bestScore)}</td>
          <td>${o.accepted === undefined ? "—" : o.accepted ? "yes" : "no"}</td>
          <td>${o.calls ?? "—"}</td>
        </tr>`,
      )}
    </tbody>
  </table>`;
};

/** The variable's last name: `support-triage.classify.demos` → `classify.demos`. */
const nameOf = (variableId: string, programId: string | undefined) =>
  programId && variableId.startsWith(`${programId}.`) ? variableId.slice(programId.length + 1) : variableId;

/** One line per variable a trial set: demos counted, text shortened. */
const summary = (overrides: Record<string, unknown>, programId: string | undefined) =>
  Object.entries(overrides).map(([id, value]) => {
    const name = nameOf(id, programId);
    if (Array.isArray(value)) return `${name}: ${value.length} demos`;
    return `${name}: ${short(typeof value === "string" ? value : JSON.stringify(value), 60)}`;
  });

const Configuration = ({ config, programId }: { config: Record<string, unknown>; programId?: string }) =>
  html`<div class="configuration">
    ${Object.entries(config).map(
      ([id, value]) => html`<div class="block" key=${id}>
        <h4>${nameOf(id, programId)}</h4>
        ${
          Array.isArray(value)
            ? html`<ol class="demos">${value.map((demo, i) => html`<li key=${i}><pre>${shown(demo)}</pre></li>`)}</ol>`
            : html`<pre>${shown(value)}</pre>`
        }
      </div>`,
    )}
  </div>`;

interface OptimizationDetail {
  optimization: OptimizationView;
  winnerTrial?: number;
  winnerExecutions: string[];
}

const cumulativeCalls = (trials: TrialView[]) => {
  let total = 0;
  return trials.map((t) => (total += t.calls ?? 0));
};

export const OptimizationPage = ({ id }: { id: string }) => {
  const detail = useLive<OptimizationDetail>(`/api/optimizations/${encodeURIComponent(id)}`, models);
  if (detail === undefined) return html`<p>loading…</p>`;
  if (detail === null) return html`<p class="empty">no optimization ${id} on this log</p>`;
  const { optimization: o, winnerTrial, winnerExecutions } = detail;
  const scored = o.trials.filter((t) => typeof t.score === "number");
  const calls = cumulativeCalls(scored);
  return html`<section data-testid="optimization">
    <h2>optimization ${o.optimizationId} <span class="status ${o.status}">${o.status}</span></h2>
    <div class="meta">
      <span>program ${o.programId ?? "—"}</span>
      <span>${o.optimizer ?? "?"}</span>
      <span>${o.trials.length} trials${o.plannedTrials ? ` of ${o.plannedTrials} planned` : ""}</span>
      <span>${o.calls ?? calls.at(-1) ?? 0} LM calls${o.plannedCalls ? ` (planned ${o.plannedCalls})` : ""}</span>
      <span>dev ${score(o.baselineScore)} → ${score(o.bestScore)}</span>
      ${o.accepted === undefined ? null : html`<span class=${o.accepted ? "adopted" : "kept"}>${o.accepted ? "adopted" : "not adopted: the baseline is kept"}</span>`}
    </div>
    ${o.reason ? html`<div class="error">${o.reason}</div>` : null}
    <div class="charts">
      <${Chart} title="score by trial" xLabel="trial" yLabel="score" xs=${scored.map((t) => t.trial)} ys=${scored.map((t) => t.score!)} testId="score-by-trial" />
      <${Chart} title="score by LM calls spent" xLabel="LM calls" yLabel="score" xs=${calls} ys=${scored.map((t) => t.score!)} testId="score-by-calls" />
    </div>
    <p class="note">Each trial is scored on its own examples (a bootstrap trial on one training example, a search trial on the devset): the baseline and the final trial are dev scores.</p>
    ${
      o.bestConfig && Object.keys(o.bestConfig).length > 0
        ? html`<h3>winner${winnerTrial !== undefined ? ` (trial ${winnerTrial})` : ""}</h3>
          <${Configuration} config=${o.bestConfig} programId=${o.programId} />
          ${
            winnerExecutions.length > 0
              ? html`<p>its prompts, as its dev evaluation ran them: ${winnerExecutions.map(
                  (e) =>
                    html`<a key=${e} class="pill" href=${`#/executions/${encodeURIComponent(e)}`}>${e.slice(0, 8)}</a> `,
                )}</p>`
              : null
          }`
        : null
    }
    <h3>trials</h3>
    <table class="list" data-testid="trials">
      <thead><tr><th>trial</th><th>phase</th><th>examples</th><th>score</th><th>LM calls</th><th>configuration</th></tr></thead>
      <tbody>
        ${o.trials.map(
          (t) => html`<tr key=${t.trial} class=${t.trial === winnerTrial ? "winner" : ""}>
            <td>${t.trial}</td><td>${t.phase}</td><td>${t.examples}</td><td>${score(t.score)}</td><td>${t.calls ?? "—"}</td>
            <td>
              <details>
                <summary>${summary(t.overrides, o.programId).join(" · ") || "the registry's configuration"}</summary>
                <${Configuration} config=${t.overrides} programId=${o.programId} />
              </details>
            </td>
          </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
};
