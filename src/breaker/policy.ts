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
}
