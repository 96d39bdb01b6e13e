/** The three states of a circuit. */
export type CircuitState = "closed" | "open" | "half-open";

/**
 * Why a call counted as a failure.
 * - `error`: the work threw (for fetch: a network error).
 * - `timeout`: cbfetch's own `timeoutMs` fired.
 * - `status`: a response whose status counts as a failure (500, 502, 503, 504, 408, 429 by default).
 * - `slow`: the call took longer than `slowCallMs`.
 * - `probe-timeout`: a half-open probe did not settle within `probeTimeoutMs`.
 * - `manual`: `recordFailure()` without a kind.
 */
export type FailureKind = "error" | "timeout" | "status" | "slow" | "probe-timeout" | "manual";

/**
 * A source of time in epoch milliseconds that never goes backwards.
 * Inject one with the `clock` option to drive a breaker in tests.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** Open when the failure ratio over a sliding time window crosses a threshold. */
export interface FailureRateOptions {
  /** Failure ratio in (0, 1] that opens the circuit, e.g. `0.5` for half the calls. */
  threshold: number;
  /** Length of the sliding window in milliseconds (kept as 10 buckets). */
  windowMs: number;
  /** Calls the window must hold before the ratio is trusted. */
  minimumCalls: number;
}

/** Adaptive client-side throttling (`throttle`): how much an overloaded upstream still gets. */
export interface ThrottleOptions {
  /**
   * Attempts per accepted outcome the upstream may get before calls are refused: 2 lets it see
   * up to twice what it serves. Lower sheds more and sooner but comes back slower after an
   * outage; 1 refuses as soon as anything fails.
   * @default 2
   */
  k?: number;
  /**
   * The history the counts cover, in milliseconds (kept as 10 buckets): how fast the throttle
   * follows the upstream. After an outage, calls come back within about
   * `windowMs / k × ln(k × calls per window)`.
   * @default 1000
   */
  windowMs?: number;
  /**
   * Requests (calls asked, refused ones included) the window must hold before any call is
   * refused, so a key called a few times a second is left to the breaker. With `failureRate`,
   * this many requests without an accepted outcome over a whole window also open the circuit.
   * @default 10
   */
  minRequests?: number;
}

/** Options of one breaker: how it trips, how long it stays open, how it probes. */
export interface BreakerOptions {
  /**
   * Consecutive failures that open the circuit. Ignored when `failureRate` is set.
   * @default 5
   */
  failureThreshold?: number;
  /**
   * Open on a failure ratio over a time window instead of consecutive failures.
   * @default undefined (consecutive failures)
   */
  failureRate?: FailureRateOptions;
  /**
   * Adaptive client-side throttling against an overloaded upstream: in the closed state, a
   * call is refused locally (a `ThrottledError`) with probability
   * `max(0, (requests − k · accepts) / (requests + 1))` over the last `windowMs`. The breaker
   * opens only after a whole window with no accepted call (a dead upstream, not an overloaded
   * one).
   * `true`: the defaults.
   * @default undefined (off)
   */
  throttle?: boolean | ThrottleOptions;
  /**
   * A call slower than this many milliseconds counts as a failure (its result is still returned).
   * In a fetch instance, calls are then timed: events carry `durationMs`, and `stats` the error
   * rate and latency.
   * @default undefined (off)
   */
  slowCallMs?: number;
  /**
   * Probe successes in half-open that close the circuit.
   * @default 1
   */
  successThreshold?: number;
  /**
   * Probes admitted at once in half-open; further calls fail fast.
   * @default 1
   */
  halfOpenMaxProbes?: number;
  /**
   * A probe that has not settled after this many milliseconds counts as a failure, so a hung
   * probe cannot wedge the breaker.
   * @default 30000
   */
  probeTimeoutMs?: number;
  /**
   * How long the circuit stays open after it trips, in milliseconds.
   * @default 30000
   */
  openMs?: number;
  /**
   * Factor applied to the open duration on each re-open (a failed probe); reset on close.
   * @default 2
   */
  backoff?: number;
  /**
   * Ceiling for any open duration: backoff, `Retry-After`, `forceOpen` and persisted times.
   * @default 300000
   */
  maxOpenMs?: number;
  /**
   * Random spread of the open duration, as a ± fraction, so many clients do not probe together.
   * `Retry-After` and `forceOpen` are exact (no jitter).
   * @default 0.2
   */
  jitter?: number;
  /**
   * Time source (epoch ms, monotonic). The default, a clock of this breaker's (or instance's)
   * own, follows `performance.now()` anchored on `Date.now()`, catches up with `Date.now()` when
   * it runs ahead (the device slept; a fake `Date` moved forward), and reads both globals at
   * each call, so a test's fake timers move it exactly (see `systemClock`).
   * @default systemClock(), one per breaker or instance
   */
  clock?: Clock;
  /**
   * Random source for jitter, returning a number in [0, 1).
   * @default Math.random
   */
  random?: () => number;
}

/** A breaker's counters and state as plain data. */
export interface BreakerStats {
  state: CircuitState;
  /**
   * Epoch ms at which an open circuit admits a probe; in half-open, the latest time the
   * probes in flight will have decided; `undefined` when closed.
   */
  retryAt: number | undefined;
  /** Re-opens since the circuit last closed (drives the backoff). */
  reopenCount: number;
  /** Consecutive failures in the closed state. */
  consecutiveFailures: number;
  /** Probes admitted in half-open that have not settled yet. */
  probesInFlight: number;
  /** Successes recorded since creation or `reset()`. */
  successes: number;
  /** Failures recorded since creation or `reset()`. */
  failures: number;
  /** Calls refused (fast-failed) since creation or `reset()`. */
  rejections: number;
  /**
   * Admitted calls whose outcome did not count, since creation or `reset()`: aborted by their
   * caller, failed while offline or on the caller's own bad input, or finished after the state
   * they started in had changed. Once every call has settled, admitted calls =
   * `successes + failures + ignored`.
   */
  ignored: number;
  /**
   * Where calls are timed (see `meanLatencyMs`): failures / (successes + failures), 0 to 1,
   * over the calls since the circuit last closed or was reset (or since timing began);
   * `undefined` before one. With `failureRate` this is not the window's own ratio (which is
   * cleared at every close too, and also drops calls older than `windowMs`).
   */
  errorRate?: number | undefined;
  /**
   * Mean duration in ms of the calls since the circuit last closed or was reset, where calls
   * are timed: only where a clock is read anyway, in a fetch instance with `slowCallMs` (once
   * its on-demand code has loaded) or instrumented by `cbfetch/otel` (from then on). A plain
   * instance's calls read no clock, and its stats have none of these three fields. A duration
   * runs to the response headers, or to the network error or timeout.
   */
  meanLatencyMs?: number | undefined;
  /** Where calls are timed (see `meanLatencyMs`): the last call's duration in ms. */
  lastLatencyMs?: number | undefined;
  /**
   * With `throttle`: the probability (0 to 1) that a call asked now in the closed state is
   * refused. Throttled calls are counted in `rejections`.
   */
  throttleProbability?: number;
}

/** The part of a breaker's state that is persisted and shared: plain data, epoch ms. */
export interface BreakerState {
  state: CircuitState;
  /** When an open circuit admits a probe (epoch ms); 0 unless open. */
  retryAt: number;
  /** Re-opens since the circuit last closed (drives the backoff). */
  reopenCount: number;
  /** Consecutive failures in the closed state. */
  consecutiveFailures: number;
}
