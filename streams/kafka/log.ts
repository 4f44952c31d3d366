import { randomUUID } from "node:crypto";
import {
  type Admin,
  type EachBatchPayload,
  Kafka,
  type Consumer as KafkaConsumer,
  logLevel as KafkaLevel,
  Partitioners,
  type Producer,
  type ProducerConfig,
  type SASLOptions,
} from "kafkajs";
import { Observable } from "rxjs";
import { assignmentChange, topicPartitionId } from "../assignment.ts";
import { type Availability, availability } from "../availability.ts";
import {
  type AppendRecord,
  type BatchHandler,
  type ConsumeOptions,
  type Consumer,
  type EventLog,
  FencedError,
  isTransientError,
  type LogRecord,
  LogUnavailableError,
  type Position,
  type ReadOptions,
  type TopicPartition,
  type TopicSpec,
} from "../log.ts";
import { coPartitionedAssigner } from "./assigner.ts";
import { brokerList, KafkaLogConfig, type KafkaLogSettings, saslOptions } from "./config.ts";
import { reuseCoordinatorLookups } from "./coordinators.ts";
import { kafkaLogCreator, type Logger, stderrLogger } from "./logger.ts";
import { type Gathered, inTimeOrder } from "./merge.ts";
import {
  logicalTopic,
  physicalGroup,
  physicalTopic,
  scratchGroup,
  topicNameProblem,
  transactionalIdFor,
} from "./names.ts";
import { committedUpTo, ownerships, uncommitted } from "./ownership.ts";
import { isReadComplete, mergedRecords, type ReadProgress, readTargets, recordProgress } from "./reading.ts";
import { partitionSends, routeRecords, sendAll, toLogRecord, transactionSends } from "./records.ts";

/** Partitions whose fetched batches are merged by time before they reach the handler. */
const maxGatheredPartitions = 64;

/** A partition's batch from kafkajs, waiting to be handed over in time order. */
interface Fetched extends Gathered {
  topic: string;
  partition: number;
  payload: EachBatchPayload;
}

/** Largest single send: under the broker's default message.max.bytes (1 MiB) per partition batch. */
const maxSendBytes = 768 * 1024;

/** A newer producer with the same transactional id took over this partition: the batch is not committed. */
export class TransactionFencedError extends FencedError {
  constructor(group: string, topic: string, partition: number, cause: unknown) {
    super(
      `another consumer of group ${group} took over ${topic}[${partition}] (its producer fenced this one); batch not committed`,
      { cause },
    );
    this.name = "TransactionFencedError";
  }
}

/** Whether `error`, or what caused it, is a Kafka protocol error of one of `types`. */
const hasErrorType = (types: ReadonlySet<string>, error: unknown): boolean =>
  types.has((error as { type?: string } | undefined)?.type ?? "") ||
  (error instanceof Error && error.cause !== undefined && hasErrorType(types, error.cause));

const fencedErrorTypes = new Set([
  "INVALID_PRODUCER_EPOCH",
  "PRODUCER_FENCED",
  "INVALID_PRODUCER_ID_MAPPING",
]);
const isFenced = (error: unknown): boolean => hasErrorType(fencedErrorTypes, error);

/**
 * A transactional producer whose idempotence state no longer matches the broker's (kafkajs after a send it
 * believes failed, e.g. while leaders moved): its transaction cannot commit, but a new producer under the
 * same transactional id starts clean (its init aborts what the old one left open).
 */
const lostProducerStateTypes = new Set([
  "OUT_OF_ORDER_SEQUENCE_NUMBER",
  "UNKNOWN_PRODUCER_ID",
  "INVALID_TXN_STATE",
]);
const lostProducerState = (error: unknown): boolean =>
  hasErrorType(lostProducerStateTypes, error) || causedBy(/Transaction state exception/, error);

/** Whether `error`, or what caused it, says `pattern` (kafkajs's state-machine errors have no type). */
const causedBy = (pattern: RegExp, error: unknown): boolean =>
  error instanceof Error && (pattern.test(error.message) || causedBy(pattern, error.cause));

/**
 * A broker that answers but cannot serve this yet (a coordinator loading or moving, a leader moving, a new
 * topic's metadata): retried, and not an outage.
 */
const busyErrorTypes = new Set([
  "COORDINATOR_LOAD_IN_PROGRESS",
  "COORDINATOR_NOT_AVAILABLE",
  "NOT_COORDINATOR",
  // The previous transaction of the same producer is still completing on the broker.
  "CONCURRENT_TRANSACTIONS",
  "LEADER_NOT_AVAILABLE",
  "NOT_LEADER_FOR_PARTITION",
  "UNKNOWN_TOPIC_OR_PARTITION",
  "REBALANCE_IN_PROGRESS",
]);
/**
 * The same conditions as kafkajs words them: a consumer's crash wraps the protocol error in a
 * KafkaJSNonRetriableError that keeps its message but drops its type (seen when a fresh broker was still
 * loading a group's coordinator: the processors said Kafka could not be reached).
 */
const busyMessages =
  /The coordinator is loading|The group coordinator is not available|This is not the correct coordinator|The group is rebalancing|There is no leader for this topic-partition|This server is not the leader for that topic-partition|This server does not host this topic-partition/;

