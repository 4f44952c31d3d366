import { afterAll } from "vitest";
import { cleanUp } from "./cleanup.ts";

// After each test file: its children stopped, its temporary folders gone (vitest ends its workers with
// SIGTERM, so process "exit" handlers never run there).
afterAll(cleanUp, 60_000);
