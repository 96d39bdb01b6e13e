// Kept apart from record.ts, which the core loads (for memoryStore): only code that reads
// shared records needs these.
import type { BreakerRecord } from "./record.js";

/** Whether `record` says the circuit is open (or half-open, once `retryAt` has passed). */
export function isOpen(record: BreakerRecord): boolean {
  return record.opened > 0 && record.opened >= record.closed;
}

/** Whether two records hold the same state. */
export function sameRecord(a: BreakerRecord, b: BreakerRecord): boolean {
  return (
    a.opened === b.opened &&
    a.retryAt === b.retryAt &&
    a.reopens === b.reopens &&
    a.closed === b.closed
  );
}
