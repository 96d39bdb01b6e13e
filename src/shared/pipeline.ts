import { isOpen } from "./compare.js";
import type { BreakerRecord } from "./record.js";
import type { Entry, Replica } from "./replica.js";
import type { BreakerStore } from "./store.js";
import { FAILED, StoreCall, unref } from "./store-call.js";
import { validRecord } from "./validate.js";

/** A store call that has not settled by then counts as failed (it may still land later). */
export const STORE_TIMEOUT_MS = 5_000;
/** First retry delay after a failed write; doubles per failure up to {@link RETRY_MAX_MS}. */
const RETRY_BASE_MS = 1_000;
const RETRY_MAX_MS = 60_000;
/** How early a retry's timer may fire before its time on the instance's clock. */
const DUE_MARGIN_MS = 20;

export interface PipelineOptions {
  /** Records the store should hold at most (the instance's `maxBreakers`). */
  readonly maxRecords: number;
  /** A record closed (or past its `retryAt`) for this long is deleted from the store. */
  readonly idleMs: number;
  /**
   * A store call unsettled after this long counts as failed.
   * @default the store's `timeoutMs`, else STORE_TIMEOUT_MS
   */
  readonly timeoutMs?: number;
}

/** How {@link Pipeline} makes one store call. */
interface CallOptions {
  /** Makes it a write, whose failure backs the key's writes off: gets the answer or FAILED. */
  written?: (answer: unknown, write: StoreCall) => void;
  /** Its deadline. @default the store's `timeoutMs`, else the pipeline's */
  ms?: number;
  /** Gets an answer that came after the deadline. */
  late?: (value: unknown) => void;
}

/** A key whose store calls fail: reported once, and its writes back off. */
interface Streak {
  /** Failed calls in a row: the backoff's exponent. */
  failures: number;
  /** Whether a `storeerror` said so. */
  reported: boolean;
  /** No write of the key before this time (the instance's clock); 0 until a write fails. */
  retryAt: number;
}

/**
 * Keeps a store in step with the replica: loads a key's record before its first call, and
 * writes every change of a record (never a healthy call's). Every store call has a deadline, so
 * a hung one never blocks later ones; writes run side by side (the store merges, so their
 * order does not matter). Failures are kept per key: a key whose calls fail is reported once
 * per streak, and its writes are retried with exponential backoff, while other keys' writes go
 * on. A retry never waits on a timer: each `flush()` (the next change, or the Workers
 * middleware's `waitUntil` on every request) writes what has come due; a timer only wakes it
 * where timers run. Records of closed, idle breakers are deleted, and no more than about
 * `maxRecords` are kept.
 */
export class Pipeline {
  /** Resolves once `loadAll` (if the store has one) is applied; never rejects. */
  readonly ready: Promise<void>;
  #store: BreakerStore | undefined;
  readonly #replica: Replica;
  readonly #options: PipelineOptions;
  /** Entries with a change to write (again, after a failure). */
  readonly #dirty = new Set<Entry>();
  readonly #writes = new Set<StoreCall>();
  /** Keys whose store calls fail; `""` for calls about no one key (`loadAll`, `delete`, `close`). */
  readonly #streaks = new Map<string, Streak>();
  /** Whether a store call has answered since the last `storeerror`. */
  #answeredSinceReport = true;
  #queued = false;
  /** Records the store holds, as far as this instance knows (for pruning). */
  #stored = 0;
  readonly #written = new WeakSet<Entry>();

  constructor(store: BreakerStore, replica: Replica, options: PipelineOptions) {
    this.#store = store;
    this.#replica = replica;
    this.#options = options;
    // Records other contexts store from now on (Redis pub/sub), for the keys in use here.
    store.watch?.((record) => replica.apply(record, "stored"));
    this.ready = this.#prune(true);
  }

