import { CircuitOpenError, type RefusalError, ThrottledError, withoutStack } from "../errors.js";
import type { ResolvedBreakerOptions } from "./options.js";
import { type Outcome, Permit, RELEASE, SUCCESS } from "./permit.js";
import type { Policy } from "./policy.js";
import type { BreakerStats, CircuitState, FailureKind } from "./types.js";

/** The states, as a circuit keeps them (a number is cheaper to compare than a name). */
export const CLOSED = 0;
export const OPEN = 1;
export const HALF_OPEN = 2;
export type StateCode = typeof CLOSED | typeof OPEN | typeof HALF_OPEN;
export const STATE_NAMES: readonly CircuitState[] = ["closed", "open", "half-open"];
/** The probe list of every breaker with none in flight (most of them), never written to. */
const NO_PROBES: Permit[] = [];

/**
 * Called after every change worth persisting: a transition (`from !== to`), or, with
 * `from === to`, a change of the closed state's failure count or of an open circuit's
 * `retryAt` (a longer `Retry-After`). Never on a healthy call. `cause` is set when no call
 * reports the failure behind the transition: `probe-timeout` for an expired probe.
 */
export type TransitionListener = (
  breaker: Circuit,
  from: CircuitState,
  to: CircuitState,
  cause?: FailureKind,
) => void;

/**
 * A circuit: a pure state machine with no I/O and no timers, as calls use it (`Breaker` adds
 * what people and shared state do by hand). Time comes from the injected clock and moves the
 * state only when the circuit is used (open → half-open on the first call at or after
 * `retryAt`; an expired probe is noticed on the next call). When to trip in the closed state
 * is its {@link Policy}'s decision.
 */
export class Circuit {
  /** The key this breaker guards (for fetch: the origin). */
  declare readonly key: string;
  // TypeScript-private rather than `#private`: with this many `#` fields, V8 moved Breakers to
  // dictionary properties in a long-lived process (2.7 times the memory; bench section 3).
  protected code: StateCode = CLOSED;
  protected openUntil = 0;
  protected reopens = 0;
  protected consecutive = 0;
  // Bumped on every transition; permits carry it to detect staleness.
  protected epoch = 0;
  // Made on first use, so an idle breaker stays small.
  protected closedPermit: Permit | undefined;
  protected probes: Permit[] = NO_PROBES;
  protected probeSuccesses = 0;
  protected successCount = 0;
  protected failureCount = 0;
  protected rejectionCount = 0;
  protected ignoredCount = 0;
  // Asked of the options on the first outcome counted: an idle breaker holds none.
  protected policy: Policy | undefined;
  /**
   * Figures a meter adds to `stats` (the error rate and latency of timed calls, with
   * `slowCallMs` or `cbfetch/otel`), cleared by `reset()`. @internal
   */
  meter: { stats(): Partial<BreakerStats>; reset(): void } | undefined;
  declare protected readonly options: ResolvedBreakerOptions;
  declare protected readonly listener: TransitionListener | undefined;

  /** Use `createBreaker()`, or `createCbFetch(...).breaker(url)`. */
  constructor(options: ResolvedBreakerOptions, key = "", listener?: TransitionListener) {
    this.key = key;
    this.options = options;
    this.listener = listener;
  }

  /**
   * Current state. Reading it changes nothing: an open circuit whose `retryAt` has passed
   * reads as half-open, and moves there (firing its transition) on the next call.
   */
  get state(): CircuitState {
    const code = this.code;
    if (code === OPEN && this.now() >= this.openUntil) return "half-open";
    return STATE_NAMES[code] as CircuitState;
  }

  /**
   * Epoch ms when an open circuit admits a probe; in half-open, the latest time the probes in
   * flight will have decided; `undefined` when closed.
   */
  get retryAt(): number | undefined {
    if (this.code === CLOSED) return undefined;
    const now = this.now();
    if (this.code === OPEN) return Math.max(now, this.openUntil);
    return this.probes[0]?.expiresAt ?? now;
  }

