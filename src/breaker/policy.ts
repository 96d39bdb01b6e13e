import type { FailureRateOptions } from "./types.js";

const BUCKETS = 10;

/**
 * Opens when failures / calls over a sliding window reach `threshold`, once the window holds
 * `minimumCalls`. The window is a ring of 10 buckets with running totals: each call is O(1),
 * and moving to a new bucket clears at most 10 slots.
 */
export class FailureRatePolicy {
  readonly #bucketMs: number;
  // Allocated on first use, so an idle breaker costs nothing here.
  #calls: Uint32Array | undefined;
  #fails: Uint32Array | undefined;
  #bucket = -1;
  #totalCalls = 0;
  #totalFails = 0;

  readonly #options: FailureRateOptions;
  constructor(options: FailureRateOptions) {
    this.#options = options;
    this.#bucketMs = options.windowMs / BUCKETS;
  }

  success(now: number): void {
    this.#record(now, 0);
  }

  failure(now: number): boolean {
    this.#record(now, 1);
    return (
      this.#totalCalls >= this.#options.minimumCalls &&
      this.#totalFails >= this.#options.threshold * this.#totalCalls
    );
  }

  reset(): void {
    this.#calls?.fill(0);
    this.#fails?.fill(0);
    this.#totalCalls = 0;
    this.#totalFails = 0;
  }

  #record(now: number, failed: 0 | 1): void {
    if (this.#calls === undefined || this.#fails === undefined) {
      this.#calls = new Uint32Array(BUCKETS);
      this.#fails = new Uint32Array(BUCKETS);
    }
    const bucket = Math.floor(now / this.#bucketMs);
    if (bucket > this.#bucket) {
      // Clear the buckets we moved past: they now belong to the new time span.
      const steps = this.#bucket < 0 ? BUCKETS : Math.min(bucket - this.#bucket, BUCKETS);
      for (let i = 0; i < steps; i++) {
        const slot = (bucket - i) % BUCKETS;
        this.#totalCalls -= this.#calls[slot] ?? 0;
        this.#totalFails -= this.#fails[slot] ?? 0;
        this.#calls[slot] = 0;
        this.#fails[slot] = 0;
      }
      this.#bucket = bucket;
    }
    // A clock is monotonic, so `bucket < this.#bucket` only happens with a restored state, or
    // when a test's fake timers start a new timeline: count it in the current bucket.
    const slot = this.#bucket % BUCKETS;
    this.#calls[slot] = (this.#calls[slot] ?? 0) + 1;
    this.#fails[slot] = (this.#fails[slot] ?? 0) + failed;
    this.#totalCalls++;
    this.#totalFails += failed;
  }
}
