import type { BreakerStore } from "../persist/store.js";
import type { Entry } from "./registry.js";
import type { Replica } from "./replica.js";

/** Counter-only changes (failures in the closed state) are written at most this often. */
const COUNTER_WRITE_DELAY_MS = 1000;
const FAILED = Symbol("failed");

/**
 * Keeps a store in step with the registry: loads a key's state before its first call, writes
 * changes (coalesced, never for a healthy call). A failing store never fails a call: the
 * instance carries on in memory, reports one `storeerror` per streak of failures, and retries
 * pending writes at the next flush.
 */
export class Persistence {
  /** Resolves once `loadAll` (if the store has one) is applied; never rejects. */
  readonly ready: Promise<void>;
  #store: BreakerStore | undefined;
  readonly #replica: Replica;
  readonly #dirty = new Set<Entry>();
  #flushing: Promise<void> = Promise.resolve();
  #microtaskQueued = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #failing = false;

  constructor(store: BreakerStore, replica: Replica) {
    this.#store = store;
    this.#replica = replica;
    this.ready = this.#loadAll();
  }

  /** Loads and applies the stored state of `entry` (after `loadAll`, if any). */
  async load(entry: Entry): Promise<void> {
    await this.ready;
    const { key } = entry.breaker;
    const value = await this.#call((store) => store.load(key));
    if (value !== undefined && value !== FAILED) this.#replica.apply(value, "stored", key);
  }

  /** Schedules a write of `entry`: at once for a transition, within a second for a count. */
  schedule(entry: Entry, transition: boolean): void {
    if (this.#store === undefined) return;
    this.#dirty.add(entry);
    if (transition) {
      if (!this.#microtaskQueued) {
        this.#microtaskQueued = true;
        queueMicrotask(() => void this.flush());
      }
    } else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => void this.flush(), COUNTER_WRITE_DELAY_MS);
      // In Node, a pending write must not keep the process alive; close() flushes it.
      (this.#timer as { unref?: () => void }).unref?.();
    }
  }

  /**
   * Writes every pending change. A write that fails stays pending for the next flush (the
   * store may be back by then); a store that answers with a newer record gets it applied.
   */
  flush(): Promise<void> {
    this.#microtaskQueued = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#dirty.size === 0) return this.#flushing;
    const batch = Array.from(this.#dirty, (entry) => ({
      entry,
      record: this.#replica.recordOf(entry),
    }));
    this.#dirty.clear();
    // Writes go one batch after another, so an older state never lands after a newer one.
    this.#flushing = this.#flushing.then(async () => {
      for (const { entry, record } of batch) {
        const answer = await this.#call((store) => store.save(record));
        if (answer === FAILED) this.#dirty.add(entry);
        else if (answer !== undefined) this.#replica.apply(answer, "stored", record.key);
      }
    });
    return this.#flushing;
  }

  /** Flushes, then closes the store. */
  async close(): Promise<void> {
    await this.flush();
    await this.#call(async (store) => store.close?.());
    this.#store = undefined;
  }

  async #loadAll(): Promise<void> {
    const values = await this.#call(async (store) => (store.loadAll ? store.loadAll() : []));
    if (values === FAILED) return;
    if (!Array.isArray(values)) return;
    for (const value of values) {
      if (this.#replica.apply(value, "stored")) {
        const key = (value as { key: string }).key;
        const entry = this.#replica.registry.peek(key);
        if (entry !== undefined) entry.loaded = true;
      }
    }
  }

  /** Runs a store operation; a failure switches the store off (memory only) after one report. */
  async #call<T>(operation: (store: BreakerStore) => Promise<T>): Promise<T | typeof FAILED> {
    const store = this.#store;
    if (store === undefined) return FAILED;
    try {
      const result = await operation(store);
      this.#failing = false;
      return result;
    } catch (error) {
      // One report per streak of failures: a missing IndexedDB must not flood the listeners.
      if (!this.#failing) this.#replica.report("", error);
      this.#failing = true;
      return FAILED;
    }
  }
}
