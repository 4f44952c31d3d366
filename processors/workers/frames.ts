/** Frames on a worker's stdio: a 4-byte big-endian length, then that many bytes of UTF-8 JSON. */

export const MAX_FRAME_BYTES = 64 * 1024 * 1024;

export const encodeFrame = (message: unknown): Buffer => {
  const body = Buffer.from(JSON.stringify(message), "utf8");
  if (body.length > MAX_FRAME_BYTES)
    throw new Error(`frame of ${body.length} bytes exceeds ${MAX_FRAME_BYTES}`);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length, 0);
  return Buffer.concat([header, body]);
};

/** Collects chunks of a byte stream and hands back every complete frame's parsed JSON. */
export class FrameDecoder {
  private buffered: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): unknown[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const messages: unknown[] = [];
    while (this.buffered.length >= 4) {
      const length = this.buffered.readUInt32BE(0);
      if (length > MAX_FRAME_BYTES) throw new Error(`frame of ${length} bytes exceeds ${MAX_FRAME_BYTES}`);
      if (this.buffered.length < 4 + length) break;
      messages.push(JSON.parse(this.buffered.subarray(4, 4 + length).toString("utf8")));
      this.buffered = this.buffered.subarray(4 + length);
    }
    return messages;
  }
}
