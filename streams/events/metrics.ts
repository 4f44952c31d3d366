import { z } from "zod";
import { Topics } from "../topics.ts";
import { Id } from "./common.ts";
import { defineEvent } from "./define.ts";

export const MetricRecorded = defineEvent("MetricRecorded", {
  topic: Topics.metrics,
  data: z.object({
    programId: Id,
    name: z.string().min(1),
    value: z.number(),
    unit: z.string().default(""),
    labels: z.record(z.string(), z.string()).default({}),
    executionId: Id.optional(),
  }),
});

export const metricEvents = [MetricRecorded] as const;
