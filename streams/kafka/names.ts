/**
 * How logical names (what the EventLog port speaks) map onto the Kafka cluster. A namespace prefixes
 * every topic, consumer group and transactional id, so isolated logs can share one cluster.
 */

export const physicalTopic = (namespace: string, topic: string): string => `${namespace}${topic}`;

/** The logical topic of a physical one, or undefined when it is outside the namespace. */
export const logicalTopic = (namespace: string, physical: string): string | undefined =>
  physical.startsWith(namespace) ? physical.slice(namespace.length) : undefined;

export const physicalGroup = (namespace: string, group: string): string => `${namespace}${group}`;

/** Kafka topic names: 1–249 of [A-Za-z0-9._-], not "." or "..". */
export const topicNameProblem = (physical: string): string | undefined => {
  if (physical.length === 0) return "topic name is empty";
  if (physical.length > 249) return `topic name ${physical.slice(0, 40)}... is over 249 characters`;
  if (physical === "." || physical === "..") return `topic name ${physical} is not allowed`;
  if (!/^[A-Za-z0-9._-]+$/.test(physical))
    return `topic name ${JSON.stringify(physical)} has characters Kafka refuses (allowed: letters, digits, . _ -)`;
  return undefined;
};

/**
 * The transactional id of the producer that commits one input partition for one group. Stable across
 * restarts, so the next owner of the partition fences a crashed one: the broker aborts the crashed
 * process's open transaction as soon as the new producer initialises.
 */
export const transactionalIdFor = (
  namespace: string,
  group: string,
  topic: string,
  partition: number,
): string => `dspex-tx.${namespace}${group}.${topic}.${partition}`;

/** A group of one used for reads and tails; deleted afterwards. */
export const scratchGroup = (namespace: string, purpose: "read" | "tail", unique: string): string =>
  `${namespace}dspex-${purpose}-${unique}`;
