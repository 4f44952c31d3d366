/**
 * Everything dspex knows is rebuilt from the log: register a program and run a request, close, connect
 * again and replay the read models — the variable registry, the executions, the sessions.
 *
 *   npx tsx examples/replay.ts
 */
import { connect, native, program, sessionsOf, startProcessors, v } from "dspex";

const greeter = program("example-greeter")
  .input("name: str")
  .stage("greet", native.template("name -> greeting", { template: "Hello, {name}!" }), {
    variables: { tone: v.choice(["plain", "warm"], "plain") },
  });

const first = await connect();
await first.register(greeter);
const processors = startProcessors(first, { only: ["pipeline"] });
try {
  await processors.ready();
  const result = await first.execute({
    programId: "example-greeter",
    inputs: { name: "Ada" },
    sessionId: "ada",
  });
  console.log(
    `ran: ${result.type} ${JSON.stringify(result.type === "ExecutionCompleted" ? result.data.outputs : {})}`,
  );
} finally {
  await processors.stop();
  await first.close();
}

const again = await connect();
try {
  const state = await again.replay();
  console.log(`replayed ${state.events} events`);
  for (const [id, variable] of state.variables)
    if (id.startsWith("example-greeter."))
      console.log(`variable ${id} = ${JSON.stringify(variable.value)} (v${variable.version})`);
  const executions = [...state.executions.values()].filter((e) => e.programId === "example-greeter");
  console.log(`executions of example-greeter: ${executions.length}, last ${executions.at(-1)?.status}`);
  const session = sessionsOf(state.sessions).find((s) => s.sessionId === "ada");
  console.log(`session ada: ${session?.executions.length ?? 0} executions`);
} finally {
  await again.close();
}
