/**
 * `dspex ui` in a real browser (Debian's Chromium, headless, driven by playwright-core) over a real
 * deployment in this process (embedded log, pipeline, evaluation and registry processors, a Python worker
 * with the test LM): the page loads, a new execution appears without a reload, its stage timeline and
 * LM output show, an optimization's plots have one point per trial, and markup injected through an LM
 * output and a dead letter stays text. On Kafka too: what the log holds and what is appended show live. DSPEX_UI_SCREENSHOTS=<folder> saves a screenshot of each view.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startUi } from "../../app/ui/server.ts";
import { dspy, program, v } from "../../index.ts";
import { findPython } from "../../processors/workers/python.ts";
import { ExecutionCompleted, ExecutionStarted, StageCompleted } from "../../streams/events/index.ts";
import { openLog } from "../../streams/open.ts";
import { appendEvents } from "../../streams/store.ts";
import { allTopics, Topics } from "../../streams/topics.ts";
import { findChromium } from "../support/browser.ts";
import { temporaryFolder } from "../support/cleanup.ts";
import { dspexHere } from "../support/dspex-here.ts";
import { freshKafkaConfig, kafkaForTests } from "../support/kafka.ts";
import { testLmRule } from "../support/test-lm.ts";

const browserFound = findChromium();
const pythonFound = findPython();
const skipReason =
  "reason" in browserFound ? browserFound.reason : pythonFound.python ? undefined : pythonFound.reason;
if (skipReason) console.warn(`skipping the UI browser test: ${skipReason}`);

const markup = `<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>`;
const screenshots = process.env.DSPEX_UI_SCREENSHOTS;

const examples = (split: string) =>
  ["alpha", "beta", "gamma"].map((word) => ({
    id: `${split}-${word}`,
    inputs: { question: word },
    expected: { answer: word.toUpperCase() },
  }));

describe.skipIf(skipReason !== undefined)("dspex ui in a browser", () => {
  const stops: (() => Promise<void>)[] = [];
  let browser: Browser;
  let page: Page;
  let url: string;
  let dspex: Awaited<ReturnType<typeof dspexHere>>["dspex"];
  let optimizationId: string;
  let trialsScored: number;

  const shot = async (name: string) => {
    if (!screenshots) return;
    mkdirSync(screenshots, { recursive: true });
    await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });
  };

  beforeAll(async () => {
    const folder = temporaryFolder("dspex-ui-");
    const rules = join(folder, "rules.json");
    writeFileSync(
      rules,
      JSON.stringify([
        testLmRule("inject", { answer: markup }),
        ...["alpha", "beta", "gamma"].map((w) => testLmRule(w, { answer: w.toUpperCase() })),
      ]),
    );
    const here = await dspexHere({
      log: { backend: "embedded", log: join(folder, "log.db") },
      processors: ["pipeline", "evaluation", "registry"],
    });
    stops.push(here.stop);
    dspex = here.dspex;
    await dspex.register(
      program("ui-echo")
        .input("question: str")
        .variable("model", v.model([`dspex/test?answers=${rules}`]))
        .stage("answer", dspy.predict("question -> answer"), {
          variables: { temperature: v.temperature(0) },
        }),
    );
    const first = await dspex.execute({ programId: "ui-echo", inputs: { question: "alpha" } });
    expect(first.type).toBe("ExecutionCompleted");
    const result = await dspex.optimize({
      programId: "ui-echo",
      optimizer: "random",
      trainset: examples("train"),
      devset: examples("dev"),
      metric: { name: "exact_match", field: "answer", params: {} },
      budget: { maxTrials: 4 },
      params: { trials: 4 },
      seed: 5,
    });
    optimizationId = result.optimizationId;
    trialsScored = result.trials;

    const ui = await startUi({ log: dspex.log, port: 0 });
    stops.push(ui.close);
    url = ui.url;
    browser = await chromium.launch({
      executablePath: (browserFound as { path: string }).path,
      headless: true,
      args: ["--no-sandbox"],
    });
    stops.push(() => browser.close());
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  }, 240_000);

  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
  });

  it("lists executions, and shows a new one live, without a reload", async () => {
    await page.goto(`${url}#/executions`);
    await page.waitForSelector("[data-testid=executions] tbody tr");
    const before = await page.locator("[data-testid=executions] tbody tr").count();
    const injected = await dspex.execute({ programId: "ui-echo", inputs: { question: "inject this" } });
    expect(injected.type).toBe("ExecutionCompleted");
    if (injected.type !== "ExecutionCompleted") return;
    await page.waitForSelector(`[data-execution="${injected.data.executionId}"]`, { timeout: 30_000 });
    expect(await page.locator("[data-testid=executions] tbody tr").count()).toBe(before + 1);
    await shot("executions");

    await page.click(`[data-execution="${injected.data.executionId}"] a`);
    await page.waitForSelector("[data-testid=timeline] .attempt");
    await page.click("[data-testid=timeline] .attempt summary");
    // The LM's output is shown as the text it is: no element made of it, no script run.
    await page.getByText(markup).first().waitFor();
    expect(await page.locator("main img, main script").count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await page.locator("[data-testid=timeline] .bar.completed").count()).toBe(1);
    await shot("execution");
  });

  it("plots an optimization's trajectory, one point per trial, with each trial's configuration", async () => {
    await page.goto(`${url}#/optimizations`);
    await page.click(`a[href="#/optimizations/${optimizationId}"]`);
    await page.waitForSelector("[data-testid=score-by-trial] canvas");
    const points = Number(await page.getAttribute("[data-testid=score-by-trial]", "data-points"));
    expect(points).toBe(trialsScored);
    expect(Number(await page.getAttribute("[data-testid=score-by-calls]", "data-points"))).toBe(trialsScored);
    expect(await page.locator("[data-testid=trials] tbody tr").count()).toBe(trialsScored);
    expect(await page.locator("[data-testid=trials] tbody tr").first().textContent()).toContain("baseline");
    await shot("optimization");
  });

  it("shows the registry with each variable's history", async () => {
    await page.goto(`${url}#/variables`);
    await page.waitForSelector("[data-testid=variables] .variable");
    expect(await page.locator("[data-testid=variables]").textContent()).toContain(
      "ui-echo.answer.temperature",
    );
    await shot("variables");
  });

  it("shows a dead letter's reason and original record as text", async () => {
    await dspex.log.append([{ topic: Topics.requests, key: "bad", value: `{"oops": ${markup}` }]);
    await page.goto(`${url}#/dead-letters`);
    await page.waitForSelector("[data-testid=dead-letters] tbody tr", { timeout: 30_000 });
    await page.click("[data-testid=dead-letters] tbody tr details summary");
    await page.getByText(`{"oops": ${markup}`, { exact: true }).waitFor();
    expect(await page.locator("main img, main script").count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    await shot("dead-letters");
  });

  it("refuses to serve on an address other than loopback unless asked", async () => {
    await expect(startUi({ log: dspex.log, host: "0.0.0.0", port: 0 })).rejects.toThrow(
      /loopback address only.*--allow-remote/,
    );
  });
});

const kafkaFound = kafkaForTests();
const kafkaSkip =
  "reason" in browserFound
    ? browserFound.reason
    : "skipReason" in kafkaFound
      ? kafkaFound.skipReason
      : undefined;
if (kafkaSkip) console.warn(`skipping the UI browser test on Kafka: ${kafkaSkip}`);

describe.skipIf(kafkaSkip !== undefined)("dspex ui in a browser, on Kafka", () => {
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
  });

  it("shows what the Kafka log holds, and what is appended to it, live", async () => {
    const log = await openLog(freshKafkaConfig());
    stops.push(() => log.close());
    await log.ensureTopics(allTopics.map((topic) => ({ topic })));
    const run = (n: number, at: number) => {
      const executionId = `kafka-ui-e${n}`;
      const on = { stream: `execution-${executionId}`, key: `session-${n}` };
      return [
        ExecutionStarted.create({
          ...on,
          occurredAt: new Date(at).toISOString(),
          data: {
            executionId,
            requestId: `kafka-ui-r${n}`,
            programId: "kafka-echo",
            programVersion: 1,
            sessionId: `session-${n}`,
            inputs: { text: `hello ${n}` },
            levels: [["shout"]],
          },
        }),
        StageCompleted.create({
          ...on,
          occurredAt: new Date(at + 5).toISOString(),
          data: { executionId, stageId: "shout", attempt: 0, outputs: { loud: `HELLO ${n}` }, durationMs: 5 },
        }),
        ExecutionCompleted.create({
          ...on,
          occurredAt: new Date(at + 6).toISOString(),
          data: {
            requestId: `kafka-ui-r${n}`,
            executionId,
            programId: "kafka-echo",
            outputs: { loud: `HELLO ${n}` },
            stages: { shout: { outputs: { loud: `HELLO ${n}` }, durationMs: 5, attempts: 1 } },
            durationMs: 6,
            usage: { calls: 0, promptTokens: 0, completionTokens: 0 },
          },
        }),
      ];
    };
    await appendEvents(log, run(1, Date.now()));
    const ui = await startUi({ log, port: 0 });
    stops.push(ui.close);
    const browser = await chromium.launch({
      executablePath: (browserFound as { path: string }).path,
      headless: true,
      args: ["--no-sandbox"],
    });
    stops.push(() => browser.close());
    const page = await browser.newPage();
    await page.goto(`${ui.url}#/executions`);
    await page.waitForSelector('[data-execution="kafka-ui-e1"]');
    await appendEvents(log, run(2, Date.now()));
    await page.waitForSelector('[data-execution="kafka-ui-e2"]', { timeout: 30_000 });
    await page.click('[data-execution="kafka-ui-e2"] a');
    await page.locator(".columns").getByText('"loud": "HELLO 2"').waitFor();
    expect(await page.locator("[data-testid=timeline] .bar.completed").count()).toBe(1);
    expect(await page.locator("[data-testid=overview]").textContent()).toContain("kafka log");
  });
});
