/**
 * The one place dspex reaches into kafkajs's internals: its coordinator lookups. kafkajs is pinned exactly
 * (package.json) and tests/unit/streams/coordinators.test.ts fails when an upgrade moves what is patched.
 */
import type { Kafka } from "kafkajs";

/** How long a coordinator lookup is reused. */
const coordinatorLookupTtlMs = 3_000;

type CoordinatorRequest = { groupId: string; coordinatorType?: number };
export interface KafkajsCluster {
  findGroupCoordinator(request: CoordinatorRequest): Promise<unknown>;
  findGroupCoordinatorMetadata(request: CoordinatorRequest): Promise<unknown>;
}

/** kafkajs 2.2.4 keeps its cluster factory under this private symbol. */
const clusterFactoryName = "private:Kafka:createCluster";

/**
 * kafkajs gives up finding a group's coordinator when no broker answers (an outage) with a non-retriable
 * error, and a consumer that meets it crashes for good instead of restarting: marked retriable, it restarts
 * (with backoff, until the broker is back) like after any other connection error.
 */
const markCoordinatorNotFoundRetriable = (error: unknown): never => {
  if ((error as { name?: string })?.name === "KafkaJSGroupCoordinatorNotFound")
    Object.assign(error as object, { retriable: true });
  throw error;
};

/** A cluster whose coordinator lookups are reused for a few seconds and forgotten when they fail. */
const withReusedLookups = (cluster: KafkajsCluster): KafkajsCluster => {
  const lookups = new Map<string, { at: number; metadata: Promise<unknown> }>();
  const keyOf = ({ groupId, coordinatorType }: CoordinatorRequest) => `${coordinatorType ?? 0}:${groupId}`;
  const lookUp = cluster.findGroupCoordinatorMetadata.bind(cluster);
  const find = cluster.findGroupCoordinator.bind(cluster);
  cluster.findGroupCoordinatorMetadata = (request) => {
    const key = keyOf(request);
    const known = lookups.get(key);
    if (known && Date.now() - known.at < coordinatorLookupTtlMs) return known.metadata;
    const metadata = lookUp(request).catch(markCoordinatorNotFoundRetriable);
    lookups.set(key, { at: Date.now(), metadata });
    metadata.catch(() => lookups.delete(key));
    return metadata;
  };
  cluster.findGroupCoordinator = (request) =>
    find(request).catch((error: unknown) => {
      lookups.delete(keyOf(request));
      throw error;
    });
  return cluster;
};

/**
 * kafkajs looks up the transaction coordinator (and the group coordinator) before every transactional
 * request: four FindCoordinator round trips in each commitWith, a third of its requests. Coordinators
 * move only when brokers do, so each cluster kafkajs creates for this client reuses a lookup for a few
 * seconds, and forgets it as soon as finding the coordinator's broker fails. Returns whether it applied
 * (with a kafkajs other than the pinned one it may not, and then changes nothing).
 */
export const reuseCoordinatorLookups = (kafka: Kafka): boolean => {
  const holder = kafka as unknown as Record<symbol, unknown>;
  const factory = Object.getOwnPropertySymbols(kafka).find(
    (symbol) => symbol.description === clusterFactoryName,
  );
  const create = factory && holder[factory];
  if (!factory || typeof create !== "function") return false;
  holder[factory] = (...args: unknown[]) => {
    const cluster = create(...args) as KafkajsCluster;
    return typeof cluster?.findGroupCoordinatorMetadata === "function" ? withReusedLookups(cluster) : cluster;
  };
  return true;
};
