import { Breaker, type TransitionListener } from "../breaker/breaker.js";
import type { ResolvedBreakerOptions } from "../breaker/options.js";
import { Bulkhead } from "./bulkhead.js";

/** One key's breaker, its optional bulkhead, and a recently-used bit for eviction. */
export interface Entry {
  readonly breaker: Breaker;
  readonly bulkhead: Bulkhead | undefined;
  used: boolean;
}

export interface RegistryOptions {
  readonly breaker: ResolvedBreakerOptions;
  readonly maxBreakers: number;
  readonly maxConcurrent: number | undefined;
  readonly maxQueue: number;
}

/**
 * The breakers of one instance, at most `maxBreakers`. Eviction is CLOCK (second chance), an
 * O(1) approximation of least-recently-used: a hit only sets a bit, instead of moving the
 * entry on every call.
 */
export class Registry {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly options: RegistryOptions,
    private readonly listener: TransitionListener,
  ) {}

  /** The entry for `key`, created (evicting if full) when new. */
  get(key: string): Entry {
    const entry = this.entries.get(key);
    if (entry !== undefined) {
      entry.used = true;
      return entry;
    }
    if (this.entries.size >= this.options.maxBreakers) this.evictOne();
    const { maxConcurrent, maxQueue } = this.options;
    const created: Entry = {
      breaker: new Breaker(this.options.breaker, key, this.listener),
      bulkhead: maxConcurrent === undefined ? undefined : new Bulkhead(maxConcurrent, maxQueue),
      used: false,
    };
    this.entries.set(key, created);
    return created;
  }

  /** The entry for `key` if it exists; does not count as a use. */
  peek(key: string): Entry | undefined {
    return this.entries.get(key);
  }

  values(): IterableIterator<Entry> {
    return this.entries.values();
  }

  get size(): number {
    return this.entries.size;
  }

  private evictOne(): void {
    // Entries used since the last sweep get a second chance at the back of the line; Map
    // iteration visits them again, now unmarked, so this always ends.
    for (const [key, entry] of this.entries) {
      this.entries.delete(key);
      if (!entry.used) return;
      entry.used = false;
      this.entries.set(key, entry);
    }
  }
}
