import { afterEach, describe, expect, it, vi } from "vitest";
import { AdaptiveThrottle } from "../src/breaker/throttle.js";
import { seeded } from "../bench/overload-model.mjs";

// Epoch-like times on bucket boundaries: windowMs 1000 means buckets of 100 ms.
const T = 1_700_000_000_000;

/** `n` admitted calls at `now`, `accepted` of them accepted and the rest failed. */
function outcomes(throttle: AdaptiveThrottle, now: number, n: number, accepted: number) {
  for (let i = 0; i < n; i++) {
    expect(throttle.admit(now, () => 0.999999)).toBe(true);
    if (i < accepted) throttle.accept(now);
    else throttle.fail(now);
  }
}

describe("AdaptiveThrottle: the SRE formula", () => {
  it("is max(0, (requests − k·accepts) / (requests + 1)) at known counts", () => {
    const throttle = new AdaptiveThrottle({ k: 2, windowMs: 1000, minRequests: 0 });
    expect(throttle.probability(T)).toBe(0);
    outcomes(throttle, T, 10, 3);
    expect(throttle.requests(T)).toBe(10);
    expect(throttle.accepts(T)).toBe(3);
    expect(throttle.probability(T)).toBeCloseTo((10 - 2 * 3) / 11, 12);
    outcomes(throttle, T, 10, 7); // 20 requests, 10 accepts: exactly k · accepts
    expect(throttle.probability(T)).toBe(0);
    const k15 = new AdaptiveThrottle({ k: 1.5, minRequests: 0 });
    outcomes(k15, T, 20, 10);
    expect(k15.probability(T)).toBeCloseTo((20 - 15) / 21, 12);
  });

  it("counts a refused call as a request at once, an admitted one only with its outcome", () => {
    const throttle = new AdaptiveThrottle({ minRequests: 0 });
    outcomes(throttle, T, 4, 0); // p = 4/5
    expect(throttle.admit(T, () => 0)).toBe(false);
    expect(throttle.requests(T)).toBe(5);
    expect(throttle.admit(T, () => 0.9)).toBe(true); // p = 5/6 now: a draw of 0.9 admits
    expect(throttle.requests(T)).toBe(5); // in flight: no evidence yet
    throttle.accept(T);
    expect([throttle.requests(T), throttle.accepts(T)]).toEqual([6, 1]);
  });

  it("admits a burst of parallel calls to a new key (nothing has come back yet)", () => {
    const throttle = new AdaptiveThrottle();
    for (let i = 0; i < 100; i++) expect(throttle.admit(T, () => 0)).toBe(true);
  });

  it("admits everything below minRequests, whatever the outcomes", () => {
    const throttle = new AdaptiveThrottle({ minRequests: 10 });
    outcomes(throttle, T, 9, 0);
    expect(throttle.probability(T)).toBe(0);
    outcomes(throttle, T, 1, 0);
    expect(throttle.probability(T)).toBeCloseTo(10 / 11, 12);
  });

  it("does not draw a random number while the probability is 0", () => {
    const throttle = new AdaptiveThrottle({ minRequests: 0 });
    const random = vi.fn(() => 0);
    outcomes(throttle, T, 10, 10);
    expect(throttle.admit(T, random)).toBe(true);
    expect(random).not.toHaveBeenCalled();
  });

  it("refuses with the probability it states, over a seeded random source", () => {
    const throttle = new AdaptiveThrottle({ windowMs: 1000, minRequests: 0 });
    outcomes(throttle, T, 1000, 250); // p = 500/1001 before any refusal
    const random = seeded(42);
    let refused = 0;
    // Each refusal raises `requests`, so p climbs a little: 2000 calls move it from 0.4995 to
    // (3000 − 500) / 3001 = 0.833 at most. Refusals land between those bounds.
    for (let i = 0; i < 2000; i++) if (!throttle.admit(T, random)) refused++;
    expect(refused).toBeGreaterThan(0.4995 * 2000);
    expect(refused).toBeLessThan(0.834 * 2000);
    // The same seed, the same decisions.
    const again = new AdaptiveThrottle({ windowMs: 1000, minRequests: 0 });
    outcomes(again, T, 1000, 250);
    const replay = seeded(42);
    let refusedAgain = 0;
    for (let i = 0; i < 2000; i++) if (!again.admit(T, replay)) refusedAgain++;
    expect(refusedAgain).toBe(refused);
  });
});

