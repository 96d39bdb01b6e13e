import { reportListenerError } from "../report.js";
import { Breaker } from "./breaker.js";
import { FailureRatePolicy } from "./failure-rate.js";
import { ThrottlePolicy } from "./throttle.js";
import {
  BREAKER_NUMBERS,
  BREAKER_OTHERS,
  badOption,
  readGroup,
  resolveBreakerOptions,
} from "./options.js";
import type { BreakerOptions, CircuitState } from "./types.js";

export { Breaker } from "./breaker.js";
export { Permit } from "./permit.js";
export type { Policy } from "./policy.js";
export { systemClock } from "./clock.js";
export type * from "./types.js";

/** Options of {@link createBreaker}. */
export interface CreateBreakerOptions extends BreakerOptions {
  /** A name for errors and events. @default "" */
  key?: string;
  /** Called on every state change; an error it throws is reported, never thrown. @default undefined */
  onStateChange?: (state: CircuitState, previous: CircuitState, breaker: Breaker) => void;
}

/**
 * A circuit breaker for any async work: `run(fn)`, `wrap(fn)`, or the manual API
 * (`allow()`, `recordSuccess()`, `recordFailure()`, `forceOpen()`, …).
 *
 * @throws TypeError or RangeError naming the option, when an option is invalid.
 */
export function createBreaker(options: CreateBreakerOptions = {}): Breaker {
  const read = readGroup("createBreaker", options, BREAKER_NUMBERS, {
    ...BREAKER_OTHERS,
    key: "any",
    onStateChange: "function",
  });
  const { key = "", onStateChange } = read as CreateBreakerOptions;
  if (typeof key !== "string") badOption("key", "a string", key);
  const resolved = resolveBreakerOptions(read);
  const { failureRate, throttle } = resolved;
  if (failureRate) resolved.policy = () => new FailureRatePolicy(failureRate);
  const inner = resolved.policy;
  if (throttle) resolved.policy = () => new ThrottlePolicy(throttle, inner());
  const breaker: Breaker = new Breaker(
    resolved,
    key,
    onStateChange &&
      ((_, from, to) => {
        if (from === to) return;
        // The caller's code: it must not replace run()'s outcome nor stop a probe.
        try {
          onStateChange(to, from, breaker);
        } catch (error) {
          reportListenerError(error);
        }
      }),
  );
  return breaker;
}
