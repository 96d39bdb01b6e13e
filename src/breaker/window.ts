const BUCKETS = 10;

/**
 * Two counts over a sliding time window of 10 buckets with running totals: O(1) per event, no
 * timers, and no arrays until the first event. The failure-rate policy counts calls and
 * failures in one, the retry budget first attempts and retries, the adaptive throttle requests
 * and accepts.
 */
export class Window {
  /** The first count over the window. */
  a = 0;
  /** The second count over the window. */
  b = 0;
  readonly #bucketMs: number;
  #as: Uint32Array | undefined;
  #bs: Uint32Array | undefined;
  #bucket = 0;

  constructor(windowMs: number) {
    this.#bucketMs = windowMs / BUCKETS;
  }

  /** Adds `a` and `b` to the counts at time `now` (ms, from one monotonic timeline). */
  add(now: number, a: number, b: number): void {
    const as = (this.#as ??= new Uint32Array(BUCKETS));
    const bs = (this.#bs ??= new Uint32Array(BUCKETS));
    const bucket = Math.floor(now / this.#bucketMs);
    const steps = bucket - this.#bucket;
    if (steps !== 0) {
      // Moving on clears the buckets passed; a jump back (another timeline: a test's fake
      // timers, a clock set back) or past the whole window starts afresh.
      if (steps < 0 || steps >= BUCKETS) this.reset();
      else {
        for (let i = 0; i < steps; i++) {
          const slot = (bucket - i) % BUCKETS;
          this.a -= as[slot] as number;
          this.b -= bs[slot] as number;
          as[slot] = bs[slot] = 0;
        }
      }
      this.#bucket = bucket;
    }
    const slot = bucket % BUCKETS;
    as[slot] = (as[slot] as number) + a;
    bs[slot] = (bs[slot] as number) + b;
    this.a += a;
    this.b += b;
  }

  /** Forgets every count. */
  reset(): void {
    this.#as?.fill(0);
    this.#bs?.fill(0);
    this.a = this.b = 0;
  }
}
