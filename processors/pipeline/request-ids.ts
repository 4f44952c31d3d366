/**
 * The request ids a pipeline has taken in, as an immutable value whose `add` costs O(1): versions share
 * one Map of id → insertion index, and a version sees the ids inserted before its `size`. Adding to the
 * newest version appends to the Map; adding to an older one (the runtime retries a batch whose commit
 * failed from the state before it) copies what that version sees first. The empty set owns no Map, so
 * pipelines that start from it never share one.
 */
export class RequestIds {
  static readonly empty = new RequestIds(new Map(), 0);

  private constructor(
    private readonly order: Map<string, number>,
    readonly size: number,
  ) {}

  has(id: string): boolean {
    const index = this.order.get(id);
    return index !== undefined && index < this.size;
  }

  add(id: string): RequestIds {
    if (this.has(id)) return this;
    const newest = this.size > 0 && this.order.size === this.size;
    const order = newest ? this.order : this.visible();
    order.set(id, this.size);
    return new RequestIds(order, this.size + 1);
  }

  private visible(): Map<string, number> {
    const copy = new Map<string, number>();
    for (const [id, index] of this.order) if (index < this.size) copy.set(id, index);
    return copy;
  }
}
