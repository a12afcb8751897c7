interface Waiter<T> {
  readonly match: (item: T) => boolean;
  readonly resolve: (item: T) => void;
}

/**
 * Records items as they come (notifications, events, messages) and lets a test await the first one
 * that matches, whether it came already or comes later.
 */
export class Recorder<T> {
  readonly items: T[] = [];
  readonly #waiters = new Set<Waiter<T>>();

  /** Records `item` and resolves every waiter it matches. */
  readonly push = (item: T): void => {
    this.items.push(item);
    for (const waiter of this.#waiters) {
      if (!waiter.match(item)) continue;
      this.#waiters.delete(waiter);
      waiter.resolve(item);
    }
  };

  /** The first recorded item (already or later) that satisfies `match`. */
  next<S extends T>(match: (item: T) => item is S): Promise<S>;
  next(match?: (item: T) => boolean): Promise<T>;
  next(match: (item: T) => boolean = () => true): Promise<T> {
    const seen = this.items.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => {
      this.#waiters.add({ match, resolve });
    });
  }
}
