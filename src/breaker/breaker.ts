import { CLOSED, Circuit, HALF_OPEN, STATE_NAMES, type StateCode } from "./circuit.js";
import { FAILURE, Permit, SUCCESS } from "./permit.js";
import type { BreakerState, FailureKind } from "./types.js";

export type { TransitionListener } from "./circuit.js";

/**
 * A circuit breaker: its {@link Circuit}, as calls use it, and what people and shared state do
 * to it by hand: run work through it, record outcomes, force it open or closed, reset it,
 * export and adopt its state.
 */
export class Breaker extends Circuit {
  /**
   * Runs `fn` through the breaker: rejects with {@link CircuitOpenError} without calling it
   * while the circuit refuses calls; a throw or rejection counts as a failure.
   */
  async run<T>(fn: () => T | PromiseLike<T>): Promise<T> {
    const permit = this.allow();
    if (permit === undefined) throw this.openError();
    const slowCallMs = this.options.slowCallMs;
    const start = slowCallMs === undefined ? 0 : this.now();
    let value: T;
    try {
      value = await fn();
    } catch (error) {
      permit.failure("error");
      throw error;
    }
    if (slowCallMs !== undefined && this.now() - start > slowCallMs) {
      permit.failure("slow");
    } else {
      permit.success();
    }
    return value;
  }

  /** Returns `fn` wrapped with {@link Breaker.run}. */
  wrap<A extends unknown[], T>(fn: (...args: A) => T | PromiseLike<T>): (...args: A) => Promise<T> {
    return (...args) => this.run(() => fn(...args));
  }

  /** Records a success for a call made without a permit (settles the oldest probe in half-open). */
  recordSuccess(): void {
    this._settle(this.currentPermit(), SUCCESS);
  }

  /** Records a failure for a call made without a permit (settles the oldest probe in half-open). */
  recordFailure(kind: FailureKind = "manual"): void {
    this._settle(this.currentPermit(), FAILURE, kind);
  }

  /**
   * Opens the circuit now for `ms` milliseconds (default `openMs`, clamped to `maxOpenMs`),
   * exactly, without jitter. It then half-opens and probes as usual.
   */
  forceOpen(ms: number = this.options.openMs): void {
    if (typeof ms !== "number" || !(ms >= 0)) {
      throw new RangeError(`cbfetch: forceOpen(ms) needs a number >= 0, got ${String(ms)}`);
    }
    const now = this.now();
    this.open(now, now + Math.min(ms, this.options.maxOpenMs), false);
  }

  /** Closes the circuit now; keeps the lifetime counters. */
  forceClose(): void {
    this.close();
  }

  /** Closes the circuit and zeroes every counter, as if new. */
  reset(): void {
    this.close();
    this.successCount = this.failureCount = this.rejectionCount = this.ignoredCount = 0;
    this.meter?.reset();
  }

  /**
   * The state to persist or share: plain data, times in epoch ms. Half-open is exported as
   * open with its (past) `retryAt`: it follows from the time, and the probes in flight belong
   * to this instance alone.
   */
  exportState(): BreakerState {
    const closed = this.code === CLOSED;
    return {
      state: closed ? "closed" : "open",
      retryAt: closed ? 0 : this.openUntil,
      reopenCount: this.reopens,
      consecutiveFailures: this.consecutive,
    };
  }

  /**
   * Adopts a persisted or shared state. An open circuit keeps its remaining time (its
   * `retryAt`, clamped to `maxOpenMs` from now: skew or corruption cannot hold it open longer);
   * a half-open one admits fresh probes. Fires the transition listener like any change.
   */
  importState(state: BreakerState): void {
    const now = this.now();
    this.reopens = state.reopenCount;
    this.consecutive = state.state === "closed" ? state.consecutiveFailures : 0;
    this.openUntil = Math.min(state.retryAt, now + this.options.maxOpenMs);
    const code = STATE_NAMES.indexOf(state.state) as StateCode;
    if (code === this.code) {
      this.listener?.(this, state.state, state.state);
      return;
    }
    this.policy?.reset();
    this.transition(code);
  }

  /** The permit a manual record applies to: the oldest probe, or the state's own. */
  private currentPermit(): Permit {
    if (this.code !== CLOSED) this.refresh(this.now());
    if (this.code === HALF_OPEN) {
      return this.probes[0] ?? new Permit(this, this.epoch, true, Infinity);
    }
    if (this.code === CLOSED) return (this.closedPermit ??= this.newClosedPermit());
    return new Permit(this, -1, false, 0);
  }
}
