import { describe, expect, it } from "vitest";
import {
  alreadyCommitted,
  checkpointStream,
  committedOffsets,
  emptyCheckpoint,
  eventIdOf,
  eventTypeOf,
  expectedRevisionFor,
  GroupCommitted,
  nextCheckpoint,
  offsetOfRevision,
  offsetsOfAppend,
  outputEventId,
  parsePartitionStream,
  partitionStream,
  partitionsToConfigure,
  recordOfEvent,
  recordStreamsRegex,
  revisionOfOffset,
  routeRecords,
  startPointOf,
  topicStream,
} from "../../../streams/eventstoredb/mapping.ts";
import { partitionFor } from "../../../streams/partition.ts";

describe("stream names", () => {
  it("puts each partition of a topic in its own stream", () => {
    expect(partitionStream("", { topic: "dspex.requests", partition: 0 })).toBe("dspex.requests-0");
    expect(partitionStream("t1/", { topic: "dspex.step-results", partition: 11 })).toBe(
      "t1/dspex.step-results-11",
    );
  });

  it("reads topic and partition back, hyphens and trailing digits in topic names included", () => {
    for (const tp of [
      { topic: "dspex.step-results", partition: 3 },
      { topic: "a-1", partition: 0 },
      { topic: "x", partition: 42 },
    ]) {
      expect(parsePartitionStream("ns:", partitionStream("ns:", tp))).toEqual(tp);
    }
  });

  it("recognizes no other stream as a partition", () => {
    expect(parsePartitionStream("ns:", "other:dspex.requests-0")).toBeUndefined();
    expect(parsePartitionStream("", "dspex.requests")).toBeUndefined();
    expect(parsePartitionStream("", topicStream("", "t-1"))).toBeUndefined();
    expect(parsePartitionStream("", checkpointStream("", "g-7"))).toBeUndefined();
    expect(parsePartitionStream("", "$$dspex.requests-0")).toBeUndefined();
  });

  it("keeps topic setup and checkpoints apart from records, outside the system ($) streams", () => {
    expect(topicStream("ns:", "dspex.requests")).toBe("ns:@topic/dspex.requests");
    expect(checkpointStream("ns:", "planner")).toBe("ns:@checkpoint/planner");
    expect(checkpointStream("", "planner").startsWith("$")).toBe(false);
  });
});

describe("the server-side $all filter", () => {
  const matches = (regex: string, stream: string) => new RegExp(regex).test(stream);

  it("lets through every partition stream of the subscribed topics", () => {
    const regex = recordStreamsRegex("t1/", ["dspex.requests", "dspex.steps"]);
    expect(matches(regex, "t1/dspex.requests-0")).toBe(true);
    expect(matches(regex, "t1/dspex.steps-12")).toBe(true);
  });

  it("rejects other topics, lookalikes, other namespaces and bookkeeping streams", () => {
    const regex = recordStreamsRegex("t1/", ["dspex.requests"]);
    for (const stream of [
      "t1/dspex.requests",
      "t1/dspex.requests-x",
      "t1/dspex.requests-0-1",
      "t1/dspexXrequests-0",
      "t1/dspex.requests.more-0",
      "t2/dspex.requests-0",
      "dspex.requests-0",
      "t1/@topic/dspex.requests",
      "t1/@checkpoint/g",
    ]) {
      expect(matches(regex, stream), stream).toBe(false);
    }
  });
});

describe("offsets and revisions", () => {
  it("uses the stream revision as the offset, both ways", () => {
    expect(offsetOfRevision(0n)).toBe(0);
    expect(offsetOfRevision(41n)).toBe(41);
    expect(revisionOfOffset(41)).toBe(41n);
  });

  it("refuses what cannot be an offset", () => {
    expect(() => offsetOfRevision(2n ** 60n)).toThrow(RangeError);
    expect(() => revisionOfOffset(-1)).toThrow(RangeError);
    expect(() => revisionOfOffset(1.5)).toThrow(RangeError);
  });

  it("expects no stream before the first record, else the revision of the record before", () => {
    expect(expectedRevisionFor(0)).toBe("no_stream");
    expect(expectedRevisionFor(1)).toBe(0n);
    expect(expectedRevisionFor(10)).toBe(9n);
  });

  it("gives one append's records consecutive offsets ending at the returned revision", () => {
    expect(offsetsOfAppend(9n, 3)).toEqual([7, 8, 9]);
    expect(offsetsOfAppend(0n, 1)).toEqual([0]);
  });
});