  /** Loads and applies the stored record of `entry` (after `loadAll`, if any). */
  async load(entry: Entry): Promise<void> {
    await this.ready;
    const { key } = entry.breaker;
    if (this.#store === undefined) return;
    const value = await this.#call(key, (store) => store.load(key)).settled();
    if (value !== undefined && value !== FAILED) this.#replica.apply(value, "stored", key);
  }

  /**
   * Asks the store something on behalf of a request (a probe lease), for at most `waitMs`, and
   * not at all while `key`'s writes back off (its store fails): then, or when the call fails,
   * {@link FAILED}. `late` gets an answer that came after `waitMs`.
   */
  ask<T>(
    key: string,
    operation: (store: BreakerStore) => Promise<T>,
    waitMs: number,
    late?: (value: T) => void,
  ): Promise<T | typeof FAILED> {
    if (this.#store === undefined || this.backingOff(key)) return Promise.resolve(FAILED);
    const call = this.#call(key, operation, { ms: waitMs, late: late as (v: unknown) => void });
    return call.settled() as Promise<T | typeof FAILED>;
  }

  /**
   * Whether `key`'s writes are waiting out the backoff of a failure. A retry's timer may fire a
   * moment before the instance's clock reaches the retry's time (two clocks): within
   * {@link DUE_MARGIN_MS} of it, the retry is due.
   */
  backingOff(key: string): boolean {
    const streak = this.#streaks.get(key);
    return streak !== undefined && this.#replica.clock.now() + DUE_MARGIN_MS < streak.retryAt;
  }

  /** Schedules a write of `entry`'s record: in a microtask (unless its key backs off). */
  schedule(entry: Entry): void {
    if (this.#store === undefined) return;
    this.#dirty.add(entry);
    if (this.#queued) return;
    this.#queued = true;
    queueMicrotask(() => {
      this.#queued = false;
      void this.flush();
    });
  }

  /**
   * Writes every pending change whose key is not backing off (every one, with `force`:
   * `close()`), retries included once due. Resolves once every write in flight has been
   * written or has failed (reported, and kept for a retry); never rejects.
   */
  flush(force = false): Promise<void> {
    const store = this.#store;
    for (const write of this.#writes) write.expireIfDue(this.#replica.clock.now());
    if (store !== undefined) {
      // A copy: a write that fails at once puts its entry back, for a later flush.
      for (const entry of [...this.#dirty]) {
        if (!force && this.backingOff(entry.breaker.key)) continue;
        this.#dirty.delete(entry);
        this.#write(entry);
      }
    }
    if (this.#writes.size === 0) return Promise.resolve();
    const settled = this.#settled();
    // Workers: the writes must outlive the request (or waitUntil work) that made the change.
    store?.keepAlive?.(settled);
    return settled;
  }

  /** Flushes, then closes the store; later changes are not written. */
  async close(): Promise<void> {
    await this.flush(true);
    if (this.#store?.close !== undefined) {
      await this.#call("", async (store) => store.close?.()).settled();
    }
    this.#store = undefined;
  }

  #write(entry: Entry): void {
    const record = this.#replica.recordOf(entry);
    const written = (answer: unknown, write: StoreCall) => {
      this.#writes.delete(write);
      // Kept for a retry once the key's backoff is over.
      if (answer === FAILED) {
        if (this.#store !== undefined) this.#dirty.add(entry);
        return;
      }
      if (!this.#written.has(entry)) {
        this.#written.add(entry);
        const { maxRecords } = this.#options;
        if (++this.#stored > maxRecords + Math.ceil(maxRecords / 8)) void this.#prune(false);
      }
      if (answer !== undefined) this.#replica.apply(answer, "stored", record.key);
    };
    const write = this.#call(record.key, (store) => store.save(record), { written });
    if (!write.done) this.#writes.add(write);
  }

  /**
   * Resolves once every write now in flight has settled: by its answer, or at its deadline on
   * a timer of the caller's own (the write's own timer may belong to a request that has ended).
   */
  async #settled(): Promise<void> {
    const writes = [...this.#writes];
    const latest = Math.max(...writes.map((write) => write.deadline));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise((resolve) => {
      unref((timer = setTimeout(resolve, latest - this.#replica.clock.now())));
    });
    await Promise.race([Promise.all(writes.map((write) => write.settled())), deadline]);
    clearTimeout(timer);
    for (const write of writes) write.expireIfDue(this.#replica.clock.now());
  }

  /**
   * Reads every stored record (when the store can list them), deletes the idle ones and the
   * oldest beyond `maxRecords`, and applies the rest when `apply` is set (loading at start).
   */
  async #prune(apply: boolean): Promise<void> {
    if (this.#store === undefined) return;
    const values = await this.#call("", async (store) =>
      store.loadAll ? store.loadAll() : [],
    ).settled();
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
    if (this.#store?.delete !== undefined) {
      for (const key of drop) this.#call("", (s) => (s.delete as (k: string) => unknown)(key));
    }
  }

  /**
   * Calls the store (open: callers check) about `key`, with a deadline. A success ends the
   * key's streak of failures; a failure starts one (reported once) or adds to it, and a failed
   * write backs the key's writes off.
   */
  #call(
    key: string,
    operation: (store: BreakerStore) => unknown,
    { written, ms, late }: CallOptions = {},
  ): StoreCall {
    const store = this.#store as BreakerStore;
    const settle = (answer: unknown, error: unknown, call: StoreCall) => {
      if (answer === FAILED) this.#failed(key, error, written !== undefined);
      else {
        this.#streaks.delete(key);
        this.#answeredSinceReport = true;
      }
      written?.(answer, call);
    };
    const timeout = ms ?? store.timeoutMs ?? this.#options.timeoutMs ?? STORE_TIMEOUT_MS;
    return new StoreCall(() => operation(store), timeout, this.#replica.clock.now(), settle, late);
  }

  /**
   * One `storeerror` per key and streak of failures; but while no call at all has answered
   * since the last one (a store down as a whole: no IndexedDB), none: a missing IndexedDB must
   * not report once per key. Such a key is reported at its next failure after an answer.
   */
  #failed(key: string, error: unknown, write: boolean): void {
    let streak = this.#streaks.get(key);
    if (streak === undefined)
      this.#streaks.set(key, (streak = { failures: 0, reported: false, retryAt: 0 }));
    if (!streak.reported && this.#answeredSinceReport) {
      streak.reported = true;
      this.#answeredSinceReport = false;
      this.#replica.report(key, error);
    }
    streak.failures++;
    if (!write) return;
    const ceiling = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(streak.failures - 1, 16));
    const delay = ceiling / 2 + (Math.random() * ceiling) / 2;
    streak.retryAt = this.#replica.clock.now() + delay;
    // Where timers run, the retry goes when due. Nothing depends on it: in workerd a timer
    // outlives no request, and the next flush() (the next change, or request) carries it.
    unref(setTimeout(() => void this.flush(), delay));
  }
}
