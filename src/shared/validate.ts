import { type BreakerRecord, RECORD_VERSION } from "./record.js";

// Kept apart from record.ts: only code that reads stored or shared records needs it, and
// that code is loaded only when a store or sync is set.
const MAX_KEY_LENGTH = 2048;
/** More failed probes in a row than any real outage makes: the backoff is long capped by then. */
export const MAX_REOPENS = 1000;
/**
 * How far ahead of this context's clock a record's `opened` or `closed` may be. Contexts share
 * the wall clock (tabs) or a synchronised one (Workers): a time further ahead is corruption or
 * poison, and accepting it would let one record outrank every later change.
 */
export const MAX_SKEW_MS = 60_000;

const isTime = (value: unknown): value is number =>
  typeof value === "number" && Number.isFinite(value) && value >= 0;

/**
 * Why `value` is not a valid {@link BreakerRecord} (for `key`, when given, and as seen at
 * `now`, when given), or `undefined` when it is. Records come from storage, other tabs and
 * other isolates, so nothing about them is trusted.
 */
export function recordProblem(value: unknown, key?: string, now?: number): string | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "not an object";
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return "not a plain object";
  const r = value as Record<string, unknown>;
  if (r.v !== RECORD_VERSION) return `unsupported version ${String(r.v)}`;
  if (typeof r.key !== "string" || r.key === "" || r.key.length > MAX_KEY_LENGTH) return "bad key";
  if (key !== undefined && r.key !== key) {
    return `key ${JSON.stringify(r.key)} where ${JSON.stringify(key)} was asked for`;
  }
  if (!isTime(r.opened) || !isTime(r.closed) || !isTime(r.retryAt)) return "bad times";
  if (r.opened > 0 && r.retryAt === 0) return "open without retryAt";
  if (now !== undefined && Math.max(r.opened, r.closed) > now + MAX_SKEW_MS) {
    return "a time in the future";
  }
  const { reopens } = r;
  if (typeof reopens !== "number" || !Number.isInteger(reopens) || reopens < 0) {
    return "bad reopens";
  }
  if (reopens > MAX_REOPENS) return "reopens out of range";
  return undefined;
}

/** A clean copy of a valid record: only the known fields, so nothing else travels along. */
export function copyRecord(r: BreakerRecord): BreakerRecord {
  return {
    v: RECORD_VERSION,
    key: r.key,
    opened: r.opened,
    retryAt: r.retryAt,
    reopens: r.reopens,
    closed: r.closed,
  };
}

/** `value` as a clean record if it is valid, else `undefined`. */
export function validRecord(value: unknown, key?: string, now?: number): BreakerRecord | undefined {
  return recordProblem(value, key, now) === undefined
    ? copyRecord(value as BreakerRecord)
    : undefined;
}
