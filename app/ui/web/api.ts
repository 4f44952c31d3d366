/// <reference lib="dom" />

/** The read models as the server sends them (JSON): loosely typed on this side of the wire. */
export type Json = Record<string, unknown>;

export const getJson = async <T = Json>(path: string): Promise<T | undefined> => {
  const response = await fetch(path);
  if (response.status === 404) return undefined;
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
};

/** Calls `changed` with the read models the server folded something into (server-sent events). */
export const followChanges = (changed: (projections: string[]) => void): (() => void) => {
  const source = new EventSource("/api/live");
  source.onmessage = (message) => changed((JSON.parse(message.data) as { changed: string[] }).changed);
  return () => source.close();
};