const brokerBusy = (error: unknown): boolean =>
  hasErrorType(busyErrorTypes, error) || isUnreadyMetadata(error) || causedBy(busyMessages, error);

/** Errors that clear up by themselves: a busy broker, or a request that timed out. */
const transientErrorTypes = new Set([...busyErrorTypes, "REQUEST_TIMED_OUT"]);

/** kafkajs's fetchTopicOffsets throws this TypeError while a new topic's metadata is still empty. */
const isUnreadyMetadata = (error: unknown): boolean =>
  error instanceof TypeError && /destructure property 'partitions'/.test(error.message);

const isTransient = (error: unknown): boolean =>
  (error as { retriable?: boolean } | undefined)?.retriable === true ||
  transientErrorTypes.has((error as { type?: string } | undefined)?.type ?? "") ||
  isUnreadyMetadata(error);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Retries `call` on transient errors for up to `patienceMs`, then lets the error through. */
const withRetries = async <T>(call: () => Promise<T>, patienceMs = 7_500): Promise<T> => {
  const deadline = Date.now() + patienceMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (!isTransient(error) || Date.now() > deadline) throw error;
      await sleep(Math.min(25 * 2 ** attempt, 1_000));
    }
  }
};

/** How long opening the log retries its producer's connection once a broker answered. */
const producerConnectPatienceMs = 60_000;

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * Applies a pause, resume or seek to a kafkajs consumer, unless it is between a crash and its restart
 * (kafkajs then has no group and throws "not initialized"): the caller makes up for it after the restart.
 */
const unlessRestarting = (apply: () => void): void => {
  try {
    apply();
  } catch (error) {
    if (!/not initialized/.test(describe(error))) throw error;
  }
};

export interface KafkaLogOptions {
  /** Where kafkajs logs and the backend's own warnings go; default JSON lines on stderr. */
  logger?: Logger;
  /**
   * Runs inside commitWith (and commit) once the outputs and the offsets are sent, just before the
   * transaction commits. A test seam: the crash test kills the process here.
   */
  beforeTransactionCommit?: () => Promise<void> | void;
  /** Runs inside commitWith once the transaction committed. A test seam: a commit whose answer is lost. */
  afterTransactionCommit?: () => Promise<void> | void;
}

/** The EventLog port on Apache Kafka, through kafkajs. */
export class KafkaLog implements EventLog {
  readonly backend = "kafka";
  readonly settings: KafkaLogSettings;
  readonly brokers: string[];
  private readonly logger: Logger;
  private readonly beforeTransactionCommit: () => Promise<void> | void;
  private readonly afterTransactionCommit: () => Promise<void> | void;
  private readonly kafka: Kafka;
  private readonly admin: Admin;
  /** Idempotent (no duplicates on retry, order kept per partition); appends go through it one at a time. */
  private readonly producer: Producer;
  private readonly partitionCounts = new Map<string, number>();
  /** When a topic or partition was last found missing. */
  private readonly missChecked = new Map<string, number>();
  private appendQueue: Promise<unknown> = Promise.resolve();
  private readonly consumers = new Set<Consumer>();
  private readonly tails = new Set<() => Promise<void>>();
  private committer: Promise<Producer> | undefined;
  /** The committing producer's transactional id: the same for every producer this log makes anew. */
  private committerId: string | undefined;
  private commitTurn: Promise<void> = Promise.resolve();
  private closed = false;
  /** One line when the brokers go away, one when they are back. */
  private readonly link: Availability;

