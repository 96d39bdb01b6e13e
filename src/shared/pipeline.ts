import { isOpen } from "./compare.js";
import type { BreakerRecord } from "./record.js";
import type { Entry, Replica } from "./replica.js";
import type { BreakerStore } from "./store.js";
import { validRecord } from "./validate.js";

/** A store call that has not settled by then counts as failed (it may still land later). */
export const STORE_TIMEOUT_MS = 5_000;
/** First retry delay after a failed write; doubles per failure up to {@link RETRY_MAX_MS}. */
const RETRY_BASE_MS = 1_000;
const RETRY_MAX_MS = 60_000;
const FAILED = Symbol("failed");

export interface PipelineOptions {
  /** Records the store should hold at most (the instance's `maxBreakers`). */
  readonly maxRecords: number;
  /** A record closed (or past its `retryAt`) for this long is deleted from the store. */
  readonly idleMs: number;
  /** A store call unsettled after this long counts as failed. @default STORE_TIMEOUT_MS */
  readonly timeoutMs?: number;
}

/**
 * Keeps a store in step with the replica: loads a key's record before its first call, and
 * writes every change of a record (never a healthy call's). Every store call has a timeout, so
 * a hung one never blocks later ones; writes run side by side (the store merges, so their
 * order does not matter). While the store fails, pending writes are retried with exponential
 * backoff, one `storeerror` per streak. Records of closed, idle breakers are deleted, and no
 * more than about `maxRecords` are kept.
 */
export class Pipeline {
  /** Resolves once `loadAll` (if the store has one) is applied; never rejects. */
  readonly ready: Promise<void>;
  #store: BreakerStore | undefined;
  readonly #replica: Replica;
  readonly #options: PipelineOptions;
  readonly #dirty = new Set<Entry>();
  readonly #writing = new Set<Promise<void>>();
  #queued = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Failed store calls in a row: the backoff exponent, and one report per streak. */
  #failures = 0;
  /** Records the store holds, as far as this instance knows (for pruning). */
  #stored = 0;
  readonly #written = new WeakSet<Entry>();

  constructor(store: BreakerStore, replica: Replica, options: PipelineOptions) {
    this.#store = store;
    this.#replica = replica;
    this.#options = options;
    this.ready = this.#prune(true);
  }

  /** Loads and applies the stored record of `entry` (after `loadAll`, if any). */
  async load(entry: Entry): Promise<void> {
    await this.ready;
    const { key } = entry.breaker;
    const value = await this.#call((store) => store.load(key));
    if (value !== undefined && value !== FAILED) this.#replica.apply(value, "stored", key);
  }

