/**
 * Adaptive client-side throttling ("Handling Overload", Google SRE book; gRPC's adaptive
 * throttler and Envoy's admission control do the same): per key, over the last `windowMs`,
 * `requests` counts the calls asked (the ones refused here included) and `accepts` the outcomes
 * that were not failures. A call is refused locally with probability
 * `max(0, (requests − k · accepts) / (requests + 1))`, so the upstream keeps getting about `k`
 * attempts per request it serves, whatever the offered load: enough to notice at once when it
 * has room again, never the whole flood.
 *
 * An admitted call counts as a request when its outcome is known, not when it is asked: a call
 * in flight is no evidence yet. Counted when asked, every call to a healthy origin slower than
 * a fraction of the window would raise `requests` without `accepts` (measured in the overload
 * model: 376 of 3501 calls refused at 50 calls/s with 3 s responses, none this way), and so
 * would a burst of parallel calls to a new key (20 at once: 9 refused).
 *
 * Pure: no I/O, no timers; time and randomness come from the caller.
 */

/** Options of {@link AdaptiveThrottle}. */
export interface ThrottleOptions {
  /**
   * Attempts per accepted outcome the upstream may get before calls are refused: 2 lets it see
   * up to twice what it serves. Lower sheds more and sooner, but comes back slower after an
   * outage (1.5: 8–13 s instead of 5–12 s in the overload model); 1 refuses as soon as anything
   * fails.
   * @default 2
   */
  k?: number;
  /**
   * The history the counts cover, in milliseconds (kept as 10 buckets). It sets how fast the
   * throttle follows the upstream: after an outage, calls come back within about
   * `windowMs / k × ln(k × calls per window)` (overload model at 200 calls/s: 2–7 s with 1 s,
   * 5–12 s with 2 s, 18–27 s with 5 s; a 30 s window barely engages in a 10 s outage).
   * @default 1000
   */
  windowMs?: number;
  /**
   * Outcomes the window must hold before any call is refused, so a key called a few times a
   * second is left to the breaker (2 failures among 3 calls would otherwise refuse the next with
   * probability 1/4).
   * @default 10
   */
  minRequests?: number;
}

const BUCKETS = 10;

/**
 * One key's adaptive throttle: {@link AdaptiveThrottle.admit} before a call, then
 * {@link AdaptiveThrottle.accept} or {@link AdaptiveThrottle.fail} with its outcome (neither
 * for a call whose outcome does not count, such as one its caller aborted). The window is a ring
 * of 10 buckets with running totals, like the failure-rate window: each call is O(1), and moving
 * to a new bucket clears at most 10 slots. Its arrays are made on first use.
 */
export class AdaptiveThrottle {
  /** Attempts per accepted outcome allowed. */
  readonly k: number;
  /** The window's length in milliseconds. */
  readonly windowMs: number;
  /** Requests the window must hold before any call is refused. */
  readonly minRequests: number;
  readonly #bucketMs: number;
  #requests: Uint32Array | undefined;
  #accepts: Uint32Array | undefined;
  #bucket = -1;
  #totalRequests = 0;
  #totalAccepts = 0;

  /** @throws RangeError naming the option when `k`, `windowMs` or `minRequests` is out of range. */
  constructor({ k = 2, windowMs = 1000, minRequests = 10 }: ThrottleOptions = {}) {
    if (!(k >= 1 && k < Infinity)) bad("k", "a number >= 1", k);
    if (!(windowMs > 0 && windowMs < Infinity)) bad("windowMs", "a number > 0", windowMs);
    if (!(Number.isInteger(minRequests) && minRequests >= 0))
      bad("minRequests", "an integer >= 0", minRequests);
    this.k = k;
    this.windowMs = windowMs;
    this.minRequests = minRequests;
    this.#bucketMs = windowMs / BUCKETS;
  }

  /** Requests counted in the window ending at `now` (epoch ms). */
  requests(now: number): number {
    this.#advance(now);
    return this.#totalRequests;
  }

  /** Accepted outcomes counted in the window ending at `now` (epoch ms). */
  accepts(now: number): number {
    this.#advance(now);
    return this.#totalAccepts;
  }

  /**
   * The probability that a call asked at `now` (epoch ms) is refused: 0 while the window holds
   * fewer than `minRequests` requests, otherwise `max(0, (requests − k · accepts) / (requests + 1))`.
   */
  probability(now: number): number {
    this.#advance(now);
    const requests = this.#totalRequests;
    if (requests < this.minRequests) return 0;
    const excess = requests - this.k * this.#totalAccepts;
    return excess > 0 ? excess / (requests + 1) : 0;
  }

  /**
   * Asks to make a call at `now` (epoch ms). Returns `false` (refuse it locally; counted as a
   * request now) with {@link AdaptiveThrottle.probability}, decided by one draw of `random`
   * (a number in [0, 1)), which is not called while the probability is 0. Returns `true` (make
   * the call; it counts once its outcome is recorded) otherwise.
   */
  admit(now: number, random: () => number): boolean {
    const p = this.probability(now);
    if (p === 0 || random() >= p) return true;
    this.#count(0);
    return false;
  }

  /** Records at `now` (epoch ms) the outcome of an admitted call that was not a failure. */
  accept(now: number): void {
    this.#advance(now);
    this.#count(1);
  }

  /** Records at `now` (epoch ms) the outcome of an admitted call that was a failure. */
  fail(now: number): void {
    this.#advance(now);
    this.#count(0);
  }

  /** Forgets every count. */
  reset(): void {
    this.#requests?.fill(0);
    this.#accepts?.fill(0);
    this.#totalRequests = this.#totalAccepts = 0;
  }

  /** Counts a request (and an accept) in the current bucket; the window is already at `now`. */
  #count(accepted: 0 | 1): void {
    if (this.#requests === undefined || this.#accepts === undefined) {
      this.#requests = new Uint32Array(BUCKETS);
      this.#accepts = new Uint32Array(BUCKETS);
    }
    const slot = this.#bucket % BUCKETS;
    this.#requests[slot]!++;
    this.#accepts[slot]! += accepted;
    this.#totalRequests++;
    this.#totalAccepts += accepted;
  }

  /** Moves the window to `now`: clears the buckets it moved past (at most all 10). */
  #advance(now: number): void {
    const bucket = Math.floor(now / this.#bucketMs);
    // A clock is monotonic, so a bucket before the current one only comes with a new timeline
    // (a test's fake timers): those calls count in the current bucket.
    if (bucket <= this.#bucket) return;
    const requests = this.#requests;
    const accepts = this.#accepts;
    if (requests !== undefined && accepts !== undefined) {
      const steps = Math.min(bucket - this.#bucket, BUCKETS);
      for (let i = 0; i < steps; i++) {
        const slot = (bucket - i) % BUCKETS;
        this.#totalRequests -= requests[slot]!;
        this.#totalAccepts -= accepts[slot]!;
        requests[slot] = accepts[slot] = 0;
      }
    }
    this.#bucket = bucket;
  }
}

function bad(name: string, expected: string, value: number): never {
  throw new RangeError(`cbfetch: option "throttle.${name}" must be ${expected}, got ${value}`);
}