describe("routing an append", () => {
  it("groups records by partition, in append order, as partitionFor routes keys", () => {
    const records = ["a", "b", "a", "c", "b"].map((key, n) => ({ topic: "t", key, value: `${n}` }));
    const routes = routeRecords(records, () => 3);
    for (const { target, indexes } of routes.values()) {
      expect(indexes).toEqual([...indexes].sort((x, y) => x - y));
      for (const i of indexes) expect(partitionFor(records[i]!.key, 3)).toBe(target.partition);
    }
    expect([...routes.values()].flatMap((r) => r.indexes).sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it("keeps topics apart even for the same key", () => {
    const routes = routeRecords(
      [
        { topic: "a", key: "k", value: "" },
        { topic: "b", key: "k", value: "" },
      ],
      () => 1,
    );
    expect([...routes.values()].map((r) => r.target.topic)).toEqual(["a", "b"]);
  });
});

describe("event ids and types", () => {
  const random = () => "random";

  it("reuses the dspex envelope id, so a re-appended derived event is recognized", () => {
    const id = "6F1C2B7E-3D4A-5B8C-9E0F-A1B2C3D4E5F6";
    expect(eventIdOf({ topic: "t", key: "k", value: "", headers: { "dspex-id": id } }, random)).toBe(
      id.toLowerCase(),
    );
  });

  it("falls back when there is no id or it is not a UUID", () => {
    expect(eventIdOf({ topic: "t", key: "k", value: "" }, random)).toBe("random");
    expect(eventIdOf({ topic: "t", key: "k", value: "", headers: { "dspex-id": "x" } }, random)).toBe(
      "random",
    );
  });

  it("derives the same output id for the same batch of the same group, and no other", () => {
    const batch = [
      { topic: "in", partition: 1, offset: 5 },
      { topic: "in", partition: 0, offset: 9 },
    ];
    const id = outputEventId("g", batch, 0);
    expect(outputEventId("g", [...batch].reverse(), 0)).toBe(id);
    expect(outputEventId("g", batch, 1)).not.toBe(id);
    expect(outputEventId("h", batch, 0)).not.toBe(id);
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("types events by their dspex type when they carry one", () => {
    expect(
      eventTypeOf({ topic: "t", key: "k", value: "", headers: { "dspex-type": "StepDispatched" } }),
    ).toBe("StepDispatched");
    expect(eventTypeOf({ topic: "t", key: "k", value: "" })).toBe("dspex.record");
  });
});

describe("stored events as records", () => {
  const stored = {
    streamId: "ns:dspex.steps-2",
    revision: 7n,
    data: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
    metadata: { key: "session-1", headers: { "dspex-type": "StepDispatched" } },
    created: new Date(1_700_000_000_000),
  };

  it("gives back the exact bytes, key, headers, partition and offset", () => {
    expect(recordOfEvent("ns:", stored)).toEqual({
      topic: "dspex.steps",
      partition: 2,
      offset: 7,
      key: "session-1",
      value: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]),
      headers: { "dspex-type": "StepDispatched" },
      timestamp: 1_700_000_000_000,
    });
  });

  it("ignores events that are not dspex records", () => {
    expect(recordOfEvent("ns:", { ...stored, streamId: "ns:@topic/dspex.steps" })).toBeUndefined();
    expect(recordOfEvent("ns:", { ...stored, metadata: undefined })).toBeUndefined();
    expect(recordOfEvent("ns:", { ...stored, data: { parsed: "json" } })).toBeUndefined();
  });
});

describe("topic setup", () => {
  it("creates a topic, grows it, never shrinks it", () => {
    expect(partitionsToConfigure(undefined, 3)).toBe(3);
    expect(partitionsToConfigure(3, 6)).toBe(6);
    expect(partitionsToConfigure(6, 3)).toBeUndefined();
    expect(partitionsToConfigure(3, 3)).toBeUndefined();
  });
});

describe("checkpoint events", () => {
  const position = { commit: "1200", prepare: "1100" };

  it("given no checkpoint, when a batch commits, then its offsets and resume point are recorded", () => {
    const next = nextCheckpoint(
      emptyCheckpoint("g"),
      [
        { topic: "in", partition: 0, offset: 3 },
        { topic: "in", partition: 1, offset: 8 },
      ],
      { position, topics: ["in"] },
    );
    expect(next).toEqual({
      group: "g",
      offsets: { in: { "0": 3, "1": 8 } },
      resume: { position, topics: ["in"] },
    });
    expect(GroupCommitted.parse(JSON.parse(JSON.stringify(next)))).toEqual(next);
    expect(committedOffsets(next, "in")).toEqual(
      new Map([
        [0, 3],
        [1, 8],
      ]),
    );
    expect(committedOffsets(next, "other")).toEqual(new Map());
  });

  it("given offsets, when another partition commits, then the others are kept", () => {
    const before = nextCheckpoint(emptyCheckpoint("g"), [{ topic: "in", partition: 0, offset: 3 }]);
    const after = nextCheckpoint(before, [{ topic: "in", partition: 1, offset: 1 }]);
    expect(after.offsets).toEqual({ in: { "0": 3, "1": 1 } });
    expect(before.offsets).toEqual({ in: { "0": 3 } });
  });

  it("given a resume point, when a commit comes without one (a manual commit), then it is dropped", () => {
    const consumed = nextCheckpoint(emptyCheckpoint("g"), [{ topic: "in", partition: 0, offset: 9 }], {
      position,
      topics: ["in"],
    });
    const rewound = nextCheckpoint(consumed, [{ topic: "in", partition: 0, offset: 2 }]);
    expect(rewound).toEqual({ group: "g", offsets: { in: { "0": 2 } } });
  });

  it("refuses a checkpoint event of another shape", () => {
    expect(GroupCommitted.safeParse({ group: "g", offsets: { in: { "0": -1 } } }).success).toBe(false);
  });
});

describe("where a group starts", () => {
  const resumed = nextCheckpoint(emptyCheckpoint("g"), [{ topic: "a", partition: 0, offset: 4 }], {
    position: { commit: "50", prepare: "50" },
    topics: ["a"],
  });

  it("starts a new group at the beginning or at the end, as asked", () => {
    expect(startPointOf(undefined, ["a"], "beginning")).toBe("start");
    expect(startPointOf(undefined, ["a"], "end")).toBe("end");
  });

  it("resumes from the checkpoint's position when it covers every topic", () => {
    expect(startPointOf(resumed, ["a"], "beginning")).toEqual({ commit: "50", prepare: "50" });
  });

  it("scans from the start when a topic joined or the resume point was dropped", () => {
    expect(startPointOf(resumed, ["a", "b"], "beginning")).toBe("start");
    expect(startPointOf(emptyCheckpoint("g"), ["a"], "end")).toBe("start");
  });

  it("skips records below the committed offset, and below the floor of partitions never committed", () => {
    expect(alreadyCommitted(resumed, { topic: "a", partition: 0, offset: 3 })).toBe(true);
    expect(alreadyCommitted(resumed, { topic: "a", partition: 0, offset: 4 })).toBe(false);
    expect(alreadyCommitted(resumed, { topic: "a", partition: 1, offset: 0 })).toBe(false);
    expect(alreadyCommitted(resumed, { topic: "b", partition: 0, offset: 5 }, () => 6)).toBe(true);
    expect(alreadyCommitted(undefined, { topic: "b", partition: 0, offset: 0 })).toBe(false);
  });
});
