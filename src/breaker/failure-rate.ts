import type { Policy } from "./policy.js";
import type { FailureRateOptions } from "./types.js";
import { Window } from "./window.js";

/**
 * Trip when failures / calls over the last `windowMs` reach `threshold`, once the window holds
 * `minimumCalls`. One per breaker (it holds the window); O(1) per call. A fetch instance loads
 * this module only when `failureRate` is set.
 */
export class FailureRatePolicy implements Policy {
  readonly timed = true;
  readonly #options: FailureRateOptions;
  /** `a`: calls, `b`: failures. */
  readonly #window: Window;

  constructor(options: FailureRateOptions) {
    this.#options = options;
    this.#window = new Window(options.windowMs);
  }

  success(now: number): void {
    this.#window.add(now, 1, 0);
  }

  failure(now: number): boolean {
    const window = this.#window;
    window.add(now, 1, 1);
    return window.a >= this.#options.minimumCalls && window.b >= this.#options.threshold * window.a;
  }

  reset(): void {
    this.#window.reset();
  }
}

/**
 * Hooks the policy into a fetch instance (which loads this part when `failureRate` is set):
 * each of its breakers gets one of its own.
 */
export function install(core: {
  readonly config: {
    readonly breaker: {
      readonly failureRate: FailureRateOptions | undefined;
      policy: () => Policy;
    };
  };
}): void {
  const { breaker } = core.config;
  const rate = breaker.failureRate;
  if (rate) breaker.policy = () => new FailureRatePolicy(rate);
}
