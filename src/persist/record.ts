import type { BreakerState, CircuitState } from "../breaker/types.js";

/** The version of {@link BreakerRecord}; records of any other version are ignored. */
export const RECORD_VERSION = 1;

/**
 * A breaker's state as stored and shared (IndexedDB, BroadcastChannel, Durable Objects):
 * plain, versioned data holding only the key (an origin) and numbers. Times are epoch ms.
 */
export interface BreakerRecord extends BreakerState {
  /** Always {@link RECORD_VERSION}. */
  v: typeof RECORD_VERSION;
  /** The breaker's key: an origin, or what `keyOf` returned. */
  key: string;
  /** Bumped by every change; the higher `rev` wins a conflict. */
  rev: number;
  /** Id of the instance that made this revision; breaks `rev` ties. */
  writer: string;
}

/** A clean copy of a valid record: only the known fields, so nothing else travels along. */
export function copyRecord(r: BreakerRecord): BreakerRecord {
  return {
    v: RECORD_VERSION,
    key: r.key,
    state: r.state,
    retryAt: r.retryAt,
    reopenCount: r.reopenCount,
    consecutiveFailures: r.consecutiveFailures,
    rev: r.rev,
    writer: r.writer,
  };
}

/**
 * The merge rule everywhere (stores, tabs, Durable Objects): a higher `rev` wins; on a tie the
 * more cautious state wins (open over half-open over closed), then the greater `writer`. Two
 * writers that changed the same revision concurrently thus settle on "open" if either opened.
 */
export function isNewer(
  candidate: Pick<BreakerRecord, "rev" | "writer"> & { state?: CircuitState },
  current: (Pick<BreakerRecord, "rev" | "writer"> & { state?: CircuitState }) | undefined,
): boolean {
  if (current === undefined || candidate.rev !== current.rev) {
    return current === undefined || candidate.rev > current.rev;
  }
  const rank = caution(candidate.state) - caution(current.state);
  return rank !== 0 ? rank > 0 : candidate.writer > current.writer;
}

const CAUTION: Record<CircuitState, number> = { closed: 0, "half-open": 1, open: 2 };
const caution = (state: CircuitState | undefined) => (state ? CAUTION[state] : -1);
