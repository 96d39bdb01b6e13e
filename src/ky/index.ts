/**
 * `cbfetch/ky`: a ky instance whose every attempt goes through a cbfetch breaker, and whose
 * retries draw on cbfetch's retry budget.
 *
 * @packageDocumentation
 */
import ky, { type KyInstance, type Options } from "ky";
import { budgetsOf, type RetryBudget } from "../retry/budget.js";

/** Anything with fetch's signature: a `createCbFetch` instance, or `cbFetch`. */
export type FetchLike = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

/** cbfetch's default `maxOpenMs`: ky never waits longer than an open circuit can last. */
const DEFAULT_MAX_RETRY_AFTER = 300_000;
/** cbfetch's refusals: each ends ky's retry loop (the call never reached the network). */
const REFUSALS = ["CircuitOpenError", "ThrottledError", "BulkheadFullError"];

/**
 * A ky instance (ky 2) that sends every attempt, retries included, through `cb`. ky's
 * `fetch` option runs per attempt (a `beforeRequest` hook would run once), so a retry into an
 * open circuit is refused by the breaker, and a refusal (`CircuitOpenError`, `ThrottledError`,
 * `BulkheadFullError`) ends ky's retry loop
 * at once and reaches the caller unwrapped. A 429/503 with `Retry-After` opens the circuit
 * until then, and ky waits exactly that long before its retry (the probe); its wait is capped
 * by `retry.maxRetryAfter`, 300 000 ms by default like cbfetch's `maxOpenMs` (pass yours if you
 * changed it).
 *
 * ky's retries draw on `cb`'s retry budget (DESIGN §8), per key, shared with cbfetch's own
 * `retry`: retries ≤ `minRetries` + `ratio` × requests over the last `windowMs`, with `cb`'s
 * `retry.budget` when it has one, otherwise the defaults (3, 20 %, 10 s). Past it, ky returns
 * the failure at once, as when its `limit` is spent (`HTTPError`, or the network error, through
 * your `beforeError` hooks). ky's retries count in `cb.snapshot()`'s `retries`. Everything
 * else is ky's own: options, hooks, `HTTPError`, types.
 */
export function createKy(cb: FetchLike, options: Options = {}): KyInstance {
  if (typeof cb !== "function") {
    throw new TypeError(`cbfetch: createKy(cb) needs a fetch function, got ${typeof cb}`);
  }
  const retry =
    typeof options.retry === "number" ? { limit: options.retry } : (options.retry ?? {});
  const userShouldRetry = retry.shouldRetry;
  const hooks = options.hooks ?? {};
  const budgets = budgetsOf(cb);
  const breaker = (cb as { breaker?: (url: string) => { key: string } }).breaker;

  /** The budget of the key `cb` guards `request` under; none for what cbfetch passes through. */
  function budgetOf(request: Request | undefined): RetryBudget | undefined {
    const url = request?.url;
    if (!/^https?:/.test(url ?? "")) return undefined;
    try {
      return budgets.for(breaker ? breaker(url!).key : new URL(url!).origin);
    } catch {
      return undefined; // a keyOf that throws: the call itself will say so
    }
  }

  return ky.create({
    ...options,
    fetch: (input, init) => {
      // Counted once per ky request (below): cbfetch's own retry loop must not count it again.
      if (typeof input === "object") budgets.counted.add(input);
      return cb(input, init);
    },
    hooks: {
      ...hooks,
      // Last, so a hook that answers the request itself (no fetch) comes first: one request.
      beforeRequest: [
        ...(hooks.beforeRequest ?? []),
        ({ request }) => {
          budgetOf(request)?.first();
        },
      ],
      // First, so no other hook runs for a retry the budget refuses. Throwing ky's own error
      // ends its loop as a spent `limit` does (its beforeError hooks still run).
      beforeRetry: [
        ({ request, error }) => {
          if (budgetOf(request)?.take() === false) throw error;
        },
        ...(hooks.beforeRetry ?? []),
      ],
    },
    retry: {
      maxRetryAfter: DEFAULT_MAX_RETRY_AFTER,
      ...retry,
      // Decided before ky waits: with no budget left, the failure comes back at once.
      shouldRetry: async (state) => {
        // By name: importing the classes would split the core's code into more chunks.
        if (REFUSALS.includes(state.error.name)) return false;
        const answer = await userShouldRetry?.(state);
        const { request } = state.error as { request?: Request };
        return answer === false || budgetOf(request)?.take(true) === false ? false : answer;
      },
    },
  });
}
