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

const STATES: readonly CircuitState[] = ["closed", "open", "half-open"];
const MAX_KEY_LENGTH = 2048;
const MAX_WRITER_LENGTH = 64;

const isCount = (value: unknown): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= 0;

/**
 * Why `value` is not a valid {@link BreakerRecord} (for `key`, when given), or `undefined` when
 * it is. Records come from storage and other tabs, so nothing about them is trusted.
 */
export function recordProblem(value: unknown, key?: string): string | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "not an object";
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return "not a plain object";
  const r = value as Record<string, unknown>;
  if (r.v !== RECORD_VERSION) return `unsupported version ${String(r.v)}`;
  if (typeof r.key !== "string" || r.key === "" || r.key.length > MAX_KEY_LENGTH) return "bad key";
  if (key !== undefined && r.key !== key)
    return `key ${JSON.stringify(r.key)} where ${JSON.stringify(key)} was asked for`;
  if (!STATES.includes(r.state as CircuitState)) return "bad state";
  if (typeof r.retryAt !== "number" || !Number.isFinite(r.retryAt) || r.retryAt < 0)
    return "bad retryAt";
  if (r.state === "open" && r.retryAt === 0) return "open without retryAt";
  if (!isCount(r.reopenCount) || !isCount(r.consecutiveFailures) || !isCount(r.rev)) {
    return "bad counters";
  }
  if (typeof r.writer !== "string" || r.writer.length > MAX_WRITER_LENGTH) return "bad writer";
  return undefined;
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
