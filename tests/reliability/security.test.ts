/**
 * Secrets never reach events, dead letters or logs; ReAct tools come only from the consumers' registry;
 * Kafka TLS/SASL settings pass from the config file through logConfigOf to kafkajs.
 */
import { writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../../app/config.ts";
import { logConfigOf } from "../../app/log.ts";
import { startPipeline } from "../../processors/pipeline/pipeline.ts";
import { startWorkerPool } from "../../processors/workers/pool.ts";
import { findPython } from "../../processors/workers/python.ts";
import { startStepRunner } from "../../processors/workers/step-runner.ts";
import { dspy, program, v } from "../../programs/index.ts";
import { createClient } from "../../streams/client.ts";
import type { LogRecord } from "../../streams/log.ts";
import { openLog } from "../../streams/open.ts";
import { allTopics } from "../../streams/topics.ts";
import { temporaryFolder } from "../support/backends.ts";

const SECRET = "sk-test-SECRET-7c1f0e9d2b4a6c8e0f1a";
/** Any part of the key long enough to identify it counts as a leak. */
const leaks = (text: string) => text.includes(SECRET) || text.includes(SECRET.slice(8));

/** Kafka clients built by the log, with their configuration (the real kafkajs still runs). */
const kafkaConfigs = vi.hoisted(() => [] as unknown[]);
vi.mock("kafkajs", async (importOriginal) => {
  const actual = await importOriginal<typeof import("kafkajs")>();
  class RecordingKafka extends actual.Kafka {
    constructor(config: ConstructorParameters<typeof actual.Kafka>[0]) {
      kafkaConfigs.push(config);
      super(config);
    }
  }
  return { ...actual, Kafka: RecordingKafka };
});

/** Everything written to stdout and stderr (the Python workers' stderr is forwarded there) and the console. */
const captureOutput = () => {
  const chunks: string[] = [];
  const keep = (chunk: unknown) => {
    chunks.push(String(chunk));
    return true;
  };
  const spies = [
    vi.spyOn(process.stderr, "write").mockImplementation(keep),
    vi.spyOn(process.stdout, "write").mockImplementation(keep),
    ...(["log", "info", "warn", "error", "debug"] as const).map((level) =>
      vi.spyOn(console, level).mockImplementation((...args) => keep(args.map(String).join(" "))),
    ),
  ];
  return { text: () => chunks.join(""), restore: () => spies.forEach((spy) => void spy.mockRestore()) };
};

/** The chat completion of an OpenAI-style provider, quoting the key back in fields besides the text. */
const answerQuotingTheKey = (authorization: string | undefined) =>
  JSON.stringify({
    id: `chatcmpl-${authorization}`,
    object: "chat.completion",
    created: 1,
    model: "gpt-4o",
    system_fingerprint: authorization,
    choices: [
      {
        index: 0,
        finish_reason: "stop",
        message: { role: "assistant", content: "[[ ## answer ## ]]\nParis\n\n[[ ## completed ## ]]" },
      },
    ],
    usage: { prompt_tokens: 50, completion_tokens: 9, total_tokens: 59 },
  });

/**
 * A provider endpoint that refuses the key and quotes it back in its error, as real providers do; asked
 * for `gpt-4o`, it answers (quoting the key in the response's other fields).
 */
const startEchoingProvider = async (): Promise<{ server: Server; base: string }> => {
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const asked = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as { model?: string };
      if (asked.model === "gpt-4o") {
        response
          .writeHead(200, { "content-type": "application/json" })
          .end(answerQuotingTheKey(request.headers.authorization));
        return;
      }
      const body = JSON.stringify({
        error: {
          message: `Incorrect API key provided: ${request.headers.authorization}`,
          type: "invalid_request_error",
          code: "invalid_api_key",
        },
      });
      response.writeHead(401, { "content-type": "application/json" }).end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1` };
};

const found = findPython();
if (!found.python) console.warn(`skipping the Python part of the security tests: ${found.reason}`);

describe.skipIf(!found.python)("secrets and tools, through the pipeline and Python workers", () => {
  let provider: Awaited<ReturnType<typeof startEchoingProvider>>;
  beforeAll(async () => {
    provider = await startEchoingProvider();
  });
  afterAll(() => provider?.server.close());

  it("a request with an API key in the workers' environment leaves the key in no event, dead letter or log; an unregistered tool is refused", async () => {
    const log = await openLog({
      backend: "embedded",
      path: join(temporaryFolder("dspex-secret-"), "log.db"),
    });
    const forwardLogs = process.env.DSPEX_WORKER_LOGS;
    process.env.DSPEX_WORKER_LOGS = "1";
    const output = captureOutput();
    const pool = startWorkerPool({
      python: found.python!,
      workers: 1,
      env: {
        ...process.env,
        OPENAI_API_KEY: SECRET,
        OPENAI_API_BASE: provider.base,
        OPENAI_BASE_URL: provider.base,
        DSPEX_LOG_LEVEL: "DEBUG",
      },
    });
    const runner = startStepRunner(log, pool);
    const pipeline = startPipeline(log);
    try {
      await Promise.all([pool.ready(), pipeline.ready]);
      const client = createClient(log);
      await client.register(
        program("hosted")
          .input("question: str")
          .variable("model", v.model(["openai/gpt-4o-mini"]))
          .stage("answer", dspy.predict("question -> answer"))
          .output("answer", "answer.answer")
          .build(),
      );
      await client.register(
        program("hosted-answered")
          .input("question: str")
          .variable("model", v.model(["openai/gpt-4o"]))
          .stage("answer", dspy.predict("question -> answer"))
          .output("answer", "answer.answer")
          .build(),
      );
      await client.register(
        program("tooled")
          .input("question: str")
          .variable("model", v.model(["dspex/test"]))
          .stage("answer", dspy.react("question -> answer", { tools: ["calculator", "os.system"] }))
          .output("answer", "answer.answer")
          .build(),
      );
      const hosted = await client.execute(
        { programId: "hosted", inputs: { question: "What is the capital of France?" } },
        { timeoutMs: 120_000 },
      );
      const answered = await client.execute(
        { programId: "hosted-answered", inputs: { question: "What is the capital of France?" } },
        { timeoutMs: 120_000 },
      );
      const tooled = await client.execute(
        { programId: "tooled", inputs: { question: "2+2?" }, policy: { maxRetries: 0 } },
        { timeoutMs: 120_000 },
      );

      expect(hosted.type).toBe("ExecutionFailed");
      const hostedText = JSON.stringify(hosted);
      expect(hostedText).toMatch(/Incorrect API key provided: Bearer \*\*\*/); // the provider was reached
      expect(answered.type).toBe("ExecutionCompleted");
      expect(tooled.type).toBe("ExecutionFailed");
      expect(JSON.stringify(tooled)).toMatch(/unknown tool 'os\.system' \(known: calculator, search\)/);

      // Every record of every topic, dead letters included: values, keys and headers.
      const records: LogRecord[] = [];
      for (const topic of allTopics) records.push(...(await log.read(topic)));
      expect(records.length).toBeGreaterThan(10);
      const written = records
        .map((r) => `${r.key} ${JSON.stringify(r.headers)} ${r.value.toString("utf8")}`)
        .join("\n");
      expect(written).toContain("StepFailed");
      // The answered call is recorded (prompt and completion) with the rest of the log.
      expect(written).toMatch(
        /"lmCalls":\[\{"model":"openai\/gpt-4o","messages":.*What is the capital of France\?/,
      );
      expect(written).toContain('"completion":"[[ ## answer ## ]]\\nParis');
      expect(leaks(written)).toBe(false);
      const logs = output.text();
      expect(logs).toMatch(/\[py-0-0\].*openai\._base_client DEBUG/); // the worker's HTTP client logs were read
      expect(leaks(logs)).toBe(false);
    } finally {
      output.restore();
      if (forwardLogs === undefined) delete process.env.DSPEX_WORKER_LOGS;
      else process.env.DSPEX_WORKER_LOGS = forwardLogs;
      await pipeline.stop();
      await runner.stop();
      await pool.close();
      await log.close();
    }
  }, 240_000);
});

describe("Kafka TLS and SASL settings", () => {
  const password = "hunter2-kafka-password-9e8d7c";
  const configFile = (kafka: object) => {
    const path = join(temporaryFolder("dspex-sasl-"), "dspex.config.json");
    writeFileSync(path, JSON.stringify({ backend: "kafka", kafka }));
    return path;
  };

  it("pass from the config file through logConfigOf to kafkajs, the password from its variable", async () => {
    const sasl = { mechanism: "scram-sha-512", username: "dspex", passwordEnv: "DSPEX_TEST_SASL_PASSWORD" };
    const path = configFile({ brokers: ["127.0.0.1:1"], ssl: true, sasl });
    const logConfig = logConfigOf(loadConfig(path, {}, true));
    expect(logConfig).toMatchObject({ backend: "kafka", ssl: true, sasl });
    expect(JSON.stringify(logConfig)).not.toContain(password); // the file names the variable only

    vi.stubEnv("DSPEX_TEST_SASL_PASSWORD", password);
    const { KafkaLog } = await import("../../streams/kafka/log.ts");
    const logged: string[] = [];
    kafkaConfigs.length = 0;
    const log = new KafkaLog(logConfig as never, {
      logger: {
        log: (level, message, extra) => void logged.push(`${level} ${message} ${JSON.stringify(extra)}`),
      },
    });
    expect(kafkaConfigs).toHaveLength(1);
    expect(kafkaConfigs[0]).toMatchObject({
      brokers: ["127.0.0.1:1"],
      ssl: true,
      sasl: { mechanism: "scram-sha-512", username: "dspex", password },
    });
    // A failed connection says where it tried, never the password.
    const error = await log.connect().then(
      () => undefined,
      (e: Error) => e,
    );
    vi.unstubAllEnvs();
    expect(error?.message).toMatch(/cannot reach Kafka at 127\.0\.0\.1:1/);
    expect(`${error?.message} ${String(error?.cause)} ${logged.join("\n")}`).not.toContain(password);
  }, 60_000);

  it("refuse a password in the config file and name the missing variable without a value", async () => {
    expect(() =>
      loadConfig(
        configFile({ brokers: ["b:1"], sasl: { mechanism: "plain", username: "u", password } }),
        {},
        true,
      ),
    ).toThrow(/sasl: Unrecognized key: "password"/);
    const { saslOptions } = await import("../../streams/kafka/config.ts");
    expect(() =>
      saslOptions({ mechanism: "plain", username: "u", passwordEnv: "DSPEX_UNSET_VARIABLE" }, {}),
    ).toThrow(
      "Kafka SASL: the password variable DSPEX_UNSET_VARIABLE is not set (sasl.passwordEnv names it)",
    );
  });
});
