import { isOpen } from "../shared/compare.js";
import type { BreakerRecord } from "../shared/record.js";
import type { ObjectProbeAnswer } from "./types.js";

/** Longest probe lease granted, whatever a caller asks for. */
const MAX_LEASE_MS = 300_000;

/** The half-open probe lease a Durable Object holds for its key. */
export interface Lease {
  readonly holder: string;
  /** When it ends (epoch ms), unless its holder releases it first. */
  readonly until: number;
}

/** Which lease a report or a release ends: `holder`'s, the one granted until `until` if given. */
export interface LeaseRef {
  readonly holder: string;
  readonly until?: number;
}

/**
 * The lease left once `ref` (from a report or a release, so untrusted) has ended its own: the
 * same, unless `ref` names its holder (and its `until`, when given). A stale report of an
 * earlier probe cannot end the same holder's next lease.
 */
export function endLease(lease: Lease | undefined, ref: unknown): Lease | undefined {
  if (lease === undefined || typeof ref !== "object" || ref === null) return lease;
  const { holder, until } = ref as { holder?: unknown; until?: unknown };
  if (holder !== lease.holder || (until !== undefined && until !== lease.until)) return lease;
  return undefined;
}

/**
 * The lease decision of {@link CircuitBreakerObject}, kept pure so the model test runs it:
 * `holder` may probe only when `record` says a probe is due (closed, or open past its
 * `retryAt`: after a failed probe, nobody probes before the new one) and no other holder's
 * lease runs (even if the record says closed: that holder's probe is still out; a refusal
 * carries the record, so a context that is behind catches up). A lease ends when its holder
 * releases it, with the probe's outcome, or at its end. Returns the answer and the lease.
 */
export function decideLease(
  record: BreakerRecord | undefined,
  lease: Lease | undefined,
  holder: string,
  leaseMs: number,
  now: number,
): { answer: ObjectProbeAnswer; lease: Lease | undefined } {
  if (record !== undefined && isOpen(record) && now < record.retryAt) {
    return { answer: { granted: false, until: record.retryAt, record }, lease };
  }
  if (lease !== undefined && lease.until > now && lease.holder !== holder) {
    return { answer: { granted: false, until: lease.until, record }, lease };
  }
  const ms = Number.isFinite(leaseMs) ? Math.min(Math.max(leaseMs, 0), MAX_LEASE_MS) : 0;
  const granted = { holder: String(holder), until: now + ms };
  return { answer: { granted: true, until: granted.until }, lease: granted };
}
