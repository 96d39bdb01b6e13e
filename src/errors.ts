/**
 * Thrown (as a rejection) when a circuit refuses a call: cbfetch failed fast without touching
 * the network. Not a `TypeError`, so clients that retry network errors do not retry it.
 */
export class CircuitOpenError extends Error {
  override readonly name = "CircuitOpenError";
  /** The breaker's key: for fetch, the origin (`https://api.example.com`). */
  declare readonly key: string;
  /** `open`, or `half-open` when every probe slot is taken. */
  declare readonly state: "open" | "half-open";
  /** Epoch ms when the circuit will let a call through again (at the latest, in half-open). */
  declare readonly retryAt: number;
  /** `max(0, retryAt - now)`, measured on the breaker's clock when the error was made. */
  declare readonly retryAfterMs: number;

  constructor(key: string, state: "open" | "half-open", retryAt: number, now: number) {
    const retryAfterMs = Math.max(0, retryAt - now);
    // One message for both states (in half-open, a probe is in flight): DESIGN §6 counts bytes.
    super(
      `Circuit for ${key} is ${state}: no request sent; retry in ${Math.ceil(retryAfterMs / 1000)} s`,
    );
    this.key = key;
    this.state = state;
    this.retryAt = retryAt;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Thrown (as a rejection) when a key's `maxConcurrent` calls are in flight and its queue is full. */
export class BulkheadFullError extends Error {
  override readonly name = "BulkheadFullError";
  /** The breaker's key (the origin). */
  declare readonly key: string;
  /** The `maxConcurrent` limit that was reached. */
  declare readonly maxConcurrent: number;
  /** The `maxQueue` limit that was reached. */
  declare readonly maxQueue: number;

  constructor(key: string, maxConcurrent: number, maxQueue: number) {
    super(`Bulkhead for ${key} is full: ${maxConcurrent} calls in flight and ${maxQueue} queued`);
    this.key = key;
    this.maxConcurrent = maxConcurrent;
    this.maxQueue = maxQueue;
  }
}

/**
 * Reports an error thrown by the caller's listener as a browser reports one thrown by an event
 * listener (`reportError`), or on the console where there is none (Node, whose EventTarget
 * would end the process instead): it never breaks the call that fired it.
 */
export function reportListenerError(error: unknown): void {
  ((globalThis as { reportError?: (error: unknown) => void }).reportError ?? console.error)(error);
}
