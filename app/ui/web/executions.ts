import type { AttemptView, ExecutionView, TraceView } from "../../../projections/index.ts";
import type { LmCall } from "../../../streams/events/index.ts";
import { duration, short, shown, time } from "./format.ts";
import { html } from "./html.ts";
import { useLive } from "./live.ts";

interface ExecutionRow {
  executionId: string;
  programId?: string;
  sessionId?: string;
  status: string;
  startedAt?: string;
  finishedAt?: string;
  durationMs?: number;
  stages: number;
  error?: string;
}

const executionModels = ["executions", "traces"] as const;

const Status = ({ status }: { status: string }) => html`<span class="status ${status}">${status}</span>`;

export const ExecutionsPage = () => {
  const rows = useLive<ExecutionRow[]>("/api/executions", executionModels);
  if (rows === undefined) return html`<p>loading…</p>`;
  if (!rows || rows.length === 0) return html`<p class="empty">no executions on this log yet</p>`;
  return html`<table class="list" data-testid="executions">
    <thead><tr><th>execution</th><th>program</th><th>session</th><th>status</th><th>started</th><th>latency</th><th>stages</th><th>error</th></tr></thead>
    <tbody>
      ${rows.map(
        (row) => html`<tr key=${row.executionId} data-execution=${row.executionId}>
          <td><a href=${`#/executions/${encodeURIComponent(row.executionId)}`}>${row.executionId.slice(0, 8)}</a></td>
          <td>${row.programId ?? "—"}</td>
          <td>${row.sessionId ? short(row.sessionId, 16) : "—"}</td>
          <td><${Status} status=${row.status} /></td>
          <td>${time(row.startedAt ?? row.finishedAt)}</td>
          <td>${duration(row.durationMs)}</td>
          <td>${row.stages}</td>
          <td class="error">${row.error ? short(row.error, 60) : ""}</td>
        </tr>`,
      )}
    </tbody>
  </table>`;
};

const startOf = (a: AttemptView) => a.scheduledAt ?? a.dispatchedAt ?? a.startedAt ?? a.endedAt;
const endOf = (a: AttemptView) => a.endedAt ?? a.startedAt ?? a.dispatchedAt ?? a.scheduledAt;

/** Where each attempt's bar goes, as percentages of the execution's span. */
const bars = (attempts: AttemptView[]) => {
  const times = attempts.flatMap((a) => [startOf(a), endOf(a)]).flatMap((t) => (t ? [Date.parse(t)] : []));
  const first = Math.min(...times);
  const span = Math.max(1, Math.max(...times) - first);
  return attempts.map((a) => {
    const start = Date.parse(startOf(a) ?? "") - first || 0;
    const end = Date.parse(endOf(a) ?? "") - first || start;
    return { left: (100 * start) / span, width: Math.max(0.6, (100 * (end - start)) / span) };
  });
};

const Block = ({ title, value }: { title: string; value: unknown }) =>
  value === undefined ? null : html`<div class="block"><h4>${title}</h4><pre>${shown(value)}</pre></div>`;

const LmCalls = ({ calls }: { calls: LmCall[] }) => html`<div class="block lm-calls">
  <h4>LM calls (${calls.length})</h4>
  ${calls.map(
    (call, i) => html`<div class="lm-call" key=${i}>
      <div class="meta">${call.model} · ${call.promptTokens} → ${call.completionTokens} tokens · ${duration(call.latencyMs)}${call.cost ? ` · $${call.cost.toFixed(5)}` : ""}</div>
      ${(call.messages ?? []).map((m, j) => html`<div class="message" key=${j}><b>${m.role}</b><pre>${m.content}</pre></div>`)}
      ${call.completion === undefined ? html`<div class="meta">(usage only: the workers keep no text)</div>` : html`<div class="message completion"><b>completion</b><pre>${call.completion}</pre></div>`}
    </div>`,
  )}
</div>`;

