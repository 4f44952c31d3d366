/** What wakes the embedded log's readers that found nothing: appends here, other processes' commits, close. */
import { lastValueFrom, toArray } from "rxjs";
import { describe, expect, it } from "vitest";
import { openLog } from "../../../streams/open.ts";
import { embeddedBackend } from "../../support/backends.ts";

describe("an embedded log's waiting tail", () => {
  it("completes when its log closes, though nothing was appended to wake it", async () => {
    const log = await openLog(embeddedBackend.freshConfig());
    await log.ensureTopics([{ topic: "idle", partitions: 2 }]);
    const tailed = lastValueFrom(log.tail(["idle"]).pipe(toArray()));
    await log.close();
    expect(await tailed).toEqual([]);
  });
});
