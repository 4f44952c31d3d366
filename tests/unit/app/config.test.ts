import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../../app/config.ts";
import { logConfigOf } from "../../../app/log.ts";
import { reoptimizationPolicies, workerEnvironment } from "../../../app/services.ts";
import { temporaryFolder } from "../../support/backends.ts";

const configFile = (content: string) => {
  const path = join(temporaryFolder("dspex-config-"), "dspex.config.json");
  writeFileSync(path, content);
  return path;
};

describe("the configuration", () => {
  it("defaults to the embedded log with no file and no environment", () => {
    const config = loadConfig("/nonexistent/dspex.config.json", {});
    expect(config.backend).toBe("embedded");
    expect(config.embedded.path).toBe(".dspex/log.db");
    expect(config.python.workers).toBe(2);
  });

  it("lets the environment override the file", () => {
    const path = configFile(JSON.stringify({ backend: "embedded", python: { workers: 4 } }));
    const config = loadConfig(path, { DSPEX_BACKEND: "kafka", DSPEX_KAFKA_BROKERS: "a:1, b:2" });
    expect(config.backend).toBe("kafka");
    expect(config.kafka.brokers).toEqual(["a:1", "b:2"]);
    expect(config.kafka.clientId).toBe("dspex");
    expect(config.python.workers).toBe(4);
  });

  it("records LM calls in full by default; the file or DSPEX_TRACE_LM keeps usage only, and the workers are told", () => {
    expect(loadConfig("/nonexistent/dspex.config.json", {}).trace.lmCalls).toBe("full");
    const usage = loadConfig(configFile(JSON.stringify({ trace: { lmCalls: "usage" } })), {});
    expect(usage.trace.lmCalls).toBe("usage");
    const fromEnv = loadConfig("/nonexistent/dspex.config.json", { DSPEX_TRACE_LM: "usage" });
    expect(fromEnv.trace.lmCalls).toBe("usage");
    expect(workerEnvironment(1, { DSPEX_TRACE_LM: "full" }, usage).DSPEX_TRACE_LM).toBe("usage");
    expect(() => loadConfig("/nonexistent/dspex.config.json", { DSPEX_TRACE_LM: "prompts" })).toThrow(
      /trace\.lmCalls/,
    );
  });

  it("names the field and the problem for a bad value", () => {
    const path = configFile(JSON.stringify({ backend: "redis", kafka: { brokers: ["nohost"] } }));
    expect(() => loadConfig(path, {})).toThrow(ConfigError);
    expect(() => loadConfig(path, {})).toThrow(/backend: .*kafka\.brokers\.0: a broker is host:port/s);
  });

  it("refuses unknown keys, which are usually typos", () => {
    const path = configFile(JSON.stringify({ pyhton: { workers: 2 } }));
    expect(() => loadConfig(path, {})).toThrow(/pyhton/);
  });

  it("says so when the file is not JSON", () => {
    const path = configFile("{ backend: embedded");
    expect(() => loadConfig(path, {})).toThrow(/is not valid JSON/);
  });

  it("fails when an explicit config file is missing", () => {
    expect(() => loadConfig("/nonexistent/x.json", {}, true)).toThrow(/not found/);
  });

  it("passes Kafka TLS and SASL settings through to the Kafka log, the password only by variable name", () => {
    const sasl = { mechanism: "scram-sha-512", username: "dspex", passwordEnv: "KAFKA_PASSWORD" };
    const path = configFile(
      JSON.stringify({ backend: "kafka", kafka: { brokers: ["k:9093"], ssl: true, sasl } }),
    );
    expect(logConfigOf(loadConfig(path, {}))).toMatchObject({
      backend: "kafka",
      brokers: ["k:9093"],
      clientId: "dspex",
      namespace: "",
      ssl: true,
      sasl,
    });
  });

  it("takes every setting of the Kafka log from the file, with the log's own defaults and checks", () => {
    const path = configFile(JSON.stringify({ backend: "kafka", kafka: { replicationFactor: 3 } }));
    const kafka = logConfigOf(loadConfig(path, {}));
    expect(kafka).toMatchObject({ replicationFactor: 3, defaultPartitions: 3, transactionTimeoutMs: 60_000 });
    const bad = configFile(JSON.stringify({ kafka: { replicationFactor: 0 } }));
    expect(() => loadConfig(bad, {})).toThrow(/kafka\.replicationFactor/);
    const unknown = configFile(JSON.stringify({ kafka: { replication: 3 } }));
    expect(() => loadConfig(unknown, {})).toThrow(/replication/);
  });

  it("takes a Kafka namespace from the file or DSPEX_KAFKA_NAMESPACE, keeping the default brokers", () => {
    const path = configFile(JSON.stringify({ backend: "kafka", kafka: { namespace: "team-a." } }));
    expect(loadConfig(path, {}).kafka).toMatchObject({ brokers: ["127.0.0.1:19092"], namespace: "team-a." });
    const fromEnv = loadConfig("/nonexistent/dspex.config.json", { DSPEX_KAFKA_NAMESPACE: "ci." });
    expect(logConfigOf({ ...fromEnv, backend: "kafka" })).toMatchObject({ namespace: "ci." });
    const bad = configFile(JSON.stringify({ kafka: { namespace: "no spaces" } }));
    expect(() => loadConfig(bad, {})).toThrow(/kafka\.namespace/);
  });

  it("reads the README's re-optimization policy, and its datasets relative to the working directory", () => {
    const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
    const block = /"reoptimize": \[[\s\S]*?\] \}/.exec(readme)?.[0];
    expect(block).toBeDefined();
    const folder = temporaryFolder("dspex-policy-");
    const example = JSON.stringify({
      id: "e1",
      inputs: { message: "hi" },
      expected: { category: "billing" },
    });
    for (const name of ["train.jsonl", "dev.jsonl"]) writeFileSync(join(folder, name), `${example}\n`);
    const config = loadConfig(configFile(`{ ${block}`), {});
    expect(config.reoptimize[0]).toMatchObject({ programId: "support-triage", threshold: 0.8, margin: 0.05 });
    const cwd = process.cwd();
    process.chdir(folder);
    try {
      const [policy] = reoptimizationPolicies(config);
      expect(policy).toMatchObject({ programId: "support-triage", threshold: 0.8, minExecutions: 50 });
      expect(policy!.request.trainset).toEqual([
        { id: "e1", inputs: { message: "hi" }, expected: { category: "billing" } },
      ]);
      expect(policy!.request.metric).toEqual({ name: "exact_match", field: "category", params: {} });
    } finally {
      process.chdir(cwd);
    }
  });

  it("refuses a re-optimization policy without its datasets, naming the field", () => {
    const path = configFile(JSON.stringify({ reoptimize: [{ programId: "p", threshold: 0.5 }] }));
    expect(() => loadConfig(path, {})).toThrow(/reoptimize\.0\.trainset/);
  });
});
