/** The Map a line of versions shares, and the size of its newest version. */
interface Shared {
  order: Map<string, number>;
  end: number;
}

/**
 * The request ids a pipeline has taken in, as an immutable value whose `add` costs O(1): versions share
 * one Map of id → insertion index, and a version sees the ids inserted before its `size`. Adding to the
 * newest version appends to the Map; adding to an older one (the runtime retries a batch whose commit
 * failed from the state before it) copies what that version sees first. The empty set owns no Map, so
 * pipelines that start from it never share one.
 *
 * A window (`RequestIds.window(capacity)`) sees only the last `capacity` ids and forgets the older ones
 * as it goes (amortised O(1)), so its memory stays bounded.
 */
export class RequestIds {
  static readonly empty = new RequestIds({ order: new Map(), end: 0 }, 0, Number.POSITIVE_INFINITY);

  /** An empty set that keeps only the last `capacity` ids. */
  static window(capacity: number): RequestIds {
    if (!(capacity >= 1)) throw new RangeError(`a request-id window holds at least 1 id (got ${capacity})`);
    return new RequestIds({ order: new Map(), end: 0 }, 0, capacity);
  }

  /** The ids in order, as `list()` gave them (a snapshot). */
  static of(ids: Iterable<string>, capacity = Number.POSITIVE_INFINITY): RequestIds {
    let set = capacity === Number.POSITIVE_INFINITY ? RequestIds.empty : RequestIds.window(capacity);
    for (const id of ids) set = set.add(id);
    return set;
  }

  private constructor(
    private readonly shared: Shared,
    readonly size: number,
    readonly capacity: number,
  ) {}

  private sees(index: number | undefined): boolean {
    return index !== undefined && index < this.size && index >= this.size - this.capacity;
  }

  has(id: string): boolean {
    return this.sees(this.shared.order.get(id));
  }

  add(id: string): RequestIds {
    if (this.has(id)) return this;
    const newest = this.size > 0 && this.shared.end === this.size;
    const shared = newest ? this.shared : { order: this.visible(), end: this.size };
    // Delete first, so the Map's order stays the insertion order that forgetting relies on.
    shared.order.delete(id);
    shared.order.set(id, this.size);
    shared.end = this.size + 1;
    const next = new RequestIds(shared, this.size + 1, this.capacity);
    for (const [oldest, index] of shared.order) {
      if (index >= next.size - this.capacity) break;
      shared.order.delete(oldest);
    }
    return next;
  }

  /** The ids this version sees, oldest first. */
  list(): string[] {
    return [...this.visible().keys()];
  }

  /** How many ids the shared Map holds (what a window bounds). */
  get held(): number {
    return this.shared.order.size;
  }

  private visible(): Map<string, number> {
    const copy = new Map<string, number>();
    for (const [id, index] of this.shared.order) if (this.sees(index)) copy.set(id, index);
    return copy;
  }
}
