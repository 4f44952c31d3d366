import type { VariableState } from "../../../programs/registry.ts";
import type { DeadLetterView } from "../../../projections/index.ts";
import { short, shown, time } from "./format.ts";
import { html } from "./html.ts";
import { useLive } from "./live.ts";

export const VariablesPage = () => {
  const variables = useLive<VariableState[]>("/api/variables", ["variables"]);
  if (variables === undefined) return html`<p>loading…</p>`;
  if (!variables || variables.length === 0)
    return html`<p class="empty">no variables yet: register a program</p>`;
  return html`<section data-testid="variables">
    ${variables.map(
      (v) => html`<details class="variable" key=${v.variableId}>
        <summary>
          <b>${v.variableId}</b> <span class="kind">${v.declaration.spec.kind}</span> v${v.version} =
          <code>${short(typeof v.value === "string" ? v.value : JSON.stringify(v.value), 90)}</code>
          ${v.lease ? html` <span class="lease">leased to ${v.lease.holder}</span>` : null}
          ${v.rejections > 0 ? html` <span class="error">${v.rejections} rejected</span>` : null}
        </summary>
        <pre>${shown(v.value)}</pre>
        <ol class="history" reversed>
          ${[...v.history].reverse().map(
            (c) => html`<li key=${c.version}>
              v${c.version} by ${c.actor} at ${time(c.at)}${c.reason ? `: ${c.reason}` : ""}
              ${c.optimizationId ? html` <a href=${`#/optimizations/${encodeURIComponent(c.optimizationId)}`}>optimization ${c.optimizationId.slice(0, 8)}</a>` : null}
            </li>`,
          )}
        </ol>
        ${v.lastRejection ? html`<div class="error">last rejected: ${v.lastRejection.reason} (${v.lastRejection.actor})</div>` : null}
      </details>`,
    )}
  </section>`;
};

export const DeadLettersPage = () => {
  const letters = useLive<DeadLetterView[]>("/api/dead-letters", ["dead-letters"]);
  if (letters === undefined) return html`<p>loading…</p>`;
  if (!letters || letters.length === 0)
    return html`<p class="empty">no dead letters: every record was understood</p>`;
  return html`<table class="list" data-testid="dead-letters">
    <thead><tr><th>at</th><th>from</th><th>consumer</th><th>reason</th><th>original</th></tr></thead>
    <tbody>
      ${letters.map(
        (d) => html`<tr key=${d.id} data-dead-letter=${d.id}>
          <td>${time(d.at)}</td>
          <td>${d.topic}${d.partition !== undefined ? `/${d.partition}` : ""}${d.offset !== undefined ? `@${d.offset}` : ""}</td>
          <td>${d.consumer ?? "—"}</td>
          <td class="error">${d.reason}</td>
          <td><details><summary>${short(d.original, 60)}</summary><pre>${d.original}</pre></details></td>
        </tr>`,
      )}
    </tbody>
  </table>`;
};
