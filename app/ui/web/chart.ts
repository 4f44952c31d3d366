/// <reference lib="dom" />
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import { html } from "./html.ts";

interface ChartProps {
  title: string;
  xLabel: string;
  yLabel: string;
  xs: number[];
  ys: number[];
  testId: string;
}

/** A score plot (uPlot): one point per trial. */
export const Chart = ({ title, xLabel, yLabel, xs, ys, testId }: ChartProps) => {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const target = box.current;
    if (!target) return;
    const plot = new uPlot(
      {
        title,
        width: Math.max(320, Math.min(target.clientWidth || 560, 720)),
        height: 260,
        scales: { x: { time: false } },
        axes: [{ label: xLabel }, { label: yLabel }],
        series: [
          { label: xLabel },
          { label: yLabel, stroke: "#3767c6", width: 1, points: { show: true, size: 7, fill: "#3767c6" } },
        ],
      },
      [xs, ys],
      target,
    );
    return () => plot.destroy();
  }, [title, xs.join(","), ys.join(",")]);
  return html`<div class="chart" ref=${box} data-testid=${testId} data-points=${xs.length}></div>`;
};
