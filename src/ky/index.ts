/**
 * `cbfetch/ky`: a ky instance whose every attempt goes through a cbfetch breaker.
 *
 * @packageDocumentation
 */
import ky, { type KyInstance, type Options } from "ky";
import { CircuitOpenError } from "../errors.js";

/** Anything with fetch's signature: a `createCbFetch` instance, or `cbFetch`. */
export type FetchLike = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

/** cbfetch's default `maxOpenMs`: ky never waits longer than an open circuit can last. */
const DEFAULT_MAX_RETRY_AFTER = 300_000;

/**
 * A ky instance (ky 2) that sends every attempt, retries included, through `cb`. ky's
 * `fetch` option runs per attempt (a `beforeRequest` hook would run once), so a retry into an
 * open circuit is refused by the breaker, and a {@link CircuitOpenError} ends ky's retry loop
 * at once and reaches the caller unwrapped. A 429/503 with `Retry-After` opens the circuit
 * until then, and ky waits exactly that long before its retry (the probe); its wait is capped
 * by `retry.maxRetryAfter`, 300 000 ms by default like cbfetch's `maxOpenMs` (pass yours if you
 * changed it). Everything else is ky's own: options, hooks, `HTTPError`, types.
 */
export function createKy(cb: FetchLike, options: Options = {}): KyInstance {
  if (typeof cb !== "function") {
    throw new TypeError(`cbfetch: createKy(cb) needs a fetch function, got ${typeof cb}`);
  }
  const retry =
    typeof options.retry === "number" ? { limit: options.retry } : (options.retry ?? {});
  const userShouldRetry = retry.shouldRetry;
  return ky.create({
    ...options,
    fetch: (input, init) => cb(input, init),
    retry: {
      maxRetryAfter: DEFAULT_MAX_RETRY_AFTER,
      ...retry,
      shouldRetry: (state) =>
        state.error instanceof CircuitOpenError ? false : userShouldRetry?.(state),
    },
  });
}
