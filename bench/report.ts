/** Benchmark output: one `bench: <metric> = <number> <unit>` line per figure, and a summary at the end. */
import { availableParallelism, cpus, loadavg, totalmem } from "node:os";

export interface Figure {
  suite: string;
  metric: string;
  value: number;
  unit: string;
}

export const figures: Figure[] = [];

const shown = (value: number) => (Math.abs(value) >= 100 ? value.toFixed(0) : value.toPrecision(3));

export const report = (suite: string, metric: string, value: number, unit: string): void => {
  figures.push({ suite, metric, value, unit });
  console.log(`bench: ${suite}.${metric} = ${shown(value)} ${unit}`.trimEnd());
};

/** A `bench:` line that is not a figure (a note, a skip) becomes a `#` line: `bench:` is for figures. */
export const figureLine = /^bench: \S.* = (-?[\d.]+(e[+-]?\d+)?|NaN|-?Infinity)( .*)?$/;

/** The machine, for the top of a run (figures from a shared machine are noisy: read the ratios). */
export const machine = (): string => {
  const [one, five] = loadavg();
  return [
    `${new Date().toISOString()}`,
    `${cpus()[0]?.model ?? "unknown CPU"}, ${availableParallelism()} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`,
    `node ${process.version}, ${process.platform}`,
    `load average ${one?.toFixed(1)} (1 min), ${five?.toFixed(1)} (5 min)`,
  ].join("; ");
};

/** The summary at the end: every figure of the run, by suite, aligned. */
export const summary = (all: readonly Figure[] = figures): string => {
  const rows = all.map((f) => [`${f.suite}.${f.metric}`, shown(f.value), f.unit]);
  const width = (i: number) => Math.max(...rows.map((r) => r[i]!.length), 6);
  const line = (r: string[]) => `${r[0]!.padEnd(width(0))}  ${r[1]!.padStart(width(1))}  ${r[2]}`.trimEnd();
  return [
    line(["metric", "value", "unit"]),
    line(["-".repeat(width(0)), "-".repeat(width(1)), "----"]),
    ...rows.map(line),
  ].join("\n");
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

/** (max - min) / median: how far apart the rounds were, as a fraction of the median. */
export const spread = (values: readonly number[]): number =>
  values.length === 0 ? Number.NaN : (Math.max(...values) - Math.min(...values)) / median(values);

export const seconds = (startNs: bigint): number => Number(process.hrtime.bigint() - startNs) / 1e9;

export interface Suite {
  name: string;
  description: string;
  run(): Promise<void>;
}
