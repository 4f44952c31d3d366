import { createHash, randomUUID } from "node:crypto";

/** RFC 4122 namespace for dspex derived ids (UUIDv5). */
export const DSPEX_NAMESPACE = "6f1c2b7e-3d4a-5b8c-9e0f-a1b2c3d4e5f6";

const uuidBytes = (uuid: string): Buffer => Buffer.from(uuid.replaceAll("-", ""), "hex");

const formatUuid = (hex: string): string =>
  `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;

/** UUIDv5 (SHA-1, namespaced): the same name always gives the same id. */
export const uuidV5 = (name: string, namespace: string = DSPEX_NAMESPACE): string => {
  const hash = createHash("sha1").update(uuidBytes(namespace)).update(name, "utf8").digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  return formatUuid(hash.subarray(0, 16).toString("hex"));
};

/**
 * The id of an event derived from a cause: a redelivered cause yields the same id,
 * so consumers can drop duplicates. `discriminator` tells apart several events of one cause.
 */
export const derivedId = (causeId: string, discriminator: string): string =>
  uuidV5(`${causeId}/${discriminator}`);

export const newId = (): string => randomUUID();
