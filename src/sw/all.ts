import * as throttle from "../breaker/throttle.js";
import * as bulkhead from "../guards/bulkhead.js";
import * as keyOf from "../keys/key-of.js";
import * as fallback from "../guards/fallback.js";
import * as meter from "../guards/meter.js";
import * as retry from "../retry/retry.js";
import { create } from "../fetch/instance.js";
import type { CbFetch, CbFetchOptions } from "../fetch/types.js";
import { SW_PARTS } from "./parts.js";

/**
 * `createCbFetch` for a Service Worker (or a Chrome extension's background worker): the same
 * instance as `cbfetch`'s, every option included (`store`, `sync`, `retry`, …), with all its
 * parts bundled in rather than loaded with `import()`, which a Service Worker may not use.
 *
 * @example
 * ```ts
 * // sw.js (a module service worker)
 * import { createCbFetch } from "cbfetch/sw";
 * import { idbStore } from "cbfetch/idb";
 * const cb = createCbFetch({ store: idbStore(), sync: true, retry: 2 });
 * ```
 * @throws TypeError or RangeError naming the option, when an option is invalid.
 */
export function createCbFetch(options: CbFetchOptions = {}): CbFetch {
  return create(options, {
    ...SW_PARTS,
    bulkhead: () => bulkhead,
    keyOf: () => keyOf,
    throttle: () => throttle,
    fallback: () => fallback,
    meter: () => meter,
    retry: () => retry,
  });
}
