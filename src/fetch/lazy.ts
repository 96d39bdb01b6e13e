import type { PartLoaders } from "./parts.js";

/**
 * Every part but the cross-tab channel, loaded with `import()`: each `import()` is where a
 * splitting bundler cuts a chunk. (`createCbFetch` adds {@link CHANNEL}; the Workers
 * middleware does not, so a Worker's bundle has no cross-tab code.)
 */
export const IMPORTS: PartLoaders = {
  timeout: () => import("../guards/timeout.js"),
  bulkhead: () => import("../guards/bulkhead.js"),
  fallback: () => import("../guards/fallback.js"),
  keyOf: () => import("../keys/key-of.js"),
  failureRate: () => import("../breaker/failure-rate.js"),
  throttle: () => import("../breaker/throttle.js"),
  meter: () => import("../guards/meter.js"),
  retry: () => import("../retry/retry.js"),
  shared: () => import("../shared/shared-state.js"),
  network: () => import("../outcome/network.js"),
};

/** The cross-tab channel's code (`sync`). */
export const CHANNEL: PartLoaders["channel"] = () => import("../shared/channel.js");
