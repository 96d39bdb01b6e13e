/**
 * Why a request is retried: a network error, cbfetch's own `timeoutMs`, or a status of
 * `retry.statusCodes`.
 */
export type RetryReason = "error" | "timeout" | "status";

/** How {@link CbFetchOptions.retry} retries. */
export interface RetryOptions {
  /**
   * Retries after the first attempt.
   * @default 2
   */
  limit?: number;
  /**
   * Methods retried. POST and PATCH (or any method not listed) are retried too when the request
   * carries an `Idempotency-Key` header; a `ReadableStream` body never is.
   * @default ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]
   */
  methods?: readonly string[];
  /**
   * Response statuses retried. Network errors and cbfetch's own `timeoutMs` are retried too.
   * @default [408, 429, 500, 502, 503, 504]
   */
  statusCodes?: readonly number[];
  /**
   * Base of the exponential backoff: the n-th retry (from 0) waits a random time in
   * [0, min(maxDelayMs, delayMs · 2^n)) (full jitter).
   * @default 300
   */
  delayMs?: number;
  /**
   * Ceiling of a backoff wait, in milliseconds.
   * @default 10000
   */
  maxDelayMs?: number;
  /**
   * A 429 or 503 with `Retry-After` is retried after exactly that long when it is at most this
   * many milliseconds; a longer one returns the response at once.
   * @default 60000
   */
  maxRetryAfterMs?: number;
  /**
   * Retries per key may not exceed `minRetries` + `ratio` × first attempts over the last
   * `windowMs`; past it, a failure is returned at once. `false` turns the budget off.
   * @default { ratio: 0.2, minRetries: 3, windowMs: 10000 }
   */
  budget?: RetryBudgetOptions | false;
}

/** The retry budget of {@link RetryOptions.budget}. */
export interface RetryBudgetOptions {
  /**
   * Retries allowed per first attempt, on top of `minRetries`.
   * @default 0.2
   */
  ratio?: number;
  /**
   * Retries always allowed per window, so a quiet key can still retry.
   * @default 3
   */
  minRetries?: number;
  /**
   * The sliding window over which attempts and retries are counted, in milliseconds.
   * @default 10000
   */
  windowMs?: number;
}

/** `retry` validated; `methods` and `statusCodes` are `undefined` for the defaults. */
export interface ResolvedRetryOptions {
  readonly limit: number;
  readonly methods: readonly string[] | undefined;
  readonly statusCodes: readonly number[] | undefined;
  readonly delayMs: number;
  readonly maxDelayMs: number;
  readonly maxRetryAfterMs: number;
  /** `false`: no budget. */
  readonly budget: Required<RetryBudgetOptions> | false;
}
