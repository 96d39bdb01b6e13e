/**
 * A call cbfetch refused without touching the network: its circuit is open, its bulkhead is
 * full, or its throttle refused it. Not a `TypeError`, so clients that retry network errors do not retry it. Find one
 * inside another client's error with {@link refusalOf}.
 */
export class RefusalError extends Error {
  /** The breaker's key: for fetch, the origin (`https://api.example.com`). */
  declare readonly key: string;
  /** How long to wait before the call may go, in ms (0: it may go again at once). */
  declare readonly retryAfterMs: number;

  constructor(message: string, key: string, retryAfterMs: number) {
    super(message);
    this.key = key;
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * Thrown (as a rejection) when a circuit refuses a call: cbfetch failed fast without touching
 * the network.
 */
export class CircuitOpenError extends RefusalError {
  override readonly name = "CircuitOpenError";
  /** `open`, or `half-open` when every probe slot is taken. */
  declare readonly state: "open" | "half-open";
  /** Epoch ms when the circuit will let a call through again (at the latest, in half-open). */
  declare readonly retryAt: number;

  /** `retryAfterMs` is `max(0, retryAt - now)`, on the breaker's clock. */
  constructor(key: string, state: "open" | "half-open", retryAt: number, now: number) {
    const ms = Math.max(0, retryAt - now);
    // One message for both states (in half-open, a probe is in flight).
    super(
      `Circuit for ${key} is ${state}: no request sent; retry in ${Math.ceil(ms / 1000)} s`,
      key,
      ms,
    );
    this.state = state;
    this.retryAt = retryAt;
  }
}

/** Thrown (as a rejection) when a key's `maxConcurrent` calls are in flight and its queue is full. */
export class BulkheadFullError extends RefusalError {
  override readonly name = "BulkheadFullError";
  /** The `maxConcurrent` limit that was reached. */
  declare readonly maxConcurrent: number;
  /** The `maxQueue` limit that was reached. */
  declare readonly maxQueue: number;

  constructor(key: string, maxConcurrent: number, maxQueue: number) {
    super(
      `Bulkhead for ${key} is full: ${maxConcurrent} calls in flight and ${maxQueue} queued`,
      key,
      0,
    );
    this.maxConcurrent = maxConcurrent;
    this.maxQueue = maxQueue;
  }
}

/**
 * Thrown (as a rejection) when the adaptive throttle (`throttle`) refuses a call: its upstream
 * is overloaded, so cbfetch sent nothing. The breaker counts it as neither a success nor a
 * failure, and `retry` does not retry it.
 */
export class ThrottledError extends RefusalError {
  override readonly name = "ThrottledError";
  /** The probability with which calls to this key were being refused (0 to 1). */
  declare readonly probability: number;

  constructor(key: string, probability: number, retryAfterMs: number) {
    const percent = Math.round(probability * 100);
    super(
      `Calls to ${key} are throttled (${percent} % refused): no request sent`,
      key,
      retryAfterMs,
    );
    this.probability = probability;
  }
}

/**
 * `make()`'s error, without a stack: refusals come in bursts while an origin is down or
 * overloaded, and their stack would only point into cbfetch (most of the cost of an Error).
 */
export function withoutStack<E>(make: () => E): E {
  const V8Error = Error as { stackTraceLimit?: number };
  const limit = V8Error.stackTraceLimit;
  V8Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    V8Error.stackTraceLimit = limit;
  }
}

const REFUSALS = ["CircuitOpenError", "BulkheadFullError", "ThrottledError"];

/**
 * The refusal in `error` or in its `cause` chain (axios's `AxiosError.cause`, ofetch's
 * `FetchError.cause`, …), or `undefined`. Also one made by another copy of cbfetch (another
 * bundle), recognised by its name and key. Its `retryAfterMs` says when to try again.
 *
 * @example
 * ```ts
 * const refusal = refusalOf(error);
 * if (refusal) showBanner(`retry in ${Math.ceil(refusal.retryAfterMs / 1000)} s`);
 * ```
 */
export function refusalOf(error: unknown): RefusalError | undefined {
  // At most 8 levels: a cycle in a cause chain ends the walk too.
  try {
    for (let depth = 0; depth < 8 && typeof error === "object" && error !== null; depth++) {
      const { name, key, cause } = error as { name?: unknown; key?: unknown; cause?: unknown };
      if (error instanceof RefusalError) return error;
      if (REFUSALS.includes(name as string) && typeof key === "string")
        return error as RefusalError;
      error = cause;
    }
  } catch {
    // A getter that throws (Safari's branded DOMException-likes, a Proxy): not a refusal. A
    // guard runs in the app's catch blocks, so it must not throw.
  }
  return undefined;
}

/** Whether `error` (or its `cause` chain) is a call cbfetch refused: see {@link refusalOf}. */
export function isRefusal(error: unknown): boolean {
  return refusalOf(error) !== undefined;
}

/** Whether `error` (or its `cause` chain) is a {@link CircuitOpenError}: see {@link refusalOf}. */
export function isCircuitOpenError(error: unknown): boolean {
  return refusalOf(error)?.name === "CircuitOpenError";
}
