import type { BreakerRecord } from "./record.js";

/**
 * Where breaker state survives reloads and restarts. cbfetch validates everything a store
 * returns, so `load` may hand back anything it found. Every method may throw, reject or hang:
 * the instance then carries on in memory, reports one `storeerror` per streak of failures,
 * and retries its writes later with backoff.
 */
export interface BreakerStore {
  /** The record stored for `key`, or `undefined`. */
  load(key: string): Promise<unknown>;
  /**
   * Merges `record` into the stored one with `mergeRecords` (a read-modify-write), so writers
   * racing each other cannot lose an open. May answer with the record it holds afterwards, so
   * the writer learns what others decided.
   */
  save(record: BreakerRecord): Promise<unknown>;
  /** Every stored record, for `ready` to restore all known breakers at once. */
  loadAll?(): Promise<unknown[]>;
  /** Forgets `key`: cbfetch deletes records of closed, idle breakers to keep storage bounded. */
  delete?(key: string): Promise<void>;
  /**
   * For stores that push other contexts' changes (Redis pub/sub): cbfetch calls it once per
   * instance, and `listener` merges each record it gets. Pass only keys this store has loaded
   * or saved (the keys in use), so others' keys do not fill the instance's breakers.
   */
  watch?(listener: (record: unknown) => void): void;
  /** Releases connections. */
  close?(): void | Promise<void>;
  /**
   * How long a call to this store may take before cbfetch counts it failed and carries on
   * (it may still land later).
   * @default 5000
   */
  readonly timeoutMs?: number;
  /**
   * Keeps the runtime alive until `work` settles (Workers' `waitUntil`). cbfetch hands every
   * write to it the moment the write is scheduled, so a change made inside some request's
   * or `waitUntil` work is written even after that work ends.
   */
  keepAlive?(work: Promise<unknown>): void;
}

/** What a store that leases half-open probes across contexts (a Durable Object) answers. */
export type ProbeLease =
  | { granted: true; release: (outcome?: BreakerRecord) => void }
  | { granted: false; until: number; record?: unknown };
