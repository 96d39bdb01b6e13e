import type { ResolvedCbFetchOptions } from "./options.js";

/**
 * The parts of cbfetch an instance has only when its options ask for them, each a module of its
 * own: a bundler that splits code (Vite, Rollup, webpack, esbuild with splitting) makes each a
 * chunk that only the apps using it download. What a call does if a part cannot load:
 * - `timeout` (`timeoutMs`): calls go without cbfetch's timeout;
 * - `bulkhead` (`maxConcurrent`): calls go unlimited;
 * - `fallback` (`fallback`, `fallbackOrigins`): refused calls get their error;
 * - `keyOf` (`keyOf`): calls are keyed by origin;
 * - `failureRate` (`failureRate`): breakers trip on `failureThreshold` consecutive failures;
 * - `throttle` (`throttle`): calls are not throttled;
 * - `meter` (`slowCallMs`, or `cbfetch/otel`): stats go without error rate and latency;
 * - `retry` (`retry`, `totalTimeoutMs`): calls go without retries;
 * - `shared` and `channel` (`store`, `sync`): the instance keeps its state in memory;
 * - `network` (a browser's rule, `networkErrors: "verify"`): a network error with no other
 *   origin's answer does not count (no check of a second place), and a circuit network errors
 *   opened waits out its time when the network comes back. Calls never wait for this one: it
 *   loads as soon as the instance is made, off their path.
 * Each failure is one `storeerror` event.
 */
export interface Parts {
  timeout?: typeof import("../guards/timeout.js");
  bulkhead?: typeof import("../guards/bulkhead.js");
  fallback?: typeof import("../guards/fallback.js");
  keyOf?: typeof import("../keys/key-of.js");
  failureRate?: typeof import("../breaker/failure-rate.js");
  throttle?: typeof import("../breaker/throttle.js");
  meter?: typeof import("../guards/meter.js");
  retry?: typeof import("../retry/retry.js");
  shared?: typeof import("../shared/shared-state.js");
  channel?: typeof import("../shared/channel.js");
  network?: typeof import("../outcome/network.js");
}

/** A part's name. */
export type PartName = keyof Parts;

/**
 * No part yet, with every name present in one order: each instance's parts then share one
 * shape, so the call path's reads of them stay monomorphic.
 */
export const noParts = (): Parts => ({
  timeout: undefined,
  bulkhead: undefined,
  fallback: undefined,
  keyOf: undefined,
  failureRate: undefined,
  throttle: undefined,
  meter: undefined,
  retry: undefined,
  shared: undefined,
  channel: undefined,
  network: undefined,
});

/**
 * How each part is had: `import()` by default (lazy.ts). A Service Worker may not use
 * `import()`, so `cbfetch/sw` hands the modules themselves; the Workers middleware leaves
 * `channel` out (Workers have no tabs), and with it the cross-tab code from a Worker's bundle.
 * No `import()` may appear in this module: `cbfetch/sw` imports it.
 */
export type PartLoaders = { [K in PartName]?: () => Parts[K] | Promise<Parts[K]> };

/**
 * The parts `config` asks for, loaded when the instance is made. (The meter comes when calls
 * are timed: `slowCallMs`, or `cbfetch/otel`.)
 */
export function partsFor(config: ResolvedCbFetchOptions): PartName[] {
  const wanted: Array<[PartName, unknown]> = [
    ["timeout", config.timeoutMs ?? config.totalTimeoutMs],
    ["bulkhead", config.maxConcurrent],
    ["fallback", config.fallback ?? config.fallbackOrigins],
    ["keyOf", config.keyOf],
    ["failureRate", config.breaker.failureRate],
    // After failureRate: it wraps the policy that one installs.
    ["throttle", config.breaker.throttle],
    ["retry", config.retry],
    ["shared", config.persisted || undefined],
    ["channel", config.sync],
  ];
  return wanted.filter(([, option]) => option !== undefined).map(([name]) => name);
}

/**
 * Loads part `name` into `parts`; one that cannot load is reported and stays missing (see
 * {@link Parts}). Never rejects.
 */
export async function loadPart(
  parts: Parts,
  loaders: PartLoaders,
  name: PartName,
  report: (error: unknown) => void,
): Promise<void> {
  try {
    const module = await loaders[name]?.();
    if (module !== undefined) (parts as Record<PartName, unknown>)[name] = module;
  } catch (error) {
    report(error);
  }
}
