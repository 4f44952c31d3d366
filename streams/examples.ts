import type { Envelope } from "./envelope.ts";
import { catalog, type EventType } from "./events/index.ts";
import { derivedId, uuidV5 } from "./ids.ts";

const at = "2026-01-01T00:00:00.000Z";
const signature = {
  instructions: "Answer the question in one word.",
  inputs: [{ name: "question", type: "str", optional: false }],
  outputs: [{ name: "answer", type: "str", optional: false }],
};

/** One example of the data of every event type: the wire-format doc and the shared vectors use them. */
const exampleData: Record<EventType, { stream: string; key: string; data: unknown }> = {
  ExecutionRequested: {
    stream: "request-r1",
    key: "session-1",
    data: {
      requestId: "r1",
      programId: "qa",
      inputs: { question: "Capital of France?" },
      sessionId: "session-1",
    },
  },
  EvaluationRequested: {
    stream: "evaluation-e1",
    key: "e1",
    data: {
      evaluationId: "e1",
      programId: "qa",
      examples: [{ id: "x1", inputs: { question: "2+2?" }, expected: { answer: "4" } }],
      metric: { name: "exact_match", field: "answer" },
      concurrency: 4,
    },
  },
  OptimizationRequested: {
    stream: "optimization-o1",
    key: "o1",
    data: {
      optimizationId: "o1",
      programId: "qa",
      optimizer: "bootstrap",
      variables: ["answer.demos"],
      trainset: [{ id: "t1", inputs: { question: "2+2?" }, expected: { answer: "4" } }],
      devset: [{ id: "d1", inputs: { question: "3+3?" }, expected: { answer: "6" } }],
      metric: { name: "exact_match", field: "answer" },
      budget: { maxCalls: 100 },
      seed: 7,
    },
  },
  ExecutionStarted: {
    stream: "execution-x1",
    key: "session-1",
    data: {
      executionId: "x1",
      requestId: "r1",
      programId: "qa",
      programVersion: 1,
      sessionId: "session-1",
      inputs: { question: "Capital of France?" },
      levels: [["answer"]],
    },
  },
  StageScheduled: {
    stream: "execution-x1",
    key: "session-1",
    data: { executionId: "x1", stageId: "answer", attempt: 0 },
  },
  StageCompleted: {
    stream: "execution-x1",
    key: "session-1",
    data: {
      executionId: "x1",
      stageId: "answer",
      attempt: 0,
      outputs: { answer: "Paris" },
      durationMs: 41.5,
    },
  },
  StageFailed: {
    stream: "execution-x1",
    key: "session-1",
    data: {
      executionId: "x1",
      stageId: "answer",
      attempt: 0,
      error: { kind: "timeout", message: "step timed out after 30000 ms", retryable: true },
      willRetry: true,
    },
  },
  CircuitOpened: {
    stream: "circuit-openai/gpt-4o-mini",
    key: "openai/gpt-4o-mini",
    data: { circuit: "openai/gpt-4o-mini", reason: "5 failures in 60 s" },
  },
  CircuitHalfOpened: {
    stream: "circuit-openai/gpt-4o-mini",
    key: "openai/gpt-4o-mini",
    data: { circuit: "openai/gpt-4o-mini" },
  },
  CircuitClosed: {
    stream: "circuit-openai/gpt-4o-mini",
    key: "openai/gpt-4o-mini",
    data: { circuit: "openai/gpt-4o-mini" },
  },
  SessionExpired: {
    stream: "session-session-1",
    key: "session-1",
    data: { sessionId: "session-1", lastActivityAt: "2026-01-01T00:00:00.000Z", ttlMs: 1_800_000 },
  },
  StepRerouted: {
    stream: "execution-x1",
    key: "session-1",
    data: {
      executionId: "x1",
      stageId: "answer",
      from: "openai/gpt-4o-mini",
      to: "dspex/offline",
      reason: "circuit open",
    },
  },
  StepDispatched: {
    stream: "execution-x1",
    key: "session-1",
    data: {
      stepId: "s1",
      executionId: "x1",
      stageId: "answer",
      attempt: 0,
      programId: "qa",
      module: "Predict",
      signature,
      inputs: { question: "Capital of France?" },
      demos: [{ question: "Capital of Italy?", answer: "Rome" }],
      lm: { model: "dspex/test", temperature: 0, maxTokens: 256 },
      variableVersions: { "answer.demos": 2, model: 1 },
      sessionKey: "session-1",
      timeoutMs: 30000,
    },
  },
  StepStarted: {
    stream: "execution-x1",
    key: "session-1",
    data: { stepId: "s1", executionId: "x1", stageId: "answer", attempt: 0, worker: "worker-1" },
  },
  StepCompleted: {
    stream: "execution-x1",
    key: "session-1",
    data: {
      stepId: "s1",
      executionId: "x1",
      stageId: "answer",
      attempt: 0,
      worker: "worker-1",
      outputs: { answer: "Paris" },
      usage: { calls: 1, promptTokens: 120, completionTokens: 3 },
      latencyMs: 40.2,
      trace: [
        { predictor: "answer", inputs: { question: "Capital of France?" }, outputs: { answer: "Paris" } },
      ],
      lmCalls: [
        {
          model: "openai/gpt-4o-mini",
          messages: [
            { role: "system", content: "Your input fields are: `question` (str). ..." },
            { role: "user", content: "[[ ## question ## ]]\nCapital of France? ..." },
          ],
          completion: "[[ ## answer ## ]]\nParis\n\n[[ ## completed ## ]]",
          promptTokens: 120,
          completionTokens: 3,
          latencyMs: 38.7,
          cost: 0.0000198,
        },
      ],
    },
  },
  StepFailed: {
    stream: "execution-x1",
    key: "session-1",
    data: {
      stepId: "s1",
      executionId: "x1",
      stageId: "answer",
      attempt: 0,
      worker: "worker-1",
      error: { kind: "rate_limit", message: "429 from provider", retryable: true },
      latencyMs: 12,
    },
  },
  ExecutionCompleted: {
    stream: "execution-x1",
    key: "r1",
    data: {
      requestId: "r1",
      executionId: "x1",
      programId: "qa",
      outputs: { answer: "Paris" },
      stages: { answer: { outputs: { answer: "Paris" }, durationMs: 41.5, attempts: 1 } },
      durationMs: 45,
      usage: { calls: 1, promptTokens: 120, completionTokens: 3 },
    },
  },
  ExecutionFailed: {
    stream: "execution-x1",
    key: "r1",
    data: {
      requestId: "r1",
      executionId: "x1",
      programId: "qa",
      failedStage: "draft",
      error: { kind: "lm_error", message: "provider returned 500", retryable: false },
      partial: { classify: { outputs: { label: "billing" }, durationMs: 30, attempts: 1 } },
      durationMs: 900,
      usage: { calls: 3, promptTokens: 400, completionTokens: 20 },
    },
  },
  ExecutionRejected: {
    stream: "request-r2",
    key: "r2",
    data: { requestId: "r2", programId: "qa", code: "invalid", reason: "question must be a string" },
  },
  EvaluationCompleted: {
    stream: "evaluation-e1",
    key: "e1",
    data: {
      evaluationId: "e1",
      programId: "qa",
      score: 0.5,
      results: [
        { exampleId: "x1", score: 1, outputs: { answer: "4" } },
        { exampleId: "x2", score: 0, error: "timeout" },
      ],
      errors: 1,
      usage: { calls: 2, promptTokens: 200, completionTokens: 4 },
    },
  },
  MetricRecorded: {
    stream: "metrics-qa",
    key: "qa",
    data: {
      programId: "qa",
      name: "stage.latency",
      value: 41.5,
      unit: "ms",
      labels: { stage: "answer" },
      executionId: "x1",
    },
  },
  AlertRaised: {
    stream: "alerts-qa",
    key: "qa",
    data: {
      alertId: "a1",
      programId: "qa",
      metric: "judge",
      labels: {},
      method: "ewma",
      direction: "down",
      baseline: 0.92,
      current: 0.55,
      threshold: 0.25,
      observations: 24,
    },
  },
  AlertCleared: {
    stream: "alerts-qa",
    key: "qa",
    data: {
      alertId: "a1",
      programId: "qa",
      metric: "judge",
      labels: {},
      method: "ewma",
      direction: "down",
      baseline: 0.92,
      current: 0.81,
      threshold: 0.25,
      observations: 40,
      raisedAt: "2026-01-01T00:00:10.000Z",
    },
  },
  ProgramRegistered: {
    stream: "program-qa",
    key: "qa",
    data: {
      programId: "qa",
      version: 1,
      description: "Answers a question in one word.",
      inputs: [{ name: "question", type: "str", optional: false }],
      outputs: { answer: "answer.answer" },
      stages: [
        {
          id: "answer",
          runtime: "dspy",
          module: "Predict",
          signature,
          dependsOn: [],
          bindings: {},
          config: {},
          variables: [{ name: "demos", spec: { kind: "demos", maxItems: 4 }, initial: [] }],
        },
      ],
      variables: [
        {
          name: "model",
          spec: { kind: "module", choices: ["dspex/test", "dspex/offline"] },
          initial: "dspex/test",
        },
        { name: "temperature", spec: { kind: "float", min: 0, max: 1, precision: 2 }, initial: 0 },
      ],
    },
  },
  VariableDeclared: {
    stream: "variable-qa.temperature",
    key: "qa.temperature",
    data: {
      variableId: "qa.temperature",
      programId: "qa",
      declaration: { name: "temperature", spec: { kind: "float", min: 0, max: 1, precision: 2 }, initial: 0 },
    },
  },
  VariableChanged: {
    stream: "variable-qa.temperature",
    key: "qa.temperature",
    data: {
      variableId: "qa.temperature",
      value: 0.7,
      previous: 0,
      version: 2,
      actor: "optimizer:o1",
      reason: "best trial",
      provenance: { optimizationId: "o1", scoreBefore: 0.5, scoreAfter: 0.8 },
    },
  },
  VariableChangeRejected: {
    stream: "variable-qa.temperature",
    key: "qa.temperature",
    data: { variableId: "qa.temperature", value: 3, actor: "cli", reason: "3 is above the maximum 1" },
  },
  VariableLeaseRequested: {
    stream: "variable-qa.temperature",
    key: "qa.temperature",
    data: { variableId: "qa.temperature", leaseId: "o1", holder: "optimizer:o1", ttlMs: 30000 },
  },
  VariableLeaseGranted: {
    stream: "variable-qa.temperature",
    key: "qa.temperature",
    data: { variableId: "qa.temperature", leaseId: "o1", holder: "optimizer:o1" },
  },
  VariableLeaseRenewed: {
    stream: "variable-qa.temperature",
    key: "qa.temperature",
    data: { variableId: "qa.temperature", leaseId: "o1" },
  },
  VariableLeaseReleased: {
    stream: "variable-qa.temperature",
    key: "qa.temperature",
    data: { variableId: "qa.temperature", leaseId: "o1", holder: "optimizer:o1" },
  },
  VariableCommandIssued: {
    stream: "variable-qa.temperature",
    key: "qa.temperature",
    data: {
      command: "set",
      variableId: "qa.temperature",
      value: 0.3,
      actor: "cli",
      reason: "less creative answers",
    },
  },
  OptimizationStarted: {
    stream: "optimization-o1",
    key: "o1",
    data: {
      optimizationId: "o1",
      programId: "qa",
      optimizer: "bayes",
      variables: ["qa.temperature"],
      seed: 7,
      plannedTrials: 20,
      plannedCalls: 400,
    },
  },
  TrialProposed: {
    stream: "optimization-o1",
    key: "o1",
    data: { optimizationId: "o1", trial: 3, config: { "qa.temperature": 0.7 }, seed: 10 },
  },
  TrialEvaluated: {
    stream: "optimization-o1",
    key: "o1",
    data: { optimizationId: "o1", trial: 3, score: 0.8, calls: 20 },
  },
  OptimizationCompleted: {
    stream: "optimization-o1",
    key: "o1",
    data: {
      optimizationId: "o1",
      programId: "qa",
      baselineScore: 0.5,
      bestScore: 0.8,
      bestConfig: { "qa.temperature": 0.7 },
      accepted: true,
      trials: 20,
      calls: 400,
    },
  },
  OptimizationFailed: {
    stream: "optimization-o1",
    key: "o1",
    data: {
      optimizationId: "o1",
      programId: "qa",
      reason: "gave up waiting 60000 ms for its leases; another optimization holds its variables",
    },
  },
  DeadLettered: {
    stream: "dlq-dspex.requests",
    key: "session-1",
    data: {
      source: { topic: "dspex.requests", partition: 0, offset: "42", consumer: "dspex-intake" },
      reason: "value is not JSON: Unexpected token",
      original: "{not json",
      encoding: "utf8",
    },
  },
};

/** A valid, fully deterministic envelope of every event type in the catalog. */
export const exampleEvents = (): Envelope[] =>
  catalog.map((definition) => {
    const example = exampleData[definition.type as EventType];
    const id = uuidV5(`example/${definition.type}`);
    return (definition.create as (draft: object) => Envelope)({
      ...example,
      id,
      occurredAt: at,
      correlationId: "r1",
      causationId: definition.type === "ExecutionRequested" ? null : derivedId("r1", definition.type),
    });
  });