  /** Counters and state as plain data. */
  get stats(): BreakerStats {
    const stats: BreakerStats = {
      state: this.state,
      retryAt: this.retryAt,
      reopenCount: this.reopens,
      consecutiveFailures: this.consecutive,
      probesInFlight: this.probes.length,
      successes: this.successCount,
      failures: this.failureCount,
      rejections: this.rejectionCount,
      ignored: this.ignoredCount,
    };
    // A meter's figures, and a throttle's probability (on its policy's timeline).
    return Object.assign(
      stats,
      this.meter?.stats(),
      this.policy?.stats?.(this.options.windowClock.now()),
    );
  }

  /**
   * Asks to make a call. Returns a {@link Permit} to settle when the call ends, or `undefined`
   * when the circuit refuses it (open, or half-open with every probe slot taken, or closed and
   * throttled).
   */
  allow(): Permit | undefined {
    // Hot path: closed needs no clock and allocates nothing. Only a throttle's policy has
    // `admit`.
    if (this.code === CLOSED) {
      const { options } = this;
      if (this.policy?.admit?.(options.windowClock, options.random) !== false)
        return (this.closedPermit ??= this.newClosedPermit());
      this.rejectionCount++;
      return undefined;
    }
    const now = this.now();
    this.refresh(now);
    if (this.code === HALF_OPEN && this.probes.length < this.options.halfOpenMaxProbes) {
      const probe = new Permit(this, this.epoch, true, now + this.options.probeTimeoutMs);
      if (this.probes === NO_PROBES) this.probes = [probe];
      else this.probes.push(probe);
      return probe;
    }
    this.rejectionCount++;
    return undefined;
  }

  /**
   * The error a refused call gets: a {@link CircuitOpenError} with this breaker's timing, or
   * in the closed state its throttle's `ThrottledError`.
   */
  openError(): RefusalError {
    const { policy, options } = this;
    if (this.code === CLOSED && policy?.probability) {
      const probability = policy.probability(options.windowClock.now());
      // Its retryAfterMs: the throttle's window, when every outcome behind the refusal is gone.
      return withoutStack(
        () => new ThrottledError(this.key, probability, options.throttle?.windowMs ?? 0),
      );
    }
    const now = this.now();
    this.refresh(now);
    const retryAt = this.code === HALF_OPEN ? (this.probes[0]?.expiresAt ?? now) : this.openUntil;
    return this.error(retryAt, now);
  }

  /**
   * The probe `permit` did not go out: another context holds the shared probe slot until
   * `until` (epoch ms; by default `probeTimeoutMs` from now, the longest it may). Frees this
   * slot, counts a rejection, and returns the error for the caller. @internal
   */
  _refuse(permit: Permit, until?: number): CircuitOpenError {
    const now = this.now();
    // Already settled (a transition or its expiry counted it): count nothing twice.
    if (!permit.probe || this.unlist(permit)) this.rejectionCount++;
    return this.error(Math.max(until ?? now + this.options.probeTimeoutMs, this.openUntil), now);
  }

  /** Applies the outcome of a permit; use the permit's methods instead. @internal */
  _settle(permit: Permit, outcome: Outcome, kind?: FailureKind, retryAt?: number): boolean {
    if (permit.probe && !this.unlist(permit)) return false;
    if (
      outcome === RELEASE ||
      // Stale: the state changed while the call ran. A Retry-After still opens the circuit,
      // or keeps it open longer (the server asked us to stay away); nothing else counts.
      (permit.epoch !== this.epoch &&
        (retryAt === undefined ||
          (this.code === OPEN &&
            Math.min(retryAt, this.now() + this.options.maxOpenMs) <= this.openUntil)))
    ) {
      this.ignoredCount++;
      return false;
    }
    if (outcome === SUCCESS) this.settleSuccess();
    else this.settleFailure(retryAt, kind);
    return true;
  }

  /**
   * Takes a probe out of flight; false if it was already settled, or discarded by a transition
   * (then counted as ignored now, the one time its call settles).
   */
  protected unlist(permit: Permit): boolean {
    if (permit.settled) return false;
    permit.settled = true;
    if (permit.discarded) {
      this.ignoredCount++;
      return false;
    }
    const index = this.probes.indexOf(permit);
    if (index >= 0) this.probes.splice(index, 1);
    return true;
  }

