/** Benchmark output: one `bench: <metric> = <number> <unit>` line per figure, and a summary at the end. */
export interface Figure {
  suite: string;
  metric: string;
  value: number;
  unit: string;
}

export const figures: Figure[] = [];

export const report = (suite: string, metric: string, value: number, unit: string): void => {
  figures.push({ suite, metric, value, unit });
  const shown = Math.abs(value) >= 100 ? value.toFixed(0) : value.toPrecision(3);
  console.log(`bench: ${suite}.${metric} = ${shown} ${unit}`);
};

export const percentile = (sorted: readonly number[], p: number): number =>
  sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

export const median = (values: readonly number[]): number =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );

export const seconds = (startNs: bigint): number => Number(process.hrtime.bigint() - startNs) / 1e9;

export interface Suite {
  name: string;
  description: string;
  run(): Promise<void>;
}
