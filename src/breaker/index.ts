import { reportListenerError } from "../errors.js";
import { Breaker } from "./breaker.js";
import {
  BREAKER_OPTION_NAMES,
  checkKnownKeys,
  checkObject,
  checkType,
  resolveBreakerOptions,
} from "./options.js";
import type { BreakerOptions, CircuitState } from "./types.js";

export { Breaker, Permit } from "./breaker.js";
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
  checkKnownKeys("createBreaker", checkObject("options", options), [
    ...BREAKER_OPTION_NAMES,
    "key",
    "onStateChange",
  ]);
  const { key = "", onStateChange } = options;
  checkType("key", key, "string");
  checkType("onStateChange", onStateChange, "function");
  return new Breaker(
    resolveBreakerOptions(options),
    key,
    onStateChange &&
      ((breaker, from, to) => {
        if (from === to) return;
        // The caller's code: it must not replace run()'s outcome nor stop a probe.
        try {
          onStateChange(to, from, breaker);
        } catch (error) {
          reportListenerError(error);
        }
      }),
  );
}
