import type { BreakerStats, Clock } from "./types.js";

/**
 * How a breaker decides to trip in the closed state. Each policy is one small class behind this
 * interface; the breaker knows nothing else of it. A breaker asks for its policy on the first
 * outcome it counts (see `ResolvedBreakerOptions.policy`).
 */
export interface Policy {
  /** Whether `success` and `failure` need the time (a window): the breaker reads a clock only then. */
  readonly timed: boolean;
  /** A success in the closed state. */
  success(now: number): void;
  /** A failure in the closed state, the `consecutive`-th in a row: whether to trip. */
  failure(now: number, consecutive: number): boolean;
  /** The circuit closed, or was reset: forget the outcomes so far. */
  reset(): void;
  /**
   * A throttle's: whether a call asked now (on `clock`, read only if needed) in the closed
   * state may go (`random`: a number in [0, 1)). Without it every closed-state call goes.
   */
  admit?(clock: Clock, random: () => number): boolean;
  /** A throttle's: the probability that a call asked at `now` is refused. */
  probability?(now: number): number;
  /** Figures the policy adds to the breaker's `stats` at `now`. */
  stats?(now: number): Partial<BreakerStats>;
}
