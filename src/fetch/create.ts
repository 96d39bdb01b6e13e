import { create } from "./instance.js";
import { CHANNEL, IMPORTS } from "./lazy.js";
import type { CbFetch, CbFetchOptions } from "./types.js";

/**
 * Creates a fetch with one circuit breaker per origin. The result has `fetch`'s signature
 * and never reads, clones or changes the request or the response; while an origin's circuit
 * is open it rejects with {@link CircuitOpenError} without touching the network.
 *
 * The parts its options ask for (store, sync, timeouts, …) load with `import()`, so a
 * splitting bundler gives each a chunk of its own. In a Service Worker, where `import()` is
 * disallowed, use `createCbFetch` of `cbfetch/sw` (the same, its parts bundled).
 *
 * @example
 * ```ts
 * const cb = createCbFetch({ failureThreshold: 3, timeoutMs: 5_000 });
 * const response = await cb("https://api.example.com/items");
 * ```
 * @throws TypeError or RangeError naming the option, when an option is invalid.
 */
export function createCbFetch(options: CbFetchOptions = {}): CbFetch {
  return create(options, { ...IMPORTS, channel: CHANNEL });
}
