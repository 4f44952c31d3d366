import type { DspexEvent, StepError } from "../../streams/events/index.ts";

export interface StageStatus {
  stageId: string;
  status: "pending" | "scheduled" | "retrying" | "completed" | "failed" | "skipped";
  attempts: number;
  durationMs?: number;
  error?: StepError;
}

export interface ExecutionStatus {
  executionId: string;
  requestId?: string;
  programId?: string;
  status: "unknown" | "running" | "completed" | "failed" | "rejected";
  stages: Record<string, StageStatus>;
  durationMs?: number;
  error?: string;
  outputs?: Record<string, unknown>;
}

export const unknownExecution = (executionId: string): ExecutionStatus => ({
  executionId,
  status: "unknown",
  stages: {},
});

/** Folds one execution's events (executions and results topics) into what `dspex status` shows. */
export const foldExecutionStatus = (status: ExecutionStatus, event: DspexEvent): ExecutionStatus => {
  const stage = (stageId: string): StageStatus =>
    status.stages[stageId] ?? { stageId, status: "pending", attempts: 0 };
  const withStage = (next: StageStatus) => ({
    ...status,
    stages: { ...status.stages, [next.stageId]: next },
  });
  switch (event.type) {
    case "ExecutionStarted":
      if (event.data.executionId !== status.executionId) return status;
      return {
        ...status,
        requestId: event.data.requestId,
        programId: event.data.programId,
        status: "running",
        stages: Object.fromEntries(
          event.data.levels
            .flat()
            .map((id) => [id, { stageId: id, status: "pending" as const, attempts: 0 }]),
        ),
      };
    case "StageScheduled":
      if (event.data.executionId !== status.executionId) return status;
      return withStage({ ...stage(event.data.stageId), status: "scheduled", attempts: event.data.attempt });
    case "StageCompleted":
      if (event.data.executionId !== status.executionId) return status;
      return withStage({
        ...stage(event.data.stageId),
        status: "completed",
        attempts: event.data.attempt + 1,
        durationMs: event.data.durationMs,
      });
    case "StageFailed": {
      if (event.data.executionId !== status.executionId) return status;
      const skipped = event.data.error.kind === "cancelled";
      return withStage({
        ...stage(event.data.stageId),
        status: event.data.willRetry ? "retrying" : skipped ? "skipped" : "failed",
        attempts: event.data.attempt + 1,
        error: event.data.error,
      });
    }
    case "ExecutionCompleted":
      if (event.data.executionId !== status.executionId) return status;
      return {
        ...status,
        status: "completed",
        durationMs: event.data.durationMs,
        outputs: event.data.outputs,
      };
    case "ExecutionFailed":
      if (event.data.executionId !== status.executionId) return status;
      return {
        ...status,
        status: "failed",
        durationMs: event.data.durationMs,
        error: `stage ${event.data.failedStage}: ${event.data.error.message}`,
      };
    case "ExecutionRejected":
      if (event.data.requestId !== status.requestId) return status;
      return { ...status, status: "rejected", error: `${event.data.code}: ${event.data.reason}` };
    default:
      return status;
  }
};
