import type { CircuitState } from "../breaker/types.js";
import { RECORD_VERSION } from "./record.js";

// Kept apart from record.ts: only code that reads stored or shared records needs it, and
// that code is loaded only when a store or sync is set.
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
