/**
 * Finds an EventStoreDB/KurrentDB server for the contract suite, once per test process:
 * `DSPEX_EVENTSTOREDB_URL` when set, else a KurrentDB container when a Docker engine is reachable,
 * else a plain sentence saying why the backend is skipped. Never a stand-in server.
 */
import { GenericContainer, getContainerRuntimeClient, Wait } from "testcontainers";
import type { BackendUnderTest } from "./backends.ts";

export const kurrentDbImage = "kurrentplatform/kurrentdb:25.0";

type Server = { url: string } | { skipReason: string };

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

const dockerProblem = async (): Promise<string | undefined> => {
  try {
    await getContainerRuntimeClient();
    return undefined;
  } catch (error) {
    return message(error);
  }
};

/** An insecure single node, as in infra/compose.yaml; testcontainers' reaper removes it after the run. */
const startContainer = async (): Promise<string> => {
  const container = await new GenericContainer(kurrentDbImage)
    .withExposedPorts(2113)
    .withEnvironment({
      KURRENTDB_INSECURE: "true",
      KURRENTDB_CLUSTER_SIZE: "1",
      KURRENTDB_RUN_PROJECTIONS: "None",
    })
    .withWaitStrategy(Wait.forHealthCheck())
    .withStartupTimeout(120_000)
    .start();
  return `esdb://${container.getHost()}:${container.getMappedPort(2113)}?tls=false`;
};

const findServer = async (): Promise<Server> => {
  const url = process.env.DSPEX_EVENTSTOREDB_URL;
  if (url) return { url };
  const problem = await dockerProblem();
  if (problem) {
    return {
      skipReason: `DSPEX_EVENTSTOREDB_URL is not set and no Docker engine is reachable (${problem}); start one with \`docker compose -f infra/compose.yaml up -d kurrentdb\` and set DSPEX_EVENTSTOREDB_URL=esdb://localhost:2113?tls=false`,
    };
  }
  try {
    return { url: await startContainer() };
  } catch (error) {
    return {
      skipReason: `Docker is reachable but the ${kurrentDbImage} container did not start: ${message(error)}`,
    };
  }
};

const server: Server = await findServer();

let logs = 0;

export const eventStoreDbBackend: BackendUnderTest = {
  name: "eventstoredb",
  skipReason: () => ("skipReason" in server ? server.skipReason : undefined),
  /** Every log gets its own namespace (stream-name prefix) on the shared server. */
  freshConfig: () => ({
    backend: "eventstoredb",
    url: "url" in server ? server.url : undefined,
    namespace: `t${Date.now().toString(36)}${process.pid.toString(36)}${(logs++).toString(36)}/`,
  }),
};
