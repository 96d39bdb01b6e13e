import {
  type BreakerRecord,
  copyRecord,
  isNewer,
  RECORD_VERSION,
  recordProblem,
} from "../persist/record.js";
import type { BreakerStore } from "../persist/store.js";
import type { CircuitEvents } from "./events.js";
import type { Entry, Registry } from "./registry.js";

/** Counter-only changes (failures in the closed state) are written at most this often. */
const COUNTER_WRITE_DELAY_MS = 1000;

/**
 * Keeps a store in step with the registry: restores each key's state before its first call
 * (bounded by `loadTimeoutMs`), writes on changes (coalesced, never on a healthy call), and
 * on any store failure carries on in memory after one `storeerror`.
 */
export class Persistence {
  /** This instance's id in records it writes. */
  readonly writer = Math.random().toString(36).slice(2, 12);
  /** Resolves once `loadAll` (if the store has one) is applied; never rejects. */
  readonly ready: Promise<void>;
  #store: BreakerStore | undefined;
  readonly #events: CircuitEvents;
  readonly #registry: Registry;
  readonly #loadTimeoutMs: number;
  readonly #dirty = new Set<Entry>();
  #flushing: Promise<void> = Promise.resolve();
  #microtaskQueued = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  // While applying a stored record, the change it causes is not written back.
  #applying = false;

  constructor(
    store: BreakerStore,
    registry: Registry,
    events: CircuitEvents,
    loadTimeoutMs: number,
  ) {
    this.#store = store;
    this.#registry = registry;
    this.#events = events;
    this.#loadTimeoutMs = loadTimeoutMs;
    this.ready = this.#loadAll();
  }

  /**
   * Restores `entry` from the store before its first call. Resolves within `loadTimeoutMs`;
   * a slower load is still applied when it arrives (merged by `rev`).
   */
  hydrate(entry: Entry): Promise<void> {
    if (entry.hydrating === undefined) {
      const { key } = entry.breaker;
      const loading = this.ready
        .then(() => this.#call((store) => store.load(key)))
        .then((value) => {
          if (value !== undefined) this.apply(entry, value);
        });
      entry.hydrating = this.#bounded(loading, key).then(() => {
        entry.loaded = true;
      });
    }
    return entry.hydrating;
  }

  /** Adopts `value` for `entry` if it is a valid record newer than what the entry has. */
  apply(entry: Entry, value: unknown): boolean {
    const problem = recordProblem(value, entry.breaker.key);
    if (problem !== undefined) {
      this.report(entry.breaker.key, new TypeError(`cbfetch: ignored a stored record: ${problem}`));
      return false;
    }
    const record = value as BreakerRecord;
    if (!isNewer(record, entry)) return false;
    entry.rev = record.rev;
    entry.writer = record.writer;
    this.#applying = true;
    try {
      entry.breaker.importState(record);
    } finally {
      this.#applying = false;
    }
    return true;
  }

  /** Called on every persisted change of `entry`: bumps its revision and schedules a write. */
  changed(entry: Entry, transition: boolean): void {
    if (this.#applying) return;
    entry.rev++;
    entry.writer = this.writer;
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

  /** The record of `entry` as it stands. */
  recordOf(entry: Entry): BreakerRecord {
    return {
      v: RECORD_VERSION,
      key: entry.breaker.key,
      ...entry.breaker.exportState(),
      rev: entry.rev,
      writer: entry.writer,
    };
  }

  /** Writes every pending change. */
  flush(): Promise<void> {
    this.#microtaskQueued = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const records = Array.from(this.#dirty, (entry) => this.recordOf(entry));
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

  /** Reports a problem as a `storeerror` event. */
  report(key: string, error: unknown): void {
    const state = (key && this.#registry.peek(key)?.breaker.state) || "closed";
    this.#events.emit("storeerror", { key, state, error });
  }

  async #loadAll(): Promise<void> {
    const values = await this.#call(async (store) => (store.loadAll ? store.loadAll() : []));
    if (!Array.isArray(values)) return;
    for (const value of values) {
      const key = (value as { key?: unknown } | null)?.key;
      if (typeof key !== "string" || recordProblem(value) !== undefined) {
        this.report(
          typeof key === "string" ? key : "",
          new TypeError(`cbfetch: ignored a stored record: ${recordProblem(value)}`),
        );
        continue;
      }
      const entry = this.#registry.get(key);
      this.apply(entry, value);
      entry.loaded = true;
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
        this.report("", error);
      }
      return undefined;
    }
  }

  /** `promise`, or `undefined` after `loadTimeoutMs` (reported once per key). */
  #bounded<T>(promise: Promise<T>, key: string): Promise<T | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => {
        this.report(
          key,
          new Error(
            `cbfetch: the store took over ${this.#loadTimeoutMs} ms to load ${key}; going on without it`,
          ),
        );
        resolve(undefined);
      }, this.#loadTimeoutMs);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }
}