  constructor(config: KafkaLogConfig, options: KafkaLogOptions = {}) {
    this.settings = KafkaLogConfig.parse(config);
    this.brokers = brokerList(this.settings.brokers);
    this.logger = options.logger ?? stderrLogger();
    this.link = availability(`Kafka at ${brokerList(this.settings.brokers).join(",")}`, (message) =>
      this.logger.log("warn", message),
    );
    this.beforeTransactionCommit = options.beforeTransactionCommit ?? (() => undefined);
    this.afterTransactionCommit = options.afterTransactionCommit ?? (() => undefined);
    this.kafka = new Kafka({
      clientId: this.settings.clientId,
      brokers: this.brokers,
      ssl: this.settings.ssl,
      sasl: saslOptions(this.settings.sasl) as SASLOptions | undefined,
      logLevel: KafkaLevel.DEBUG,
      logCreator: kafkaLogCreator(this.logger),
      connectionTimeout: 3_000,
      retry: { initialRetryTime: 100, retries: 8 },
    });
    reuseCoordinatorLookups(this.kafka);
    this.admin = this.kafka.admin();
    this.producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      // kafkajs's exactly-once advice: an idempotent producer retries for ever (appends wait for the broker).
      retry: { initialRetryTime: 100, maxRetryTime: 2_000, retries: Number.MAX_SAFE_INTEGER },
    });
  }

  /** Connects the admin client and the producer; fails with the brokers it tried. */
  async connect(): Promise<this> {
    try {
      await this.admin.connect();
      // A broker answered. The idempotent producer then asks the cluster's controller for its id; while a
      // node of a cluster is down the metadata can still name it, and kafkajs does not retry that failed
      // connection: retried here while the rest of the cluster notices.
      await withRetries(() => this.producer.connect(), producerConnectPatienceMs);
    } catch (error) {
      await this.close().catch(() => undefined);
      throw new Error(
        `cannot reach Kafka at ${this.brokers.join(",")}: ${describe(error)} (start the local broker with bash infra/kafka/start.sh, or set DSPEX_KAFKA_BROKERS)`,
        { cause: error },
      );
    }
    return this;
  }

  private physical = (topic: string): string => physicalTopic(this.settings.namespace, topic);

  private checkTopicName(topic: string): void {
    const problem = topicNameProblem(this.physical(topic));
    if (problem) throw new TypeError(problem);
  }

  private async existingTopics(): Promise<Set<string>> {
    return new Set(await this.admin.listTopics());
  }

  private async createTopics(specs: ReadonlyArray<{ topic: string; partitions: number }>): Promise<void> {
    if (specs.length === 0) return;
    // Waiting for the leaders can fail with UNKNOWN_TOPIC_OR_PARTITION while a busy broker publishes the
    // new topics' metadata (kafkajs retries only LEADER_NOT_AVAILABLE): retried, a second create finds
    // them existing, and the callers refresh the metadata with retries.
    await withRetries(() =>
      this.admin.createTopics({
        waitForLeaders: true,
        topics: specs.map(({ topic, partitions }) => ({
          topic: this.physical(topic),
          numPartitions: partitions,
          replicationFactor: this.settings.replicationFactor,
          configEntries: [{ name: "retention.ms", value: String(this.settings.retentionMs) }],
        })),
      }),
    );
  }

  /** Partition counts from the cluster's metadata, cached per logical topic. */
  private async refreshPartitionCounts(topics: readonly string[]): Promise<void> {
    if (topics.length === 0) return;
    const { topics: metadata } = await withRetries(() =>
      this.admin.fetchTopicMetadata({ topics: topics.map(this.physical) }),
    );
    for (const entry of metadata) {
      const topic = logicalTopic(this.settings.namespace, entry.name);
      if (topic !== undefined) this.partitionCounts.set(topic, entry.partitions.length);
    }
  }

  /** Makes sure every topic exists (created with the defaults when `create`), and knows its partitions. */
  private async knowTopics(topics: readonly string[], create: boolean): Promise<string[]> {
    const unknown = [...new Set(topics)].filter((topic) => !this.partitionCounts.has(topic));
    if (unknown.length === 0) return [...new Set(topics)];
    for (const topic of unknown) this.checkTopicName(topic);
    const existing = await this.existingTopics();
    const missing = unknown.filter((topic) => !existing.has(this.physical(topic)));
    if (create) {
      await this.createTopics(
        missing.map((topic) => ({ topic, partitions: this.settings.defaultPartitions })),
      );
      await this.refreshPartitionCounts(unknown);
    } else {
      await this.refreshPartitionCounts(unknown.filter((topic) => existing.has(this.physical(topic))));
    }
    return [...new Set(topics)].filter((topic) => this.partitionCounts.has(topic));
  }

  /**
   * Whether the topic (and the partition, if given) exists. A miss is answered from the cache for a
   * second before asking the cluster again: readers probe many partitions that don't exist.
   */
  private async holds(topic: string, partition?: number): Promise<boolean> {
    const inCache = () => {
      const count = this.partitionCounts.get(topic);
      return count !== undefined && (partition === undefined || partition < count);
    };
    if (inCache()) return true;
    const checked = this.missChecked.get(topic);
    if (checked !== undefined && Date.now() - checked < 1_000) return false;
    this.partitionCounts.delete(topic);
    await this.knowTopics([topic], false);
    this.missChecked.set(topic, Date.now());
    return inCache();
  }

  async partitions(topic: string): Promise<number> {
    this.checkTopicName(topic);
    if (!(await this.existingTopics()).has(this.physical(topic))) return 0;
    await this.refreshPartitionCounts([topic]);
    return this.partitionCounts.get(topic) ?? 0;
  }

  async ensureTopics(topics: TopicSpec[]): Promise<void> {
    const wanted = new Map<string, number>();
    for (const { topic, partitions } of topics) {
      this.checkTopicName(topic);
      wanted.set(topic, Math.max(wanted.get(topic) ?? 0, partitions ?? this.settings.defaultPartitions));
    }
    const existing = await this.existingTopics();
    const isPresent = ([topic]: [string, number]) => existing.has(this.physical(topic));
    const present = [...wanted].filter(isPresent);
    const missing = [...wanted].filter((entry) => !isPresent(entry));
    await this.createTopics(missing.map(([topic, partitions]) => ({ topic, partitions })));
    await this.refreshPartitionCounts(present.map(([topic]) => topic));
    const grow = present.filter(([topic, count]) => (this.partitionCounts.get(topic) ?? 0) < count);
    if (grow.length > 0) {
      await this.admin.createPartitions({
        topicPartitions: grow.map(([topic, count]) => ({ topic: this.physical(topic), count })),
      });
    }
    await this.refreshPartitionCounts([...wanted.keys()]);
  }

  /**
   * Runs appends one at a time, so concurrent appends keep their call order per key (kafkajs also
   * serialises an idempotent producer's requests per broker).
   */
  private serially<T>(task: () => Promise<T>): Promise<T> {
    const run = this.appendQueue.then(task, task);
    this.appendQueue = run.catch(() => undefined);
    return run;
  }

  private routed(records: readonly AppendRecord[]) {
    return routeRecords(records, (topic) => this.partitionCounts.get(topic)!, this.physical);
  }

  /** Atomic per partition (one produce request each), not across partitions: use commitWith for that. */
  async append(records: AppendRecord[]): Promise<Position[]> {
    if (records.length === 0) return [];
    this.ensureOpen();
    return this.serially(async () => {
      await this.knowTopics(
        records.map((r) => r.topic),
        true,
      );
      const positions = await sendAll(partitionSends(this.routed(records), maxSendBytes), (topicMessages) =>
        this.producer.sendBatch({ topicMessages, acks: -1 }),
      );
      this.link.up();
      return positions;
    });
  }

  /**
   * A consumer of the log's cluster with the backend's timeouts; read_committed always. A group member
   * (`held` given) assigns co-partitioned: task p, partition p of every topic, to one member.
   */
  private newConsumer(groupId: string, held?: () => readonly number[]): KafkaConsumer {
    return this.kafka.consumer({
      groupId,
      ...(held ? { partitionAssigners: [coPartitionedAssigner(held)] } : {}),
      sessionTimeout: this.settings.sessionTimeoutMs,
      heartbeatInterval: Math.min(
        this.settings.heartbeatIntervalMs,
        Math.floor(this.settings.sessionTimeoutMs / 3),
      ),
      rebalanceTimeout: Math.max(this.settings.sessionTimeoutMs, 30_000),
      maxWaitTimeInMs: this.settings.maxWaitMs,
      allowAutoTopicCreation: false,
      readUncommitted: false,
    });
  }

  /** Best effort: a scratch group (read, tail) leaves nothing behind on the cluster. */
  private async deleteScratchGroup(groupId: string): Promise<void> {
    await this.admin.deleteGroups([groupId]).catch((error) =>
      this.logger.log("debug", "could not delete a scratch consumer group", {
        groupId,
        error: describe(error),
      }),
    );
  }

  async read(topic: string, options: ReadOptions = {}): Promise<LogRecord[]> {
    this.ensureOpen();
    if (!(await this.holds(topic, options.partition))) return [];
    const physical = this.physical(topic);
    const offsets = await withRetries(() => this.admin.fetchTopicOffsets(physical));
    const targets = readTargets(offsets, options);
    if ([...targets.values()].every((target) => target.done)) return [];
    const groupId = scratchGroup(this.settings.namespace, "read", randomUUID());
    const consumer = this.newConsumer(groupId);
    const progress: ReadProgress = { targets, records: new Map() };
    try {
      await new Promise<void>((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        const stall = () => {
          clearTimeout(timer);
          timer = setTimeout(() => {
            reject(
              new LogUnavailableError(
                `read of ${topic} made no progress for ${this.settings.readTimeoutMs} ms (at ${JSON.stringify(
                  [...targets].map(([p, t]) => ({ partition: p, at: t.position, until: t.end })),
                )})`,
              ),
            );
          }, this.settings.readTimeoutMs);
        };
        const check = () => {
          stall();
          if (isReadComplete(progress)) {
            clearTimeout(timer);
            resolve();
          }
        };
        consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
          recordProgress(progress, payload.partition, Number(payload.lastOffset) + 1, [], options.limit);
          check();
        });
        consumer.on(consumer.events.CRASH, ({ payload }) => {
          if (!payload.restart) {
            clearTimeout(timer);
            reject(payload.error);
          }
        });
        check();
        (async () => {
          await consumer.connect();
          await consumer.subscribe({ topics: [physical], fromBeginning: true });
          await consumer.run({
            eachBatch: async ({ batch }) => {
              recordProgress(
                progress,
                batch.partition,
                Number(batch.lastOffset()) + 1,
                batch.messages.map((m) => toLogRecord(topic, batch.partition, m)),
                options.limit,
              );
              check();
            },
          });
          // Records before a target's start, or of a partition not asked for, are dropped anyway;
          // seeking and pausing only spares fetching them (and is skipped while kafkajs restarts a
          // consumer whose first join failed).
          const unwanted = [...targets].filter(([, target]) => target.done).map(([partition]) => partition);
          if (unwanted.length > 0)
            unlessRestarting(() => consumer.pause([{ topic: physical, partitions: unwanted }]));
          for (const [partition, target] of targets) {
            if (!target.done && target.start > 0)
              unlessRestarting(() =>
                consumer.seek({ topic: physical, partition, offset: String(target.start) }),
              );
          }
        })().catch((error) => {
          clearTimeout(timer);
          reject(error);
        });
      });
    } finally {
      await consumer.disconnect().catch(() => undefined);
      await this.deleteScratchGroup(groupId);
    }
    return mergedRecords(progress, options.limit);
  }

  /** The producer that commits one input partition's batches, in transactions (one per group and partition). */
  private transactionalProducer(group: string, topic: string, partition: number): Producer {
    return this.kafka.producer(
      this.transactionalOptions(transactionalIdFor(this.settings.namespace, group, topic, partition)),
    );
  }

  private transactionalOptions(transactionalId: string): ProducerConfig {
    return {
      transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      transactionTimeout: this.settings.transactionTimeoutMs,
      createPartitioner: Partitioners.DefaultPartitioner,
      // Retry for ever, as kafkajs wants for exactly-once; CONCURRENT_TRANSACTIONS right after a commit
      // clears within milliseconds, so start retrying soon.
      retry: { initialRetryTime: 10, maxRetryTime: 2_000, retries: Number.MAX_SAFE_INTEGER },
    };
  }

  /** `call`, retried with backoff while it fails only because the broker cannot be reached, until `stopped`. */
  private async untilBrokerBack(call: () => Promise<unknown>, stopped: () => boolean): Promise<void> {
    for (let attempt = 0; !stopped(); attempt++) {
      try {
        await call();
        return;
      } catch (error) {
        if (!isTransientError(error) && !isTransient(error)) throw error;
        if (!brokerBusy(error)) this.link.down(describe(error));
        await sleep(Math.min(100 * 2 ** attempt, 5_000));
      }
    }
  }

  /** The group's committed offset on one partition (0 when it committed none). */
  private async committedOffset(groupId: string, physicalTopic: string, partition: number): Promise<number> {
    const [entry] = await withRetries(() => this.admin.fetchOffsets({ groupId, topics: [physicalTopic] }));
    const offset = Number(entry?.partitions.find((p) => p.partition === partition)?.offset ?? -1);
    return Math.max(offset, 0);
  }

  /** Appends `outputs` and commits the input offset in one Kafka transaction. */
  private async commitInTransaction(
    producer: Producer,
    where: { groupId: string; physicalTopic: string; partition: number; nextOffset: number },
    outputs: readonly AppendRecord[],
  ): Promise<Position[]> {
    await this.knowTopics(
      outputs.map((r) => r.topic),
      true,
    );
    const transaction = await producer.transaction();
    try {
      const positions = await sendAll(transactionSends(this.routed(outputs), maxSendBytes), (topicMessages) =>
        transaction.sendBatch({ topicMessages, acks: -1 }),
      );
      // kafkajs retries CONCURRENT_TRANSACTIONS (the previous transaction's markers still being written)
      // in sendBatch, but not in sendOffsets' AddOffsetsToTxn: a commit without outputs right after the
      // previous one failed with it and stopped the consumer. The transaction stays open, so retry here.
      await withRetries(() =>
        transaction.sendOffsets({
          consumerGroupId: where.groupId,
          topics: [
            {
              topic: where.physicalTopic,
              partitions: [{ partition: where.partition, offset: String(where.nextOffset) }],
            },
          ],
        }),
      );
      await this.beforeTransactionCommit();
      await transaction.commit();
      await this.afterTransactionCommit();
      this.link.up();
      return positions;
    } catch (error) {
      if (transaction.isActive()) await transaction.abort().catch(() => undefined);
      throw error;
    }
  }

  consume(options: ConsumeOptions, handler: BatchHandler): Consumer {
    this.ensureOpen();
    const { group, topics, from = "beginning", maxBatch = 500, autoCommit = true } = options;
    const groupId = physicalGroup(this.settings.namespace, group);
    /** The partitions this member holds now: a batch committed late (deferred) must still be ours. */
    let held: TopicPartition[] = [];
    const consumer = this.newConsumer(groupId, () => [...new Set(held.map((tp) => tp.partition))]);
    const owned = ownerships(
      ({ topic, partition }) => this.transactionalProducer(group, topic, partition),
      ({ topic, partition }) => this.committedOffset(groupId, this.physical(topic), partition),
    );
    /** Waits out an outage: an assignment taken over while the broker is away is taken over once it is back. */
    const takeOver = (tp: TopicPartition) =>
      this.untilBrokerBack(
        () => owned.of(tp),
        () => stopping,
      );

    let stopping = false;
    let failure: { error: unknown } | undefined;
    let requestStop!: () => void;
    const stopRequested = new Promise<void>((resolve) => {
      requestStop = resolve;
    });
    const fail = (error: unknown) => {
      failure ??= { error };
      stopping = true;
      requestStop();
    };
    options.signal?.addEventListener("abort", () => requestStop(), { once: true });
    if (options.signal?.aborted) requestStop();

    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (payload.restart) {
        if (!brokerBusy(payload.error)) this.link.down(describe(payload.error));
        return;
      }
      this.logger.log("error", `consumer of group ${group} crashed`, { error: describe(payload.error) });
      fail(payload.error);
    });
    let holding: Set<string> | undefined;
    /** The owner's callbacks run in turn, and a partition's records wait for the turn that assigned it. */
    let assignmentTurn: Promise<void> = Promise.resolve();
    let markJoined!: () => void;
    const joined = new Promise<void>((resolve) => {
      markJoined = resolve;
    });
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      const next = Object.entries(payload.memberAssignment).flatMap(([physical, partitions]) =>
        partitions.map((partition) => ({
          topic: logicalTopic(this.settings.namespace, physical) ?? physical,
          partition,
        })),
      );
      const { assigned, revoked } = assignmentChange(held, next);
      held = next;
      holding = new Set(next.map(topicPartitionId));
      const stillPaused = next.filter((tp) => paused.has(topicPartitionId(tp)));
      whileRunning(() => consumer.pause(physicalPartitions(stillPaused)), stillPaused);
      owned.keepOnly(holding);
      assignmentTurn = assignmentTurn.then(async () => {
        if (revoked.length > 0) await options.onRevoked?.(revoked);
        // A task is rebuilt from what its group committed: the previous owner's last commit must be in.
        if (!autoCommit) await Promise.all(assigned.map(takeOver));
        if (assigned.length > 0) await options.onAssigned?.(assigned);
        markJoined();
      });
      assignmentTurn.catch(fail);
    });
    const paused = new Set<string>();

    /** Of a run fetched, the records its group has not committed yet (kafkajs may have fetched from before). */
    const notCommittedYet = async (topic: string, partition: number, run: LogRecord[]) => {
      // A run of a partition taken away meanwhile is its new owner's: taking it over here would fence that owner.
      if (holding && !holding.has(topicPartitionId({ topic, partition }))) return [];
      return uncommitted(await owned.of({ topic, partition }), run);
    };

    /** Hands one partition's run of records to the handler, then commits it; false when the consumer stops. */
    const handRun = async (fetched: Fetched, run: LogRecord[]): Promise<boolean> => {
      const { topic, partition, payload } = fetched;
      const nextOffset = run.at(-1)!.offset + 1;
      let committedWithOutputs = false;
      const commitWith = async (outputs: AppendRecord[]) => {
        committedWithOutputs = true;
        // Its producer would fence the partition's new owner.
        if (holding && !holding.has(topicPartitionId({ topic, partition })))
          throw new TransactionFencedError(
            group,
            topic,
            partition,
            "the partition is no longer assigned here",
          );
        const ownership = await owned.of({ topic, partition });
        try {
          const written = await this.commitInTransaction(
            ownership.producer,
            { groupId, physicalTopic: payload.batch.topic, partition, nextOffset },
            outputs,
          );
          committedUpTo(ownership, nextOffset);
          return written;
        } catch (error) {
          if (isFenced(error)) {
            owned.drop({ topic, partition });
            throw new TransactionFencedError(group, topic, partition, error);
          }
          if (lostProducerState(error))
            throw new LogUnavailableError(
              `the producer of ${topic}[${partition}] lost its place in the broker's sequence (${describe(error)}); nothing was committed, a new producer takes over`,
              { cause: error },
            );
          throw error;
        }
      };
      try {
        await assignmentTurn;
        const records = autoCommit ? run : await notCommittedYet(topic, partition, run);
        if (records.length > 0) await handler({ records, commitWith });
      } catch (error) {
        if (error instanceof TransactionFencedError) {
          this.logger.log("warn", error.message);
          return false;
        }
        if (!isTransientError(error)) {
          fail(error);
          return false;
        }
        // The broker went away mid-batch, maybe after the commit went in: kafkajs restarts the consumer
        // (with backoff, for as long as it takes) and hands the batch over again, and a new producer takes
        // the partition over (see ownership.ts), so what did commit is not handled twice. A broker that
        // answers but is busy (its group coordinator still loading after a restart) is not a lost link.
        if (!brokerBusy(error)) this.link.down(describe(error));
        owned.drop({ topic, partition });
        throw Object.assign(new LogUnavailableError(describe(error), { cause: error }), { retriable: true });
      }
      if (!committedWithOutputs && autoCommit) {
        await consumer.commitOffsets([{ topic: payload.batch.topic, partition, offset: String(nextOffset) }]);
      }
      payload.resolveOffset(String(nextOffset - 1));
      await payload.heartbeat();
      return true;
    };

    // kafkajs hands over one partition at a time, in an order of its own (KIP-74 shuffles them). The
    // batches of one fetch are gathered and handed over merged by append time instead (see merge.ts).
    const topicRank = new Map(topics.map((topic, rank) => [topic, rank]));
    const handOver = inTimeOrder<Fetched>({
      maxBatch,
      hand: handRun,
      // A paused partition's records not handed over yet are not resolved: fetched again on resume.
      current: (fetched) =>
        !paused.has(topicPartitionId(fetched)) && fetched.payload.isRunning() && !fetched.payload.isStale(),
      stopping: () => stopping,
      fail,
    });
    const eachBatch = (payload: EachBatchPayload) =>
      new Promise<void>((resolve, reject) => {
        const { batch } = payload;
        const topic = logicalTopic(this.settings.namespace, batch.topic) ?? batch.topic;
        const records = batch.messages.map((m) => toLogRecord(topic, batch.partition, m));
        if (records.length === 0 || stopping) return resolve();
        handOver({
          topic,
          partition: batch.partition,
          records,
          handed: 0,
          topicRank: topicRank.get(topic) ?? topics.length,
          payload,
          settle: (error?: unknown) => (error === undefined ? resolve() : reject(error)),
        });
      });

    const start = async () => {
      await this.knowTopics(topics, true);
      await consumer.connect();
      await consumer.subscribe({ topics: topics.map(this.physical), fromBeginning: from === "beginning" });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: maxGatheredPartitions,
        eachBatch,
      });
    };
    const shutdown = async () => {
      stopping = true;
      await consumer.disconnect().catch((error) =>
        this.logger.log("warn", `consumer of group ${group} did not disconnect cleanly`, {
          error: describe(error),
        }),
      );
      await owned.releaseAll();
    };

    const done = (async () => {
      // A stop during start waits for start to settle: disconnecting a half-connected kafkajs consumer
      // could leave it running.
      const started = this.untilBrokerBack(start, () => stopping).catch(fail);
      await stopRequested;
      await started;
      await shutdown();
      if (failure) throw failure.error;
    })();
    /**
     * Pauses and resumes reach kafkajs only while its consumer runs (between a crash and its restart it has
     * none); the `paused` set is what counts, and it is applied again at every join.
     */
    const whileRunning = (apply: () => void, partitions: readonly TopicPartition[]) => {
      if (partitions.length > 0) unlessRestarting(apply);
    };
    const physicalPartitions = (partitions: readonly TopicPartition[]) =>
      [...new Set(partitions.map((tp) => tp.topic))].map((topic) => ({
        topic: this.physical(topic),
        partitions: partitions.filter((tp) => tp.topic === topic).map((tp) => tp.partition),
      }));
    done.finally(() => markJoined()).catch(() => undefined);
    const handle: Consumer = {
      done,
      joined,
      stop: async () => {
        stopping = true;
        requestStop();
        await done.catch(() => undefined);
        this.consumers.delete(handle);
      },
      pause: (partitions) => {
        for (const tp of partitions) paused.add(topicPartitionId(tp));
        whileRunning(() => consumer.pause(physicalPartitions(partitions)), partitions);
      },
      resume: (partitions) => {
        for (const tp of partitions) paused.delete(topicPartitionId(tp));
        whileRunning(() => consumer.resume(physicalPartitions(partitions)), partitions);
      },
    };
    this.consumers.add(handle);
    done.catch(() => undefined).finally(() => this.consumers.delete(handle));
    return handle;
  }

  tail(topics: string[], options: { from?: "beginning" | "end" } = {}): Observable<LogRecord> {
    return new Observable<LogRecord>((subscriber) => {
      const subscribedAt = Date.now();
      const groupId = scratchGroup(this.settings.namespace, "tail", randomUUID());
      const consumer = this.newConsumer(groupId);
      let stopped = false;
      let stopping: Promise<void> | undefined;
      // Stays in `tails` until its scratch group is deleted: `close` waits for it, so the admin client is not
      // reconnected by a late delete after it was disconnected (an open socket kept the process alive).
      const stop = () => {
        stopped = true;
        stopping ??= (async () => {
          await consumer.disconnect().catch(() => undefined);
          await this.deleteScratchGroup(groupId);
          this.tails.delete(stop);
        })();
        return stopping;
      };
      this.tails.add(stop);
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        if (!payload.restart) subscriber.error(payload.error);
      });
      // Set up once the broker answers: a tail opened during an outage starts when it is over.
      this.untilBrokerBack(
        async () => {
          const known = await this.knowTopics(topics, true);
          // Per partition, the next offset to emit: the end at subscription ("end") or 0. Records before it
          // are dropped, so a fetch that raced the seek neither repeats nor skips anything.
          const next = new Map<string, number>();
          const id = (physical: string, partition: number) => `${physical}\u0000${partition}`;
          if (options.from === "end") {
            // "The end" is the moment of subscription, not of this (later) lookup: the first offset
            // stored at or after it, so a record appended while the tail gets ready is not skipped.
            for (const topic of known) {
              for (const { partition, offset } of await withRetries(() =>
                this.admin.fetchTopicOffsetsByTimestamp(this.physical(topic), subscribedAt),
              ))
                next.set(id(this.physical(topic), partition), Number(offset));
            }
          }
          if (stopped) return;
          await consumer.connect();
          await consumer.subscribe({ topics: known.map(this.physical), fromBeginning: true });
          await consumer.run({
            eachBatch: async ({ batch }) => {
              const topic = logicalTopic(this.settings.namespace, batch.topic) ?? batch.topic;
              const key = id(batch.topic, batch.partition);
              for (const message of batch.messages) {
                if (stopped) return;
                if (Number(message.offset) < (next.get(key) ?? 0)) continue;
                next.set(key, Number(message.offset) + 1);
                subscriber.next(toLogRecord(topic, batch.partition, message));
              }
            },
          });
          for (const [key, offset] of next) {
            const [physical, partition] = key.split("\u0000") as [string, string];
            // A consumer restarting after a crash (its group join failed) takes no seek; it reads from the
            // start again and `next` skips what was handed over already.
            if (offset > 0)
              unlessRestarting(() =>
                consumer.seek({ topic: physical, partition: Number(partition), offset: String(offset) }),
              );
          }
        },
        () => stopped,
      ).catch((error) => {
        if (!stopped) subscriber.error(error);
      });
      return () => {
        void stop();
      };
    });
  }

  /**
   * Commits offsets for a group from outside its consumers, in a transaction of this log's own
   * producer (Kafka accepts transactional offset commits whatever the group's state).
   */
  async commit(group: string, positions: Position[]): Promise<void> {
    this.ensureOpen();
    if (positions.length === 0) return;
    const byTopic = new Map<string, Position[]>();
    for (const p of positions) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p]);
    // One producer has one transaction at a time: concurrent commits wait their turn.
    const turn = this.commitTurn.then(async () => {
      await withRetries(() => this.commitWithCommitter(group, byTopic));
      await this.untilCommittedVisible(group, byTopic);
    });
    this.commitTurn = turn.catch(() => undefined);
    return turn;
  }

  /**
   * One commit through this log's committing producer. After a failure its state is not to be trusted (an
   * abort that failed leaves kafkajs "ABORTING" for good): the next commit makes a new producer under the
   * same transactional id, whose init aborts whatever the old one left open. Offsets are idempotent, so
   * the caller may commit the same positions again.
   */
  private async commitWithCommitter(group: string, byTopic: Map<string, Position[]>): Promise<void> {
    this.committer ??= (async () => {
      this.committerId ??= `dspex-tx.${this.settings.namespace}commit.${randomUUID()}`;
      const producer = this.kafka.producer(this.transactionalOptions(this.committerId));
      await producer.connect();
      return producer;
    })();
    const committer = this.committer;
    try {
      await this.commitOffsets(await committer, group, byTopic);
    } catch (error) {
      if (this.committer === committer) this.committer = undefined;
      void committer.then((producer) => producer.disconnect()).catch(() => undefined);
      if (lostProducerState(error))
        throw Object.assign(
          new LogUnavailableError(`the committing producer lost its state (${describe(error)})`, {
            cause: error,
          }),
          { retriable: true },
        );
      throw error;
    }
  }

  /**
   * A transactional offset commit becomes visible to offset fetches a moment after the commit returns
   * (the coordinator writes the markers): the caller reads its own commit, as on the other backends.
   */
  private async untilCommittedVisible(group: string, byTopic: Map<string, Position[]>): Promise<void> {
    for (let attempt = 0; attempt < 50; attempt++) {
      let visible = true;
      for (const [topic, positions] of byTopic) {
        const committed = await this.committed(group, topic);
        if (positions.some((p) => (committed.get(p.partition) ?? -1) < p.offset)) visible = false;
      }
      if (visible) return;
      await sleep(Math.min(5 * 2 ** attempt, 100));
    }
  }

  private async commitOffsets(
    producer: Producer,
    group: string,
    byTopic: Map<string, Position[]>,
  ): Promise<void> {
    const transaction = await producer.transaction();
    try {
      await transaction.sendOffsets({
        consumerGroupId: physicalGroup(this.settings.namespace, group),
        topics: [...byTopic].map(([topic, list]) => ({
          topic: this.physical(topic),
          partitions: list.map((p) => ({ partition: p.partition, offset: String(p.offset) })),
        })),
      });
      await this.beforeTransactionCommit();
      await transaction.commit();
    } catch (error) {
      if (transaction.isActive()) await transaction.abort().catch(() => undefined);
      throw error;
    }
  }

  async endOffsets(topic: string): Promise<Map<number, number>> {
    this.ensureOpen();
    if (!(await this.holds(topic))) return new Map();
    const offsets = await withRetries(() => this.admin.fetchTopicOffsets(this.physical(topic)));
    return new Map(offsets.map(({ partition, high }) => [partition, Number(high)]));
  }

  async liveMembers(group: string): Promise<number> {
    this.ensureOpen();
    const { groups } = await withRetries(() =>
      this.admin.describeGroups([physicalGroup(this.settings.namespace, group)]),
    );
    const [described] = groups;
    return described && described.state !== "Dead" && described.state !== "Empty"
      ? described.members.length
      : 0;
  }

  async committed(group: string, topic: string): Promise<Map<number, number>> {
    this.ensureOpen();
    if (!(await this.holds(topic))) return new Map();
    const [entry] = await withRetries(() =>
      this.admin.fetchOffsets({
        groupId: physicalGroup(this.settings.namespace, group),
        topics: [this.physical(topic)],
      }),
    );
    return new Map(
      (entry?.partitions ?? [])
        .filter(({ offset }) => Number(offset) >= 0)
        .map(({ partition, offset }) => [partition, Number(offset)]),
    );
  }

  private ensureOpen(): void {
    if (this.closed) throw new Error("the Kafka log is closed");
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.consumers].map((c) => c.stop()));
    await Promise.all([...this.tails].map((stop) => stop()));
    await this.appendQueue;
    const committer = this.committer?.then((producer) => producer.disconnect());
    await Promise.all(
      [this.producer.disconnect(), this.admin.disconnect(), committer].map((p) => p?.catch(() => undefined)),
    );
  }
}

/** Opens (and connects) a Kafka log; fails fast with a clear message when no broker answers. */
export const openKafkaLog = (config: KafkaLogConfig, options?: KafkaLogOptions): Promise<KafkaLog> =>
  new KafkaLog(config, options).connect();