const AttemptDetail = ({ attempt }: { attempt: AttemptView }) => html`<div class="attempt-detail">
  <div class="meta">
    ${attempt.module ? html`<span>${attempt.module}</span>` : null}
    ${attempt.model ? html`<span>model ${attempt.model}</span>` : null}
    ${attempt.temperature !== undefined ? html`<span>temperature ${attempt.temperature}</span>` : null}
    ${attempt.worker ? html`<span>worker ${attempt.worker}</span>` : null}
    ${attempt.usage ? html`<span>${attempt.usage.promptTokens} → ${attempt.usage.completionTokens} tokens</span>` : null}
    ${attempt.reroutedTo ? html`<span>rerouted to ${attempt.reroutedTo}</span>` : null}
    ${attempt.notBefore ? html`<span>retry not before ${time(attempt.notBefore)}</span>` : null}
  </div>
  ${attempt.error ? html`<div class="error">${attempt.error.kind}: ${attempt.error.message}${attempt.willRetry ? " (will retry)" : ""}</div>` : null}
  <${Block} title="variable versions" value=${attempt.variableVersions && Object.keys(attempt.variableVersions).length ? attempt.variableVersions : undefined} />
  <${Block} title="instructions" value=${attempt.instructions} />
  <${Block} title=${`demos (${attempt.demos?.length ?? 0})`} value=${attempt.demos?.length ? attempt.demos : undefined} />
  <${Block} title="inputs" value=${attempt.inputs} />
  <${Block} title="outputs" value=${attempt.outputs} />
  ${attempt.lmCalls ? html`<${LmCalls} calls=${attempt.lmCalls} />` : null}
</div>`;

interface ExecutionDetail {
  execution: ExecutionView;
  trace?: Omit<TraceView, "attempts"> & { attempts: AttemptView[] };
}

export const ExecutionPage = ({ id }: { id: string }) => {
  const detail = useLive<ExecutionDetail>(`/api/executions/${encodeURIComponent(id)}`, executionModels);
  if (detail === undefined) return html`<p>loading…</p>`;
  if (detail === null) return html`<p class="empty">no execution ${id} on this log</p>`;
  const { execution, trace } = detail;
  const attempts = trace?.attempts ?? [];
  const placed = bars(attempts);
  return html`<section data-testid="execution">
    <h2>execution ${execution.executionId} <${Status} status=${execution.status} /></h2>
    <div class="meta">
      <span>program ${execution.programId ?? "—"}</span>
      ${execution.sessionId ? html`<span>session ${execution.sessionId}</span>` : null}
      <span>started ${time(execution.startedAt)}</span>
      <span>latency ${duration(execution.durationMs)}</span>
      ${trace?.evaluationId ? html`<span>evaluation ${trace.evaluationId.slice(0, 8)} · example ${trace.exampleId ?? "?"}</span>` : null}
    </div>
    ${execution.error ? html`<div class="error">${execution.failedStage ? `${execution.failedStage}: ` : ""}${execution.error.message}</div>` : null}
    <h3>stages</h3>
    <div class="timeline" data-testid="timeline">
      ${attempts.map(
        (attempt, i) => html`<details class="attempt" key=${`${attempt.stageId}#${attempt.attempt}`}>
          <summary>
            <span class="label">${attempt.stageId}${attempt.attempt > 0 ? ` #${attempt.attempt + 1}` : ""}</span>
            <span class="track"><span class="bar ${attempt.status}" style=${{ left: `${placed[i]!.left}%`, width: `${placed[i]!.width}%` }}></span></span>
            <span class="took">${attempt.status} · ${duration(attempt.latencyMs)}</span>
          </summary>
          <${AttemptDetail} attempt=${attempt} />
        </details>`,
      )}
    </div>
    <div class="columns">
      <${Block} title="inputs" value=${trace?.inputs} />
      <${Block} title="outputs" value=${trace?.outputs} />
    </div>
  </section>`;
};
