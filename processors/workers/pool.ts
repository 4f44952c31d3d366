import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import type { Envelope } from "../../streams/envelope.ts";
import { encodeFrame, FrameDecoder } from "./frames.ts";

/**
 * A pool of Python stdio workers (`python -m dspex_consumers --transport stdio`): N processes, one step
 * at a time each, health pings, restart on crash (the step in flight runs again elsewhere), a queue
 * limit with a clear `pool_saturated` error, soft session affinity and an idle-session TTL.
 */
export interface WorkerPoolOptions {
  /** The venv's python (what `infra/python/setup.sh` prints). */
  python: string;
  workers?: number;
  /** Steps waiting for a worker beyond which `run` refuses with `pool_saturated`. */
  queueLimit?: number;
  pingIntervalMs?: number;
  /** A worker that does not answer a ping within this is killed and replaced. */
  pingTimeoutMs?: number;
  /** How long a new worker may take to load DSPy before it is killed and replaced (on top of pingTimeoutMs). */
  startupTimeoutMs?: number;
  /** A session unused this long forgets its worker. */
  idleSessionTtlMs?: number;
  /** How often a step may lose its worker to a crash before it fails. */
  maxCrashesPerStep?: number;
  /**
   * Resident memory (MB) past which a worker takes no new step: once idle it is restarted (and its memory
   * given back) while the others go on. Default: no limit.
   */
  maxWorkerMemoryMb?: number;
  /** Extra arguments for the worker (e.g. `--test-answers file.json`). */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface StepRun {
  started: Envelope;
  /** StepCompleted or StepFailed. */
  result: Envelope;
  worker: string;
}

export class PoolSaturatedError extends Error {
  readonly code = "pool_saturated";
  constructor(queued: number, limit: number) {
    super(`pool_saturated: ${queued} steps already wait for a Python worker (limit ${limit})`);
  }
}

export class StepLostError extends Error {
  readonly code = "step_lost";
}

interface Task {
  request: number;
  dispatched: Envelope;
  sessionKey: string;
  /** The model the step loads (a Retrieve step: its embedder). */
  model: string;
  crashes: number;
  resolve: (run: StepRun) => void;
  reject: (error: Error) => void;
}

interface Worker {
  name: string;
  child: ChildProcessWithoutNullStreams;
  ready: boolean;
  task?: Task;
  lastPongAt: number;
  pingSentAt?: number;
  exited: boolean;
  /** What the worker last said it has loaded, and its resident memory. */
  models: ReadonlySet<string>;
  memoryMb: number;
  /** Over its memory limit: finishing, to be restarted. */
  recycling?: boolean;
  /** Steps it answered since it started. */
  ran: number;
}

interface Capacity {
  models: string[];
  rssMb: number;
}

type Message = {
  type: string;
  id?: number;
  event?: Envelope;
  /** A result's StepStarted, written when the step began. */
  started?: Envelope;
  reason?: string;
  capacity?: Capacity;
};

const noModels: ReadonlySet<string> = new Set();

/**
 * Which queued task an idle worker takes: its own sessions first; then, of the tasks whose session's worker
 * is busy or unknown, one whose model it has loaded; else one whose model no other idle worker has loaded
 * (that worker takes it) — unless another idle worker has fewer models loaded, which takes the new model.
 */
export const pickTask = (
  queue: readonly { sessionKey: string; model?: string }[],
  worker: number,
  affinity: ReadonlyMap<string, number>,
  isIdle: (worker: number) => boolean,
  modelsOf: (worker: number) => ReadonlySet<string> = () => noModels,
  idleWorkers: readonly number[] = [],
): number => {
  const own = queue.findIndex((task) => affinity.get(task.sessionKey) === worker);
  if (own >= 0) return own;
  const free = (task: { sessionKey: string }) => {
    const preferred = affinity.get(task.sessionKey);
    return preferred === undefined || !isIdle(preferred);
  };
  const loaded = (w: number, task: { model?: string }) =>
    task.model !== undefined && modelsOf(w).has(task.model);
  const here = queue.findIndex((task) => free(task) && loaded(worker, task));
  if (here >= 0) return here;
  const others = idleWorkers.filter((other) => other !== worker);
  if (others.some((other) => modelsOf(other).size < modelsOf(worker).size)) return -1;
  return queue.findIndex((task) => free(task) && !others.some((other) => loaded(other, task)));
};

const sessionKeyOf = (dispatched: Envelope): string => {
  const data = dispatched.data as { sessionKey?: string };
  return data.sessionKey ?? dispatched.key;
};

/** The model a step loads: its LM's, a Retrieve step's embedder. */
const modelOf = (dispatched: Envelope): string => {
  const data = dispatched.data as {
    module?: string;
    lm?: { model?: string };
    retrieve?: { embedder?: string };
  };
  return (data.module === "Retrieve" ? data.retrieve?.embedder : data.lm?.model) ?? "";
};

export const startWorkerPool = (options: WorkerPoolOptions) => {
  const size = options.workers ?? 2;
  const queueLimit = options.queueLimit ?? 1000;
  const pingIntervalMs = options.pingIntervalMs ?? 5_000;
  const pingTimeoutMs = options.pingTimeoutMs ?? 20_000;
  const startupTimeoutMs = options.startupTimeoutMs ?? 60_000;
  const idleSessionTtlMs = options.idleSessionTtlMs ?? 10 * 60_000;
  const maxCrashes = options.maxCrashesPerStep ?? 2;
  const workers: Worker[] = [];
  const queue: Task[] = [];
  const affinity = new Map<string, number>();
  const sessionUsedAt = new Map<string, number>();
  let nextRequest = 1;
  let closing = false;
  let restarts = 0;
  let recycled = 0;

  const isIdle = (index: number) => {
    const worker = workers[index];
    return Boolean(worker?.ready && !worker.task && !worker.exited && !worker.recycling);
  };
  const modelsOf = (index: number) => workers[index]?.models ?? noModels;
  // A worker that ran nothing is as small as a worker gets: restarting it would give nothing back.
  const overLimit = (worker: Worker) =>
    options.maxWorkerMemoryMb !== undefined && worker.ran > 0 && worker.memoryMb > options.maxWorkerMemoryMb;

  const send = (worker: Worker, message: unknown) => {
    if (!worker.exited) worker.child.stdin.write(encodeFrame(message));
  };

  /** Restarts an idle worker past its memory limit: it takes no new step meanwhile. */
  const recycle = (worker: Worker) => {
    worker.recycling = true;
    recycled += 1;
    send(worker, { type: "shutdown" });
  };

  const dispatch = () => {
    workers.forEach((worker, index) => {
      if (isIdle(index) && overLimit(worker)) recycle(worker);
    });
    // Passes until nothing moves: a task left for a worker that took another one goes to the next.
    for (let moved = true; moved && queue.length > 0; ) {
      moved = false;
      const idle = workers.flatMap((_, index) => (isIdle(index) ? [index] : []));
      for (const index of idle) {
        if (!isIdle(index) || queue.length === 0) continue;
        const picked = pickTask(queue, index, affinity, isIdle, modelsOf, idle.filter(isIdle));
        if (picked < 0) continue;
        const [task] = queue.splice(picked, 1);
        const worker = workers[index]!;
        worker.task = task!;
        affinity.set(task!.sessionKey, index);
        sessionUsedAt.set(task!.sessionKey, Date.now());
        send(worker, { type: "step", id: task!.request, event: task!.dispatched });
        moved = true;
      }
    }
  };

  const noteCapacity = (worker: Worker, capacity: Capacity | undefined) => {
    if (!capacity) return;
    worker.models = new Set(capacity.models);
    worker.memoryMb = capacity.rssMb;
  };

  const onMessage = (worker: Worker, message: Message) => {
    switch (message.type) {
      case "ready":
        worker.ready = true;
        worker.lastPongAt = Date.now();
        break;
      case "pong":
        worker.lastPongAt = Date.now();
        worker.pingSentAt = undefined;
        noteCapacity(worker, message.capacity);
        break;
      case "result": {
        const task = worker.task;
        if (!task || message.id !== task.request || !message.event) break;
        worker.task = undefined;
        worker.ran += 1;
        noteCapacity(worker, message.capacity);
        task.resolve({
          started: message.started ?? message.event,
          result: message.event,
          worker: worker.name,
        });
        break;
      }
      case "error": {
        const task = worker.task;
        if (!task || message.id !== task.request) break;
        worker.task = undefined;
        task.reject(new Error(`worker ${worker.name} refused the step: ${message.reason}`));
        break;
      }
    }
    dispatch();
  };

  const spawnWorker = (index: number) => {
    const name = `py-${index}-${restarts}`;
    const child = spawn(
      options.python,
      ["-m", "dspex_consumers", "--transport", "stdio", "--worker", name, ...(options.args ?? [])],
      {
        cwd: options.cwd,
        env: options.env ?? process.env,
        stdio: ["pipe", "pipe", "pipe"],
      },
    );
    const worker: Worker = {
      name,
      child,
      ready: false,
      lastPongAt: Date.now(),
      exited: false,
      models: new Set(),
      memoryMb: 0,
      ran: 0,
    };
    workers[index] = worker;
    const decoder = new FrameDecoder();
    child.stdout.on("data", (chunk: Buffer) => {
      for (const message of decoder.push(chunk)) onMessage(worker, message as Message);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      if (process.env.DSPEX_WORKER_LOGS) process.stderr.write(`[${name}] ${chunk}`);
    });
    child.stdin.on("error", () => undefined); // a dead worker's pipe; its exit handler recovers
    child.on("exit", () => onExit(index, worker));
  };

  const onExit = (index: number, worker: Worker) => {
    worker.exited = true;
    const task = worker.task;
    worker.task = undefined;
    if (task) {
      task.crashes += 1;
      if (task.crashes > maxCrashes || closing) {
        task.reject(new StepLostError(`step lost: its worker died ${task.crashes} times`));
      } else {
        queue.unshift(task);
      }
    }
    for (const [session, preferred] of affinity) if (preferred === index) affinity.delete(session);
    if (!closing && workers[index] === worker) {
      restarts += 1;
      spawnWorker(index);
    }
    dispatch();
  };

  const health = setInterval(() => {
    const now = Date.now();
    for (const worker of workers) {
      if (worker.exited) continue;
      const silentFor = now - worker.lastPongAt;
      if (silentFor > pingTimeoutMs + (worker.ready ? 0 : startupTimeoutMs)) worker.child.kill("SIGKILL");
      else if (worker.ready) {
        worker.pingSentAt = now;
        send(worker, { type: "ping", id: 0 });
      }
    }
    for (const [session, usedAt] of sessionUsedAt) {
      if (now - usedAt > idleSessionTtlMs) {
        sessionUsedAt.delete(session);
        affinity.delete(session);
      }
    }
  }, pingIntervalMs);
  health.unref();

  for (let index = 0; index < size; index++) spawnWorker(index);

  return {
    /** Runs one StepDispatched on a worker; rejects at once with PoolSaturatedError when the queue is full. */
    run(dispatched: Envelope): Promise<StepRun> {
      if (closing) return Promise.reject(new Error("the worker pool is closed"));
      if (queue.length >= queueLimit) return Promise.reject(new PoolSaturatedError(queue.length, queueLimit));
      return new Promise<StepRun>((resolve, reject) => {
        queue.push({
          request: nextRequest++,
          dispatched,
          sessionKey: sessionKeyOf(dispatched),
          model: modelOf(dispatched),
          crashes: 0,
          resolve,
          reject,
        });
        dispatch();
      });
    },
    /** Resolves when every worker has said it is ready (DSPy loads in a few seconds). */
    async ready(timeoutMs = 120_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!workers.every((worker) => worker.ready && !worker.exited)) {
        if (Date.now() > deadline)
          throw new Error("Python workers did not start in time (set DSPEX_WORKER_LOGS=1)");
        await new Promise((wake) => setTimeout(wake, 50));
      }
    },
    stats: () => ({
      workers: workers.map((worker) => ({
        name: worker.name,
        pid: worker.child.pid,
        busy: Boolean(worker.task),
        ready: worker.ready,
        models: [...worker.models],
        memoryMb: worker.memoryMb,
      })),
      queued: queue.length,
      sessions: affinity.size,
      restarts,
      /** Workers restarted for going past their memory limit. */
      recycled,
    }),
    /** The worker process (pid) of slot `index`, for tests that kill one. */
    pidOf: (index: number) => workers[index]?.child.pid,
    /** Finishes the steps in flight, refuses the queued ones, and stops every worker. */
    async close(timeoutMs = 30_000): Promise<void> {
      closing = true;
      clearInterval(health);
      for (const task of queue.splice(0))
        task.reject(new Error("the worker pool closed before the step ran"));
      const exits = workers.map(
        (worker) =>
          new Promise<void>((done) => (worker.exited ? done() : worker.child.once("exit", () => done()))),
      );
      for (const worker of workers) send(worker, { type: "shutdown" });
      const timer = setTimeout(() => {
        for (const worker of workers) if (!worker.exited) worker.child.kill("SIGKILL");
      }, timeoutMs);
      await Promise.all(exits);
      clearTimeout(timer);
    },
  };
};

export type WorkerPool = ReturnType<typeof startWorkerPool>;
