import type { Policy } from "./policy.js";
import type { Clock, ThrottleOptions } from "./types.js";
import { Window } from "./window.js";

/**
 * Adaptive client-side throttling ("Handling Overload", Google SRE book; gRPC's adaptive
 * throttler and Envoy's admission control do the same), as a policy: per key, over the last
 * `windowMs`, `requests` counts the calls asked (the ones refused here included) and `accepts`
 * the outcomes that were not failures. In the closed state a call is refused locally with
 * probability `max(0, (requests − k · accepts) / (requests + 1))`, so an overloaded upstream
 * keeps getting about `k` attempts per request it serves, whatever the offered load: enough to
 * notice at once when it has room again, never the whole flood.
 *
 * It trips only on a window with no accepted outcome that spans a whole `windowMs` of counting:
 * an overloaded upstream still serves some calls, a dead one none. Then the policy it wraps
 * decides: consecutive failures, or a failure rate, for which `minRequests` requests without an
 * accept also do (a windowed policy sees only the calls let through, about one a window on a
 * dead upstream: too few for its `minimumCalls`). Without the rule the breaker would open on the
 * failures the throttle lets through by design (about half at k = 2) and flap; without the whole
 * window, a newcomer (a new instance, or a circuit that just closed on a good probe) would trust
 * the first five failures of an empty one.
 *
 * An admitted call counts as a request when its outcome is known, not when it is asked: a call
 * in flight is no evidence yet. Counted when asked, every call to a healthy origin slower than a
 * fraction of the window would raise `requests` without `accepts` (the overload model: 376 of
 * 3501 calls refused at 50 calls/s with 3 s responses, none this way), and so would a burst of
 * parallel calls to a new key (20 at once: 9 refused).
 *
 * Pure: no I/O, no timers; time and randomness come from the breaker. A fetch instance loads
 * this module only when `throttle` is set.
 */
export class ThrottlePolicy implements Policy {
  readonly timed = true;
  readonly #options: Required<ThrottleOptions>;
  readonly #inner: Policy;
  /** `a`: requests, `b`: accepts. */
  readonly #window: Window;
  /** When the counts started (the first outcome since the last reset). */
  #since: number | undefined;

  constructor(options: Required<ThrottleOptions>, inner: Policy) {
    this.#options = options;
    this.#inner = inner;
    this.#window = new Window(options.windowMs);
  }

  /**
   * The probability that a call asked at `now` is refused: 0 while the window holds fewer
   * than `minRequests` requests.
   */
  probability(now: number): number {
    const window = this.#window;
    window.add(now, 0, 0); // moves the window to now
    const { k, minRequests } = this.#options;
    if (window.a < minRequests) return 0;
    const excess = window.a - k * window.b;
    return excess > 0 ? excess / (window.a + 1) : 0;
  }

  /**
   * Whether a call asked now may go: one draw of `random` (not made while the probability is
   * 0). A refused call counts as a request at once; an admitted one when its outcome comes.
   * Reads `clock` only where the window holds a failure: sliding a window of accepts alone
   * cannot make the probability positive, and a healthy key is the hot path.
   */
  admit(clock: Clock, random: () => number): boolean {
    const window = this.#window;
    if (window.a === window.b) return true;
    const now = clock.now();
    const p = this.probability(now);
    if (p === 0 || random() >= p) return true;
    window.add(now, 1, 0);
    return false;
  }

  stats(now: number): { throttleProbability: number } {
    return { throttleProbability: this.probability(now) };
  }

  success(now: number): void {
    this.#window.add(now, 1, 1);
    this.#inner.success(now);
    this.#since ??= now;
  }

  failure(now: number, consecutive: number): boolean {
    const window = this.#window;
    window.add(now, 1, 0);
    const inner = this.#inner;
    const trips = inner.failure(now, consecutive);
    // A clock set back starts the count afresh (as the window does).
    const since = (this.#since = Math.min(this.#since ?? now, now));
    const { windowMs, minRequests } = this.#options;
    return (
      window.b === 0 &&
      now - since >= windowMs &&
      (trips || (inner.timed && window.a >= Math.max(minRequests, 1)))
    );
  }

  reset(): void {
    this.#window.reset();
    this.#inner.reset();
    this.#since = undefined;
  }
}

/**
 * Hooks the throttle into a fetch instance (which loads this part when `throttle` is set): each
 * of its breakers gets one of its own, around the policy it had (installed after `failureRate`).
 */
export function install(core: {
  readonly config: {
    readonly breaker: {
      readonly throttle: Required<ThrottleOptions> | undefined;
      policy: () => Policy;
    };
  };
}): void {
  const { breaker } = core.config;
  const { throttle, policy } = breaker;
  if (throttle) breaker.policy = () => new ThrottlePolicy(throttle, policy());
}
