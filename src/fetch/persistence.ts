import { copyRecord } from "../persist/record.js";
import type { BreakerStore } from "../persist/store.js";
import type { Entry } from "./registry.js";
import type { Replica } from "./replica.js";

/** Counter-only changes (failures in the closed state) are written at most this often. */
const COUNTER_WRITE_DELAY_MS = 1000;

/**
 * Keeps a store in step with the registry: loads a key's state before its first call, writes
 * changes (coalesced, never for a healthy call), and after any store failure carries on in
 * memory with one `storeerror`.
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
    if (value !== undefined) this.#replica.apply(value, "stored", key);
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

  /** Writes every pending change. */
  flush(): Promise<void> {
    this.#microtaskQueued = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const records = Array.from(this.#dirty, (entry) => this.#replica.recordOf(entry));
    this.#dirty.clear();
    // Writes go one batch after another, so an older state never lands after a newer one.
    this.#flushing = this.#flushing.then(async () => {
      for (const record of records) await this.#call((store) => store.save(copyRecord(record)));
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
  async #call<T>(operation: (store: BreakerStore) => Promise<T>): Promise<T | undefined> {
    const store = this.#store;
    if (store === undefined) return undefined;
    try {
      return await operation(store);
    } catch (error) {
      if (this.#store === store) {
        this.#store = undefined;
        this.#replica.report("", error);
      }
      return undefined;
    }
  }
}