describe("AdaptiveThrottle: the window", () => {
  it("slides bucket by bucket and forgets everything after windowMs", () => {
    const throttle = new AdaptiveThrottle({ windowMs: 1000, minRequests: 0 });
    for (let b = 0; b < 10; b++) outcomes(throttle, T + b * 100, 10, b < 5 ? 0 : 10);
    expect([throttle.requests(T + 999), throttle.accepts(T + 999)]).toEqual([100, 50]);
    // One bucket later the oldest bucket (10 failures) is gone.
    expect([throttle.requests(T + 1000), throttle.accepts(T + 1000)]).toEqual([90, 50]);
    expect(throttle.probability(T + 1000)).toBe(0);
    // Half a window later, only accepts remain.
    expect([throttle.requests(T + 1499), throttle.accepts(T + 1499)]).toEqual([50, 50]);
    // A window after the last bucket, nothing.
    expect([throttle.requests(T + 1900), throttle.accepts(T + 1900)]).toEqual([0, 0]);
  });

  it("clears at most the whole ring after a long silence", () => {
    const throttle = new AdaptiveThrottle({ windowMs: 1000, minRequests: 0 });
    outcomes(throttle, T, 50, 0);
    expect(throttle.requests(T + 86_400_000)).toBe(0);
    outcomes(throttle, T + 86_400_000, 3, 1);
    expect(throttle.probability(T + 86_400_000)).toBeCloseTo(1 / 4, 12);
  });

  it("counts in the current bucket when time goes back (a new timeline)", () => {
    const throttle = new AdaptiveThrottle({ windowMs: 1000, minRequests: 0 });
    outcomes(throttle, T, 5, 5);
    outcomes(throttle, T - 60_000, 5, 0);
    expect([throttle.requests(T), throttle.accepts(T)]).toEqual([10, 5]);
  });

  it("reset() forgets every count", () => {
    const throttle = new AdaptiveThrottle({ minRequests: 0 });
    outcomes(throttle, T, 10, 0);
    throttle.reset();
    expect([throttle.requests(T), throttle.accepts(T), throttle.probability(T)]).toEqual([0, 0, 0]);
  });
});

describe("AdaptiveThrottle: O(1), no growth", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("makes its two 10-slot arrays on first use, and nothing more over 200 000 calls", () => {
    const made: number[] = [];
    const Native = Uint32Array;
    vi.stubGlobal(
      "Uint32Array",
      class extends Native {
        constructor(length: number) {
          super(length);
          made.push(length);
        }
      },
    );
    const throttle = new AdaptiveThrottle({ windowMs: 1000, minRequests: 0 });
    throttle.probability(T);
    expect(made).toEqual([]); // an idle throttle costs no arrays
    const random = seeded(7);
    let now = T;
    for (let i = 0; i < 200_000; i++) {
      now += 3; // 600 s: 600 windows
      if (throttle.admit(now, random)) {
        if (random() < 0.4) throttle.accept(now);
        else throttle.fail(now);
      }
    }
    expect(made).toEqual([10, 10]);
    // The counts are those of the last window only: at most 1000 / 3 calls fit in it.
    expect(throttle.requests(now)).toBeLessThanOrEqual(334);
  });
});

describe("AdaptiveThrottle: options", () => {
  it("has the documented defaults", () => {
    const throttle = new AdaptiveThrottle();
    expect([throttle.k, throttle.windowMs, throttle.minRequests]).toEqual([2, 1000, 10]);
  });

  it("refuses options out of range with a RangeError naming them", () => {
    expect(() => new AdaptiveThrottle({ k: 0.5 })).toThrow(/throttle\.k.*0\.5/);
    expect(() => new AdaptiveThrottle({ k: NaN })).toThrow(RangeError);
    expect(() => new AdaptiveThrottle({ windowMs: 0 })).toThrow(/throttle\.windowMs/);
    expect(() => new AdaptiveThrottle({ windowMs: Infinity })).toThrow(RangeError);
    expect(() => new AdaptiveThrottle({ minRequests: 1.5 })).toThrow(/throttle\.minRequests/);
    expect(() => new AdaptiveThrottle({ minRequests: -1 })).toThrow(RangeError);
  });
});
