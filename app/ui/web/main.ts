/// <reference lib="dom" />
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { followChanges } from "./api.ts";
import { ExecutionPage, ExecutionsPage } from "./executions.ts";
import { html } from "./html.ts";
import { announceChanges, useLive } from "./live.ts";
import { OptimizationPage, OptimizationsPage } from "./optimizations.ts";
import { DeadLettersPage, VariablesPage } from "./registry.ts";

interface Overview {
  backend: string;
  events: number;
  executions: Record<string, number>;
  optimizations: number;
  variables: number;
  deadLetters: number;
  lag: { group: string; behind: number }[];
}

const routeOf = (hash: string): string[] => hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);

const useRoute = () => {
  const [route, setRoute] = useState(routeOf(location.hash));
  useEffect(() => {
    const changed = () => setRoute(routeOf(location.hash));
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return route;
};

const Header = ({ section }: { section: string }) => {
  const overview = useLive<Overview>("/api/overview", [
    "executions",
    "optimizations",
    "variables",
    "dead-letters",
  ]);
  const link = (name: string, label: string, count?: number) =>
    html`<a href=${`#/${name}`} class=${section === name ? "current" : ""}>${label}${count === undefined ? "" : html` <span class="count">${count}</span>`}</a>`;
  const running = overview?.executions.running ?? 0;
  const behind = (overview?.lag ?? []).filter((l) => l.behind > 0);
  return html`<header>
    <h1>dspex</h1>
    <nav>
      ${link("executions", "executions", overview ? Object.values(overview.executions).reduce((a, b) => a + b, 0) : undefined)}
      ${link("optimizations", "optimizations", overview?.optimizations)}
      ${link("variables", "variables", overview?.variables)}
      ${link("dead-letters", "dead letters", overview?.deadLetters)}
    </nav>
    <div class="meta" data-testid="overview">
      ${overview ? html`<span>${overview.backend} log · ${overview.events} events · ${running} running</span>` : null}
      ${behind.length > 0 ? html`<span class="lag">behind: ${behind.map((l) => `${l.group} ${l.behind}`).join(", ")}</span>` : overview ? html`<span>no group behind</span>` : null}
    </div>
  </header>`;
};

const App = () => {
  const [section = "executions", id] = useRoute();
  useEffect(() => followChanges(announceChanges), []);
  const page =
    section === "optimizations"
      ? id
        ? html`<${OptimizationPage} id=${id} />`
        : html`<${OptimizationsPage} />`
      : section === "variables"
        ? html`<${VariablesPage} />`
        : section === "dead-letters"
          ? html`<${DeadLettersPage} />`
          : id
            ? html`<${ExecutionPage} id=${id} />`
            : html`<${ExecutionsPage} />`;
  return html`<${Header} section=${section || "executions"} /><main>${page}</main>`;
};

const root = document.getElementById("app")!;
root.textContent = "";
render(html`<${App} />`, root);
