import { z } from "zod";
import { Topics } from "../topics.ts";
import { defineEvent } from "./define.ts";

/** Input that could not be used: kept whole, with why, so nothing is lost. */
export const DeadLettered = defineEvent("DeadLettered", {
  topic: Topics.dlq,
  data: z.object({
    source: z.object({
      topic: z.string(),
      partition: z.number().int().nonnegative().optional(),
      offset: z.string().optional(),
      consumer: z.string().optional(),
    }),
    reason: z.string().min(1),
    /** The original bytes: as text when they are valid UTF-8, else base64. */
    original: z.string(),
    encoding: z.enum(["utf8", "base64"]),
  }),
});

export const dlqEvents = [DeadLettered] as const;
