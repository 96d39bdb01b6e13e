import type { BreakerRecord } from "./record.js";

/**
 * Where breaker state survives reloads and restarts. cbfetch validates everything a store
 * returns, so `load` may hand back anything it found. Every method may throw or reject: the
 * instance then carries on in memory, reports one `storeerror`, and retries writes later.
 */
export interface BreakerStore {
  /** The record stored for `key`, or `undefined`. */
  load(key: string): Promise<unknown>;
  /**
   * Stores `record`, unless the store holds a newer one for its key (see `isNewer`). A store
   * that knows better (a Durable Object merging several isolates) may answer with its record.
   */
  save(record: BreakerRecord): Promise<unknown>;
  /** Every stored record, for `ready` to restore all known breakers at once. */
  loadAll?(): Promise<unknown[]>;
  /** Forgets `key`. */
  delete?(key: string): Promise<void>;
  /** Releases connections. */
  close?(): void | Promise<void>;
}
