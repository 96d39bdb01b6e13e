/** The version of {@link BreakerRecord}; records of any other version are ignored. */
export const RECORD_VERSION = 2;

/**
 * A breaker's shared state, as stored and sent (IndexedDB, BroadcastChannel, Durable Objects):
 * plain, versioned data holding only the key (an origin) and numbers. Times are epoch ms.
 *
 * It is two registers that only grow: the latest open episode (`opened`, with its `retryAt`
 * and `reopens`) and the latest evidence that the origin works (`closed`). The circuit is open
 * while `opened >= closed`. Merging keeps the larger of each ({@link mergeRecords}), so records
 * may arrive in any order, twice or never, and every context that has seen the same records
 * holds the same state. An open ends only through a `closed` time later than its `opened`:
 * a success observed after the open began, or a manual `forceClose()`/`reset()`.
 */
export interface BreakerRecord {
  /** Always {@link RECORD_VERSION}. */
  v: typeof RECORD_VERSION;
  /** The breaker's key: an origin, or what `keyOf` returned. */
  key: string;
  /** When the latest open episode began; 0 if the key never opened. */
  opened: number;
  /** When that episode admits a probe; 0 if the key never opened. */
  retryAt: number;
  /** Failed probes in a row before that episode (drives the backoff). */
  reopens: number;
  /**
   * When the calls started that proved the origin works again (a probe that succeeded), or
   * when it was closed by hand; 0 if never.
   */
  closed: number;
}

/**
 * The merge rule everywhere (stores, tabs, Durable Objects): the later open episode (by
 * `opened`, then the later `retryAt`, then more `reopens`) and the later `closed`. It is a
 * join: commutative, associative and idempotent. `a` and `b` must have the same key.
 */
export function mergeRecords(a: BreakerRecord, b: BreakerRecord): BreakerRecord {
  const open =
    a.opened !== b.opened
      ? a.opened > b.opened
      : a.retryAt !== b.retryAt
        ? a.retryAt > b.retryAt
        : a.reopens >= b.reopens;
  const from = open ? a : b;
  return {
    v: RECORD_VERSION,
    key: a.key,
    opened: from.opened,
    retryAt: from.retryAt,
    reopens: from.reopens,
    closed: Math.max(a.closed, b.closed),
  };
}
