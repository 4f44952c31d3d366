import type { JsonRecord } from "../../streams/events/index.ts";

export interface Passage {
  id: string;
  text: string;
  embedding?: number[];
}

export interface Scored {
  passage: Passage;
  score: number;
}

export const tokenize = (text: string): string[] => text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];

const counts = (tokens: readonly string[]): Map<string, number> => {
  const map = new Map<string, number>();
  for (const token of tokens) map.set(token, (map.get(token) ?? 0) + 1);
  return map;
};

const documentFrequencies = (documents: readonly string[][]): Map<string, number> => {
  const df = new Map<string, number>();
  for (const tokens of documents)
    for (const token of new Set(tokens)) df.set(token, (df.get(token) ?? 0) + 1);
  return df;
};

const byScore = (a: Scored, b: Scored) => b.score - a.score || a.passage.id.localeCompare(b.passage.id);

/** Okapi BM25 (k1 = 1.2, b = 0.75) over the corpus; best first, ties by id. */
export const bm25 = (corpus: readonly Passage[], query: string, k: number, k1 = 1.2, b = 0.75): Scored[] => {
  const documents = corpus.map((p) => tokenize(p.text));
  const df = documentFrequencies(documents);
  const averageLength = documents.reduce((sum, d) => sum + d.length, 0) / Math.max(1, documents.length);
  const terms = [...new Set(tokenize(query))];
  return corpus
    .map((passage, i) => {
      const tf = counts(documents[i]!);
      const length = documents[i]!.length;
      const score = terms.reduce((sum, term) => {
        const f = tf.get(term) ?? 0;
        if (f === 0) return sum;
        const n = df.get(term) ?? 0;
        const idf = Math.log(1 + (corpus.length - n + 0.5) / (n + 0.5));
        return sum + (idf * f * (k1 + 1)) / (f + k1 * (1 - b + (b * length) / averageLength));
      }, 0);
      return { passage, score };
    })
    .filter((s) => s.score > 0)
    .sort(byScore)
    .slice(0, k);
};

const cosineOf = (a: ReadonlyMap<string, number> | readonly number[], b: typeof a): number => {
  let dot = 0;
  let na = 0;
  let nb = 0;
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) dot += a[i]! * b[i]!;
    for (const x of a) na += x * x;
    for (const x of b) nb += x * x;
  } else {
    const ma = a as ReadonlyMap<string, number>;
    const mb = b as ReadonlyMap<string, number>;
    for (const [term, weight] of ma) dot += weight * (mb.get(term) ?? 0);
    for (const w of ma.values()) na += w * w;
    for (const w of mb.values()) nb += w * w;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
};

/**
 * Cosine similarity: over the passages' embeddings when the query is an embedding,
 * else over TF-IDF vectors of the text.
 */
export const cosine = (
  corpus: readonly Passage[],
  query: string | readonly number[],
  k: number,
): Scored[] => {
  let scored: Scored[];
  if (typeof query !== "string") {
    scored = corpus.map((passage) => ({ passage, score: cosineOf(passage.embedding ?? [], query) }));
  } else {
    const documents = corpus.map((p) => tokenize(p.text));
    const df = documentFrequencies(documents);
    const tfidf = (tokens: readonly string[]) =>
      new Map(
        [...counts(tokens)].map(([term, f]) => [
          term,
          f * Math.log(1 + corpus.length / (1 + (df.get(term) ?? 0))),
        ]),
      );
    const q = tfidf(tokenize(query));
    scored = corpus.map((passage, i) => ({ passage, score: cosineOf(tfidf(documents[i]!), q) }));
  }
  return scored
    .filter((s) => s.score > 0)
    .sort(byScore)
    .slice(0, k);
};

/** The corpus from a stage config: strings, or `{id?, text, embedding?}` objects. */
export const corpusOf = (config: JsonRecord): Passage[] => {
  const items = Array.isArray(config.corpus) ? config.corpus : [];
  return items.map((item, i) => {
    if (typeof item === "string") return { id: String(i), text: item };
    const record = (item ?? {}) as JsonRecord;
    return {
      id: String(record.id ?? i),
      text: String(record.text ?? ""),
      embedding: Array.isArray(record.embedding) ? (record.embedding as number[]) : undefined,
    };
  });
};
