/**
 * A Kafka broker of a test's own, which it may stop and restart: infra/kafka/start.sh and stop.sh with
 * DSPEX_KAFKA_PORT / DSPEX_KAFKA_CONTROLLER_PORT / DSPEX_KAFKA_DATA set to free loopback ports and a
 * temporary folder. Never the shared broker of the test run (tests/support/kafka.ts), which other tests
 * and other processes use at the same time.
 */
import { execFile, spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { onCleanUp, temporaryFolder } from "./cleanup.ts";
import { kafkaForTests } from "./kafka.ts";

const run = promisify(execFile);
const infra = fileURLToPath(new URL("../../infra/kafka/", import.meta.url));

/** A port nobody listens on right now (the kernel picks it). */
const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

/** Why a test can't have a broker of its own here, if it can't: no shared broker (so no jars), no Java. */
export const ownBrokerSkipReason = (): string | undefined => {
  const shared = kafkaForTests();
  if ("skipReason" in shared) return shared.skipReason;
  if (spawnSync("java", ["-version"]).status !== 0) return "java is not installed (infra/kafka needs 17+)";
  return undefined;
};

export interface OwnBroker {
  brokers: string;
  /**
   * Stops the broker (SIGTERM, a clean shutdown), waits `downMs` (default 0), and starts it again on the
   * same ports and data.
   */
  restart(downMs?: number): Promise<{ stoppedMs: number; startedMs: number }>;
  stop(): Promise<void>;
}

export const startOwnBroker = async (): Promise<OwnBroker> => {
  const data = temporaryFolder("dspex-own-kafka-");
  const env = {
    ...process.env,
    DSPEX_KAFKA_PORT: String(await freePort()),
    DSPEX_KAFKA_CONTROLLER_PORT: String(await freePort()),
    DSPEX_KAFKA_DATA: data,
  };
  const script = (name: string) =>
    run("bash", [`${infra}${name}.sh`], { env, maxBuffer: 16 * 1024 * 1024 }).then(({ stdout }) => stdout);
  const start = async () => (await script("start")).trim().split("\n").at(-1)!;
  const stop = async () => {
    await script("stop");
  };
  let running = true;
  // A test process that dies without its afterAll must not leave a broker behind.
  process.on("exit", () => {
    if (running) spawnSync("bash", [`${infra}stop.sh`], { env });
  });
  // A test file that never stopped it: stopped after the file (vitest's workers get no "exit").
  const cleanup = onCleanUp(async () => {
    if (running) await stop();
    running = false;
  });
  const brokers = await start();
  return {
    brokers,
    async restart(downMs = 0) {
      const began = Date.now();
      await stop();
      const stoppedAt = Date.now();
      await new Promise((wake) => setTimeout(wake, downMs));
      await start();
      return { stoppedMs: stoppedAt - began, startedMs: Date.now() - stoppedAt };
    },
    async stop() {
      cleanup.remove();
      await stop();
      running = false;
      rmSync(data, { recursive: true, force: true });
    },
  };
};
