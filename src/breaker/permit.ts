import type { FailureKind } from "./types.js";

/** How a permit was settled (see `Breaker._settle`). */
export const SUCCESS = 0;
export const FAILURE = 1;
export const RELEASE = 2;
export type Outcome = typeof SUCCESS | typeof FAILURE | typeof RELEASE;

/** What a permit needs of its breaker: the one method that applies an outcome. */
export interface Settler {
  _settle(permit: Permit, outcome: Outcome, kind?: FailureKind, retryAt?: number): boolean;
}

/**
 * Permission for one call, from `Breaker.allow()`. Settle it exactly once with
 * `success()`, `failure()` or `release()` (neither: the call was cancelled by its caller).
 * A permit issued before a transition is stale and its outcome is ignored, so a slow call
 * that started while closed cannot decide a later half-open probe.
 */
export class Permit {
  /** @internal */ settled = false;
  /** A probe of a half-open phase since left: its outcome is ignored when it comes. @internal */
  discarded = false;
  // `declare`: set by the constructor only, in this order (no field definitions to ship).
  /** @internal */ declare readonly breaker: Settler;
  /** @internal */ declare readonly epoch: number;
  /** True for a half-open probe. */
  declare readonly probe: boolean;
  /** Epoch ms after which a probe counts as failed (`Infinity` for closed-state permits). */
  declare readonly expiresAt: number;

  /** Permits come from `Breaker.allow()`. */
  constructor(breaker: Settler, epoch: number, probe: boolean, expiresAt: number) {
    this.breaker = breaker;
    this.epoch = epoch;
    this.probe = probe;
    this.expiresAt = expiresAt;
  }

  /** The call succeeded. Returns whether that counted (false when stale or settled). */
  success(): boolean {
    return this.breaker._settle(this, SUCCESS);
  }

  /**
   * The call failed. With `retryAt` (epoch ms, e.g. from `Retry-After`) the circuit opens
   * until exactly then (clamped to `maxOpenMs`), whatever the policy says, or stays open
   * until then if it is open for less. Returns whether that counted.
   */
  failure(kind: FailureKind = "manual", retryAt?: number): boolean {
    return this.breaker._settle(this, FAILURE, kind, retryAt);
  }

  /** Neither success nor failure: frees a probe slot without counting anything. Returns false. */
  release(): boolean {
    return this.breaker._settle(this, RELEASE);
  }
}
