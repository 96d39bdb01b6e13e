import * as failureRate from "../breaker/failure-rate.js";
import * as timeout from "../guards/timeout.js";
import * as network from "../outcome/network.js";
import * as channel from "../shared/channel.js";
import * as shared from "../shared/shared-state.js";
import type { PartLoaders } from "../fetch/parts.js";

/**
 * The parts a Service Worker's guard can use, imported statically: a Service Worker may not
 * use `import()` (the HTML standard; Chromium throws), and a bundler then makes no chunk of
 * them. The store and sync code, the browser judge's active half (the check of a second
 * place), timeouts, the failure-rate policy, the throttle, `keyOf` and the bulkhead. Left out
 * (see `handleFetch`): retries, `fallbackOrigins` and the stats meter.
 */
export const SW_PARTS: PartLoaders = {
  timeout: () => timeout,
  failureRate: () => failureRate,
  shared: () => shared,
  channel: () => channel,
  network: () => network,
};
