import type { EventOf } from "../../streams/events/index.ts";
import { derivedId } from "../../streams/ids.ts";

type Dispatched = EventOf<"StepDispatched">;

/**
 * The envelope of an event answering a dispatched step (StepStarted, StepCompleted, StepFailed): on the
 * execution's stream and key, caused by the dispatch, with an id derived from it and `fact`.
 */
export const answerEnvelope = (dispatched: Dispatched, fact: string) => ({
  id: derivedId(dispatched.id, fact),
  stream: `execution-${dispatched.data.executionId}`,
  key: dispatched.key,
  correlationId: dispatched.correlationId,
  causationId: dispatched.id,
});

/** Which step (and attempt) an answer is about, and the worker that gives it. */
export const answeredStep = (dispatched: Dispatched, worker: string) => ({
  stepId: dispatched.data.stepId,
  executionId: dispatched.data.executionId,
  stageId: dispatched.data.stageId,
  attempt: dispatched.data.attempt,
  worker,
});
