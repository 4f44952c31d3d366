export {
  committedInputs,
  type Rebuilt,
  type RecentIds,
  rebuildTask,
  rebuildTasks,
  recentIds,
} from "./rebuild.ts";
export { runProcessor } from "./run.ts";
export { openTable, type TableReader } from "./table.ts";
export type {
  CommittedInput,
  Output,
  Processor,
  ProcessorContext,
  RunningProcessor,
  RuntimeOptions,
  Table,
} from "./types.ts";
