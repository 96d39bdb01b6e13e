/**
 * cbfetch: a circuit-breaker-aware `fetch`. One breaker per origin; while an origin fails,
 * calls fail fast with {@link CircuitOpenError} and the origin is probed again later.
 *
 * @packageDocumentation
 */
import { createCbFetch } from "./fetch/create.js";
import type { CbFetch } from "./fetch/types.js";

export {
  Breaker,
  type CreateBreakerOptions,
  createBreaker,
  Permit,
  type Policy,
  systemClock,
} from "./breaker/index.js";
export type * from "./breaker/types.js";
export {
  BulkheadFullError,
  CircuitOpenError,
  isCircuitOpenError,
  isRefusal,
  RefusalError,
  refusalOf,
  ThrottledError,
} from "./errors.js";
export { createCbFetch } from "./fetch/create.js";
export { isFailureStatus } from "./outcome/status.js";
export { memoryStore } from "./shared/memory-store.js";
export { type BreakerRecord, mergeRecords } from "./shared/record.js";
export type { BreakerStore } from "./shared/store.js";
export { CircuitEvent } from "./fetch/events.js";
export type * from "./fetch/types.js";

/**
 * The default instance: `fetch` with a breaker per origin, in memory, default policy.
 * Created on import without I/O, timers or listeners.
 */
export const cbFetch: CbFetch = /* @__PURE__ */ createCbFetch();
