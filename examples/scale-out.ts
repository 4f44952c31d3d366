/**
 * Scale out: two more processes run the processors next to this one, on the same log; they split the
 * partitions between them, and every request gets exactly one result. Meant for Kafka (the embedded log
 * works too, on one machine):
 *
 *   bash infra/kafka/start.sh && DSPEX_BACKEND=kafka npx tsx examples/scale-out.ts
 *
 * In a deployment the processes are `dspex processors` and `dspex workers`, on as many machines as you like.
 */
import { fork } from "node:child_process";
import { once } from "node:events";
import { connect, native, program, startProcessors } from "dspex";

if (process.argv[2] === "processors") {
  // A child: run every processor until told to stop, and say which partitions of the pipeline it holds.
  const dspex = await connect();
  const processors = startProcessors(dspex, {
    hooks: {
      onTasks: (name, tasks) =>
        name === "pipeline" &&
        console.log(`[${process.pid}] pipeline partitions ${tasks.join(",") || "none"}`),
    },
  });
  await processors.ready();
  process.send?.("ready");
  // Told to stop, or the parent is gone.
  await Promise.race([once(process, "SIGTERM"), once(process, "disconnect")]);
  await processors.stop();
  await dspex.close();
  process.exit(0);
}

const dspex = await connect();
await dspex.register(
  program("example-echo")
    .input("text: str")
    .stage("shout", native.transform("text -> loud: str", { fn: "uppercase" })),
);
const children = [0, 1].map(() => fork(import.meta.filename, ["processors"]));
try {
  await Promise.all(children.map((child) => once(child, "message")));
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      dspex.execute({ programId: "example-echo", inputs: { text: `request ${i}` } }),
    ),
  );
  const completed = results.filter((r) => r.type === "ExecutionCompleted").length;
  console.log(`${completed} of ${results.length} requests completed by 2 processor processes`);
} finally {
  for (const child of children) child.kill("SIGTERM");
  await Promise.all(children.map((child) => (child.exitCode === null ? once(child, "exit") : undefined)));
  await dspex.close();
}