  /** Schedules a write of `entry`'s record: in a microtask, or at the next retry if failing. */
  schedule(entry: Entry): void {
    const store = this.#store;
    if (store === undefined) return;
    this.#dirty.add(entry);
    if (this.#queued || this.#timer !== undefined) return;
    this.#queued = true;
    const flushed = new Promise<void>((resolve) =>
      queueMicrotask(() => {
        this.#queued = false;
        resolve(this.flush());
      }),
    );
    // Workers: the write must outlive the request (or waitUntil work) that made the change.
    store.keepAlive?.(flushed);
  }

  /**
   * Writes every pending change now, unless the store is failing and the next retry is not due
   * (`force` writes anyway: `close()`). Resolves when the writes in flight have settled or
   * timed out.
   */
  flush(force = false): Promise<void> {
    if (this.#timer !== undefined) {
      if (!force) return Promise.all(this.#writing).then(() => {});
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    for (const entry of this.#dirty) {
      const write = this.#write(entry).finally(() => this.#writing.delete(write));
      this.#writing.add(write);
    }
    this.#dirty.clear();
    return Promise.all(this.#writing).then(() => {});
  }

  /** Flushes, then closes the store; later changes are not written. */
  async close(): Promise<void> {
    await this.flush(true);
    await this.#call(async (store) => store.close?.());
    this.#store = undefined;
  }

  async #write(entry: Entry): Promise<void> {
    const record = this.#replica.recordOf(entry);
    const answer = await this.#call((store) => store.save(record));
    if (answer === FAILED) {
      this.#retryLater(entry);
      return;
    }
    if (!this.#written.has(entry)) {
      this.#written.add(entry);
      if (++this.#stored > this.#options.maxRecords + Math.ceil(this.#options.maxRecords / 8)) {
        void this.#prune(false);
      }
    }
    if (answer !== undefined) this.#replica.apply(answer, "stored", record.key);
  }

  /** Keeps `entry` pending and flushes again after the backoff delay (jittered). */
  #retryLater(entry: Entry): void {
    if (this.#store === undefined) return;
    this.#dirty.add(entry);
    if (this.#timer !== undefined) return;
    const ceiling = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(this.#failures - 1, 16));
    this.#timer = setTimeout(
      () => void this.flush(true),
      ceiling / 2 + (Math.random() * ceiling) / 2,
    );
    // In Node, a pending retry must not keep the process alive; close() flushes it.
    (this.#timer as { unref?: () => void }).unref?.();
  }

  /**
   * Reads every stored record (when the store can list them), deletes the idle ones and the
   * oldest beyond `maxRecords`, and applies the rest when `apply` is set (loading at start).
   */
  async #prune(apply: boolean): Promise<void> {
    const values = await this.#call(async (store) => (store.loadAll ? store.loadAll() : []));
    if (values === FAILED || !Array.isArray(values)) return;
    const now = this.#replica.clock.now();
    const { idleMs, maxRecords } = this.#options;
    const keep: BreakerRecord[] = [];
    const drop: string[] = [];
    for (const value of values) {
      const record = validRecord(value, undefined, now);
      if (record === undefined) {
        // Garbage is reported once by the replica, and deleted when it names its key.
        if (apply) this.#replica.apply(value, "stored");
        const key = (value as { key?: unknown } | null)?.key;
        if (typeof key === "string") drop.push(key);
      } else if (now - (isOpen(record) ? record.retryAt : record.closed) > idleMs) {
        drop.push(record.key);
      } else {
        keep.push(record);
      }
    }
    const recency = (r: BreakerRecord) => Math.max(r.opened, r.closed);
    keep.sort((a, b) => recency(b) - recency(a));
    for (const record of keep.splice(maxRecords)) drop.push(record.key);
    this.#stored = keep.length;
    if (apply) {
      for (const record of keep) {
        this.#replica.apply(record, "stored");
        const entry = this.#replica.registry.peek(record.key);
        if (entry !== undefined) entry.loaded = true;
      }
    }
    const store = this.#store;
    if (store?.delete !== undefined) {
      for (const key of drop)
        void this.#call((s) => (s.delete as (k: string) => Promise<void>)(key));
    }
  }

  /**
   * Runs a store operation with a timeout. A failure (or timeout) is reported once per streak
   * and returns {@link FAILED}; the instance carries on in memory.
   */
  async #call<T>(operation: (store: BreakerStore) => Promise<T>): Promise<T | typeof FAILED> {
    const store = this.#store;
    if (store === undefined) return FAILED;
    const ms = this.#options.timeoutMs ?? STORE_TIMEOUT_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const result = await Promise.race([
        operation(store),
        new Promise<never>((_, reject) => {
          const error = new Error(`cbfetch: the store did not answer within ${ms} ms`);
          timer = setTimeout(() => reject(error), ms);
          (timer as { unref?: () => void }).unref?.();
        }),
      ]);
      this.#failures = 0;
      return result;
    } catch (error) {
      // One report per streak of failures: a missing IndexedDB must not flood the listeners.
      if (this.#failures++ === 0) this.#replica.report("", error);
      return FAILED;
    } finally {
      clearTimeout(timer);
    }
  }
}
