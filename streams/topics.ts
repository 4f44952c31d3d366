/** Every topic of the dspex log, with what it carries (see docs/wire-format.md). */
export const Topics = {
  requests: "dspex.requests",
  executions: "dspex.executions",
  steps: "dspex.steps",
  stepResults: "dspex.step-results",
  results: "dspex.results",
  metrics: "dspex.metrics",
  variables: "dspex.variables",
  optimizations: "dspex.optimizations",
  dlq: "dspex.dlq",
} as const;

export type Topic = (typeof Topics)[keyof typeof Topics];

export const allTopics: readonly Topic[] = Object.values(Topics);

/** The topics a request's events pass through, in the order they do. */
export const requestPath: readonly Topic[] = [
  Topics.requests,
  Topics.executions,
  Topics.steps,
  Topics.stepResults,
  Topics.results,
];

/** What decides the partition key on each topic. */
export const topicKeys: Record<Topic, string> = {
  "dspex.requests": "session id, else request id (evaluations, optimizations: their id)",
  "dspex.executions": "the execution's session key (session id, else request id)",
  "dspex.steps": "the execution's session key (affinity)",
  "dspex.step-results": "the step's key (its session key)",
  "dspex.results": "request id (an evaluation's examples: the evaluation id)",
  "dspex.metrics": "program id",
  "dspex.variables": "variable id",
  "dspex.optimizations": "optimization id",
  "dspex.dlq": "source key",
};