  protected settleSuccess(): void {
    this.successCount++;
    if (this.code === CLOSED) {
      if (this.consecutive !== 0) {
        this.consecutive = 0;
        this.listener?.(this, "closed", "closed");
      }
      // Only a window needs successes (and the time): skip both otherwise.
      const policy = (this.policy ??= this.options.policy());
      if (policy.timed) policy.success(this.options.windowClock.now());
    } else if (this.code === HALF_OPEN) {
      if (++this.probeSuccesses >= this.options.successThreshold) this.close();
    }
  }

  protected settleFailure(retryAt?: number, _kind?: FailureKind): void {
    this.failureCount++;
    const now = this.now();
    if (this.code === HALF_OPEN) {
      this.reopens++;
      this.open(now, retryAt, retryAt === undefined);
      return;
    }
    if (this.code === OPEN) {
      // Only a stale failure with a longer Retry-After gets here (see _settle): open until then.
      this.openUntil = Math.min(retryAt as number, now + this.options.maxOpenMs);
      this.listener?.(this, "open", "open");
      return;
    }
    const policy = (this.policy ??= this.options.policy());
    const trips = policy.failure(
      policy.timed ? this.options.windowClock.now() : now,
      ++this.consecutive,
    );
    if (retryAt !== undefined || trips) this.open(now, retryAt, retryAt === undefined);
    else this.listener?.(this, "closed", "closed");
  }

  protected now(): number {
    return this.options.clock.now();
  }

  /** Lazy time-driven transitions: open → half-open at `retryAt`; expired probes fail. */
  protected refresh(now: number): void {
    if (this.code === OPEN && now >= this.openUntil) {
      this.transition(HALF_OPEN);
    } else if (this.code === HALF_OPEN) {
      const oldest = this.probes[0];
      if (oldest !== undefined && oldest.expiresAt <= now) {
        // The oldest probe counts as failed; the transition discards any others.
        oldest.settled = true;
        this.probes.shift();
        this.failureCount++;
        this.reopens++;
        this.open(now, undefined, true, "probe-timeout");
      }
    }
  }

  protected open(now: number, until: number | undefined, jittered: boolean, cause?: FailureKind) {
    const { openMs, backoff, maxOpenMs, jitter, random } = this.options;
    if (until === undefined) {
      const base = Math.min(openMs * backoff ** this.reopens, maxOpenMs);
      let duration = jittered ? base * (1 + jitter * (2 * random() - 1)) : base;
      // Reflect at the ceiling so clients at maxOpenMs keep their spread instead of piling up.
      if (duration > maxOpenMs) duration = 2 * maxOpenMs - duration;
      until = now + duration;
    }
    this.openUntil = Math.min(until, now + maxOpenMs);
    this.transition(OPEN, cause);
  }

  protected newClosedPermit(): Permit {
    return new Permit(this, this.epoch, false, Infinity);
  }

  protected close(): void {
    const counted = this.consecutive !== 0 || this.reopens !== 0;
    this.reopens = 0;
    this.consecutive = 0;
    this.policy?.reset();
    if (this.code !== CLOSED) this.transition(CLOSED);
    else if (counted) this.listener?.(this, "closed", "closed");
  }

  /** A {@link CircuitOpenError} for a call refused now, admitted again at `retryAt`. */
  protected error(retryAt: number, now: number): CircuitOpenError {
    const state = this.code === HALF_OPEN ? "half-open" : "open";
    return withoutStack(() => new CircuitOpenError(this.key, state, retryAt, now));
  }

  protected transition(to: StateCode, cause?: FailureKind): void {
    const from = this.code;
    this.code = to;
    this.epoch++;
    this.probeSuccesses = 0;
    // Probes still in flight belong to the state being left: their outcomes will not count
    // (each is counted as ignored when its call settles; a call that goes on as a call of the
    // new state is counted there, once).
    for (const probe of this.probes) probe.discarded = true;
    this.probes = NO_PROBES;
    // Permits of the previous closed state must not count in this one.
    this.closedPermit = undefined;
    this.listener?.(
      this,
      STATE_NAMES[from] as CircuitState,
      STATE_NAMES[to] as CircuitState,
      cause,
    );
  }
}
