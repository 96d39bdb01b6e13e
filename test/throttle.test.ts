import { afterEach, describe, expect, it, vi } from "vitest";
import { seeded } from "../bench/overload-model.mjs";
import { ConsecutivePolicy } from "../src/breaker/consecutive.js";
import { ThrottlePolicy } from "../src/breaker/throttle.js";
import {
  CircuitOpenError,
  createBreaker,
  createCbFetch,
  isRefusal,
  ThrottledError,
  type CircuitEvent,
} from "../src/index.js";
import { ManualClock } from "./helpers/clock.js";
import { type Handler, respond, useServer } from "./helpers/server.js";

// DESIGN §11: the adaptive throttle, a policy (src/breaker/throttle.ts) on its own, in a
// breaker of its own (createBreaker), and in a fetch instance against a real server.

// Epoch-like times on bucket boundaries: windowMs 1000 means buckets of 100 ms.

const T = 1_700_000_000_000;
const NEVER = () => 0.999999; // a draw that admits whatever the probability below 1
const ALWAYS = () => 0; // a draw that refuses whenever the probability is above 0
/** A clock standing at `t`. */
const at = (t: number) => ({ now: () => t });

function policy(options: { k?: number; windowMs?: number; minRequests?: number } = {}) {
  const { k = 2, windowMs = 1000, minRequests = 0 } = options;
  return new ThrottlePolicy({ k, windowMs, minRequests }, new ConsecutivePolicy(5));
}

/** `n` admitted calls at `now`, `accepted` of them accepted and the rest failed. */
function outcomes(throttle: ThrottlePolicy, now: number, n: number, accepted: number) {
  for (let i = 0; i < n; i++) {
    expect(throttle.admit(at(now), NEVER)).toBe(true);
    if (i < accepted) throttle.success(now);
    else throttle.failure(now, 1);
  }
}

describe("ThrottlePolicy: the SRE formula", () => {
  it("is max(0, (requests − k·accepts) / (requests + 1)) at known counts", () => {
    const throttle = policy();
    expect(throttle.probability(T)).toBe(0);
    outcomes(throttle, T, 10, 3);
    expect(throttle.probability(T)).toBeCloseTo((10 - 2 * 3) / 11, 12);
    outcomes(throttle, T, 10, 7); // 20 requests, 10 accepts: exactly k · accepts
    expect(throttle.probability(T)).toBe(0);
    const k15 = policy({ k: 1.5 });
    outcomes(k15, T, 20, 10);
    expect(k15.probability(T)).toBeCloseTo((20 - 15) / 21, 12);
  });

  it("counts a refused call as a request at once, an admitted one only with its outcome", () => {
    const throttle = policy();
    outcomes(throttle, T, 4, 0); // p = 4/5
    expect(throttle.admit(at(T), ALWAYS)).toBe(false);
    expect(throttle.probability(T)).toBeCloseTo(5 / 6, 12); // 5 requests now
    expect(throttle.admit(at(T), () => 0.9)).toBe(true); // p = 5/6: a draw of 0.9 admits
    expect(throttle.probability(T)).toBeCloseTo(5 / 6, 12); // in flight: no evidence yet
    throttle.success(T);
    expect(throttle.probability(T)).toBeCloseTo((6 - 2) / 7, 12);
  });

  it("admits a burst of parallel calls to a new key (nothing has come back yet)", () => {
    const throttle = policy({ minRequests: 10 });
    for (let i = 0; i < 100; i++) expect(throttle.admit(at(T), ALWAYS)).toBe(true);
  });

  it("admits everything below minRequests, whatever the outcomes", () => {
    const throttle = policy({ minRequests: 10 });
    outcomes(throttle, T, 9, 0);
    expect(throttle.probability(T)).toBe(0);
    outcomes(throttle, T, 1, 0);
    expect(throttle.probability(T)).toBeCloseTo(10 / 11, 12);
  });

  it("reads no clock while its window holds accepts only (a healthy key)", () => {
    const throttle = policy();
    outcomes(throttle, T, 20, 20);
    const clock = { now: vi.fn(() => T + 5000) };
    expect(throttle.admit(clock, ALWAYS)).toBe(true);
    expect(clock.now).not.toHaveBeenCalled();
    // One failure in the window, and the clock is read (the window slides to it).
    throttle.failure(T, 1);
    expect(throttle.admit(clock, ALWAYS)).toBe(true);
    expect(clock.now).toHaveBeenCalledTimes(1);
  });

  it("does not draw a random number while the probability is 0", () => {
    const throttle = policy();
    const random = vi.fn(ALWAYS);
    outcomes(throttle, T, 10, 10);
    expect(throttle.admit(at(T), random)).toBe(true);
    expect(random).not.toHaveBeenCalled();
  });

  it("refuses with the probability it states, over a seeded random source", () => {
    const refusals = (seed: number) => {
      const throttle = policy();
      outcomes(throttle, T, 1000, 250); // p = 500/1001 before any refusal
      const random = seeded(seed);
      let refused = 0;
      for (let i = 0; i < 2000; i++) if (!throttle.admit(at(T), random)) refused++;
      return refused;
    };
    // Each refusal raises `requests`, so p climbs a little: 2000 calls move it from 0.4995 to
    // (3000 − 500) / 3001 = 0.833 at most. Refusals land between those bounds.
    const refused = refusals(42);
    expect(refused).toBeGreaterThan(0.4995 * 2000);
    expect(refused).toBeLessThan(0.834 * 2000);
    expect(refusals(42)).toBe(refused); // the same seed, the same decisions
  });
});

describe("ThrottlePolicy: the window", () => {
  it("slides bucket by bucket and forgets everything after windowMs", () => {
    const throttle = policy({ k: 1 });
    // 5 buckets of failures, then 5 of successes, 10 calls each.
    for (let b = 0; b < 10; b++) outcomes(throttle, T + b * 100, 10, b < 5 ? 0 : 10);
    expect(throttle.probability(T + 999)).toBeCloseTo((100 - 50) / 101, 12);
    // One bucket later the oldest bucket (10 failures) is gone.
    expect(throttle.probability(T + 1000)).toBeCloseTo((90 - 50) / 91, 12);
    // Half a window later, only accepts remain.
    expect(throttle.probability(T + 1499)).toBe(0);
    outcomes(throttle, T + 1499, 1, 0);
    expect(throttle.probability(T + 1499)).toBeCloseTo((51 - 50) / 52, 12);
    // A window after the last accept, only the failures since: 2 of them.
    outcomes(throttle, T + 1900, 1, 0);
    expect(throttle.probability(T + 1999)).toBeCloseTo(2 / 3, 12);
    // A window after those, a failure alone: p = 1/2.
    outcomes(throttle, T + 2900, 1, 0);
    expect(throttle.probability(T + 2900)).toBeCloseTo(1 / 2, 12);
  });

  it("reset() (the circuit closed) forgets every count", () => {
    const throttle = policy();
    outcomes(throttle, T, 10, 0);
    throttle.reset();
    expect(throttle.probability(T)).toBe(0);
  });
});

describe("ThrottlePolicy: when the breaker trips", () => {
  it("as the policy it wraps says, but only on a whole window without an accepted outcome", () => {
    const throttle = policy();
    throttle.success(T);
    // Overloaded: an accept in the window, so 5 (and 50) consecutive failures do not trip.
    expect(throttle.failure(T + 100, 5)).toBe(false);
    expect(throttle.failure(T + 900, 50)).toBe(false);
    // Dead: the accept has left the window (1 s later), and the next failure trips.
    expect(throttle.failure(T + 1000, 51)).toBe(true);
    // Below the wrapped policy's threshold (and minRequests) it never trips.
    const few = policy({ minRequests: 10 });
    few.failure(T, 1);
    expect(few.failure(T + 1000, 4)).toBe(false);
    expect(few.failure(T + 1000, 5)).toBe(true);
  });

  it("does not trust an empty window: a newcomer counts a whole window first", () => {
    const fresh = policy({ minRequests: 10 });
    for (let i = 1; i <= 20; i++) expect(fresh.failure(T + 10 * i, i)).toBe(false);
    expect(fresh.failure(T + 1010, 21)).toBe(true); // counting since T + 10
    // The same after reset() (the circuit closed on a good probe).
    fresh.reset();
    expect(fresh.failure(T + 5000, 30)).toBe(false);
    expect(fresh.failure(T + 6000, 31)).toBe(true);
  });

  it("trips on minRequests requests without an accept where a windowed policy sees too few", () => {
    const never = { timed: true, success() {}, failure: () => false, reset() {} };
    const throttle = new ThrottlePolicy({ k: 2, windowMs: 1000, minRequests: 10 }, never);
    expect(throttle.failure(T, 1)).toBe(false);
    for (let i = 2; i <= 11; i++) expect(throttle.failure(T + 900, i)).toBe(false); // < 1 s
    // A whole window of counting; in it, 10 requests (T's bucket has left), then a refused one.
    expect(throttle.admit(at(T + 1000), ALWAYS)).toBe(false);
    expect(throttle.failure(T + 1000, 12)).toBe(true); // 12 requests, none accepted
    // Consecutive failures decide alone: their count already sees every failure let through.
    const consecutive = policy({ minRequests: 10 });
    consecutive.failure(T, 1);
    for (let i = 2; i <= 4; i++) expect(consecutive.failure(T + 1000, i)).toBe(false);
  });

  afterEach(() => vi.unstubAllGlobals());

  it("makes its window's two 10-slot arrays on first use, and nothing more over 200 000 calls", () => {
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
    const throttle = policy();
    const random = seeded(7);
    let now = T;
    for (let i = 0; i < 200_000; i++) {
      now += 3; // 600 s: 600 windows
      if (throttle.admit(at(now), random)) {
        if (random() < 0.4) throttle.success(now);
        else throttle.failure(now, 1);
      }
    }
    expect(made).toEqual([10, 10]);
  });
});

describe("createBreaker({ throttle }): a dead upstream opens", () => {
  /**
   * A fresh breaker on a manual clock, called `perSecond` times a second for `seconds`; each
   * admitted call is served with probability `served` (its own seeded draw). Returns the time
   * (ms from the start) the circuit first opened, or undefined.
   */
  function firstOpen(
    options: object,
    perSecond: number,
    served: number,
    seconds: number,
    seed = 1,
  ) {
    const clock = new ManualClock(T);
    const breaker = createBreaker({ key: "api", clock, random: seeded(seed), ...options });
    const upstream = seeded(seed + 1000);
    for (let i = 0; i < perSecond * seconds; i++) {
      clock.t = T + Math.floor((i * 1000) / perSecond);
      const permit = breaker.allow();
      if (breaker.state !== "closed") return clock.t - T;
      if (permit === undefined) continue;
      if (upstream() < served) permit.success();
      else permit.failure("status");
      if (breaker.state !== "closed") return clock.t - T;
    }
    return undefined;
  }

  it("a dead upstream opens within a window or two, also when a failure rate decides", () => {
    const rate = { failureRate: { threshold: 0.5, minimumCalls: 30, windowMs: 10_000 } };
    for (const options of [{}, rate]) {
      for (const perSecond of [5, 20, 200]) {
        const opened = firstOpen({ throttle: true, ...options }, perSecond, 0, 60);
        expect(opened, `${JSON.stringify(options)} at ${perSecond}/s`).toBeDefined();
        // Within the failure-rate window, or a few of the throttle's (it admits about one
        // call a window to a dead upstream, and only an outcome can open the circuit).
        expect(opened!).toBeLessThanOrEqual(options === rate ? 10_000 : 3000);
      }
    }
  });
});

describe("createBreaker({ throttle })", () => {
  /** A breaker on a manual clock and a seeded random source; `upstream` says which call is served. */
  function setup(throttle: true | object = true, options: object = {}) {
    const clock = new ManualClock(T);
    const breaker = createBreaker({ key: "api", clock, random: seeded(1), throttle, ...options });
    /** `n` calls at the current time, every `every`-th served (0: none). */
    const drive = (n: number, every: number) => {
      let refused = 0;
      for (let i = 0; i < n; i++) {
        const permit = breaker.allow();
        if (permit === undefined) {
          refused++;
          continue;
        }
        if (every > 0 && i % every === 0) permit.success();
        else permit.failure("status");
      }
      return refused;
    };
    return { breaker, clock, drive };
  }

  it("refuses calls to an overloaded upstream with a ThrottledError, and stays closed", async () => {
    const { breaker, drive } = setup();
    const refused = drive(300, 3); // a third of the calls served
    expect(refused).toBeGreaterThan(0);
    expect(breaker.state).toBe("closed");
    const stats = breaker.stats;
    // A refusal is neither a success nor a failure; it is counted as a rejection.
    expect(stats.successes + stats.failures).toBe(300 - refused);
    expect(stats.rejections).toBe(refused);
    expect(stats.throttleProbability).toBeGreaterThan(0);
    expect(stats.throttleProbability).toBeLessThan(1);

    // run() refuses without calling the work, with the throttle's error.
    let error: unknown;
    const work = vi.fn(async () => "done");
    for (let i = 0; i < 100 && error === undefined; i++) {
      await breaker.run(work).catch((e: unknown) => (error = e));
    }
    expect(error).toBeInstanceOf(ThrottledError);
    const throttled = error as ThrottledError;
    expect(throttled.name).toBe("ThrottledError");
    expect(throttled).not.toBeInstanceOf(TypeError);
    expect(isRefusal(throttled)).toBe(true);
    expect(throttled.key).toBe("api");
    expect(throttled.probability).toBeCloseTo(breaker.stats.throttleProbability!, 1);
    expect(throttled.retryAfterMs).toBe(1000); // the window
    expect(throttled.message).toMatch(/^Calls to api are throttled \(\d+ % refused\)/);
  });

  it("still opens on a dead upstream, and probes it in half-open unthrottled", () => {
    const { breaker, clock, drive } = setup();
    drive(20, 3); // overloaded for a while: closed
    expect(breaker.state).toBe("closed");
    clock.advance(1000); // the accepts leave the window
    drive(10, 0); // nothing served: the 5th failure in a row opens it
    expect(breaker.state).toBe("open");
    expect(() => {
      throw breaker.openError();
    }).toThrow(CircuitOpenError);
    clock.advance(60_000);
    // The throttle's window still holds the failures; a probe goes anyway.
    const probe = breaker.allow();
    expect(probe?.probe).toBe(true);
    probe!.success();
    expect(breaker.state).toBe("closed");
    expect(breaker.stats.throttleProbability).toBe(0); // closing forgot the counts
  });

  it("is off with false or by default: no stats field, nothing refused", () => {
    for (const throttle of [false, undefined]) {
      const breaker = createBreaker({ throttle, random: ALWAYS });
      for (let i = 0; i < 4; i++) breaker.allow()!.failure("status");
      expect(breaker.allow()).toBeDefined();
      expect("throttleProbability" in breaker.stats).toBe(false);
    }
  });

  it("refuses bad options with an error naming them", () => {
    expect(() => createBreaker({ throttle: { k: 0.5 } })).toThrow(/"throttle\.k" must be.*0\.5/);
    expect(() => createBreaker({ throttle: { windowMs: 0 } })).toThrow(RangeError);
    expect(() => createBreaker({ throttle: { minRequests: 1.5 } })).toThrow(
      /"throttle\.minRequests"/,
    );
    expect(() => createBreaker({ throttle: { kk: 2 } as object })).toThrow(
      /unknown option "kk" in throttle/,
    );
    for (const bad of ["yes", 0, "", null, 1]) {
      expect(() => createBreaker({ throttle: bad as unknown as true })).toThrow(
        /"throttle" must be true, false or an object/,
      );
    }
  });
});

describe("createCbFetch({ throttle }) against a real server", () => {
  const server = useServer();

  /** Serves every `every`-th request, answers 503 to the others. */
  function serveEvery(every: number): Handler {
    let n = 0;
    return (req, res) => respond(n++ % every === 0 ? 200 : 503)(req, res);
  }

  /** An instance on a manual clock (the window never slides under a slow machine). */
  function instance(options: object = {}) {
    const clock = new ManualClock(T);
    const cb = createCbFetch({ throttle: true, clock, random: seeded(3), ...options });
    const rejects: CircuitEvent[] = [];
    cb.addEventListener("reject", (event) => rejects.push(event as CircuitEvent));
    return { cb, clock, rejects };
  }

  it("a throttled call rejects with ThrottledError, touches no network, and is an event", async () => {
    server.handle(serveEvery(3));
    const { cb, rejects } = instance();
    const before = server.hits;
    let answered = 0;
    const throttled: ThrottledError[] = [];
    for (let i = 0; i < 100; i++) {
      try {
        await cb(server.url("/x"));
        answered++;
      } catch (error) {
        expect(error).toBeInstanceOf(ThrottledError);
        throttled.push(error as ThrottledError);
      }
    }
    expect(throttled.length).toBeGreaterThan(10);
    expect(server.hits - before).toBe(answered); // every throttled call stayed here
    expect(rejects.map((e) => e.error)).toEqual(throttled);
    expect(rejects.every((e) => e.state === "closed" && e.key === server.origin)).toBe(true);
    const stats = cb.breaker(server.url())!.stats;
    expect(stats.state).toBe("closed"); // overloaded, not dead: the breaker stays closed
    expect(stats.rejections).toBe(throttled.length);
    expect(stats.throttleProbability).toBeGreaterThan(0);
  });

  it("retry never retries a throttled call: the loop ends with the last real answer", async () => {
    server.handle(respond(503));
    // Every draw 0.5: refused once p > 0.5. A breaker that never opens, so only the throttle
    // refuses; no budget, no wait between attempts.
    const { cb } = instance({
      random: () => 0.5,
      failureThreshold: 1000,
      retry: { limit: 2, delayMs: 0, budget: false },
    });
    const hitsOf = async (run: () => Promise<unknown>) => {
      const before = server.hits;
      const outcome = await run().catch((error: unknown) => error);
      return { outcome, hits: server.hits - before };
    };
    // Below minRequests (10) nothing is refused: three calls of three attempts each.
    for (let i = 0; i < 3; i++) {
      const { outcome, hits } = await hitsOf(() => cb(server.url("/x")));
      expect([(outcome as Response).status, hits]).toEqual([503, 3]);
    }
    // The 10th attempt's 503 makes p = 10/11: its retry is refused, and the call ends with
    // that 503 (not the ThrottledError, not a retry).
    const fourth = await hitsOf(() => cb(server.url("/x")));
    expect((fourth.outcome as Response).status).toBe(503);
    expect(await (fourth.outcome as Response).text()).toBe("status 503");
    expect(fourth.hits).toBe(1);
    // The next call is refused on its first attempt: there is no real answer to end with.
    const fifth = await hitsOf(() => cb(server.url("/x")));
    expect(fifth.outcome).toBeInstanceOf(ThrottledError);
    expect(fifth.hits).toBe(0);
  });

  it("the fallback answers a throttled call", async () => {
    server.handle(serveEvery(3));
    const seen: unknown[] = [];
    const { cb } = instance({
      fallback: (_request: Request, error: unknown) => {
        seen.push(error);
        return new Response("cached", { status: 200 });
      },
    });
    const bodies: string[] = [];
    for (let i = 0; i < 60; i++) bodies.push(await (await cb(server.url("/x"))).text());
    expect(bodies).toContain("cached");
    expect(seen.length).toBe(bodies.filter((b) => b === "cached").length);
    expect(seen.every((e) => e instanceof ThrottledError)).toBe(true);
  });

  it("a dead upstream still opens the circuit (CircuitOpenError, no throttling in between)", async () => {
    server.handle(respond(503));
    const { cb, clock } = instance();
    const errors: string[] = [];
    // Four calls a second: the fifth failure comes a whole window after the first.
    for (let i = 0; i < 8; i++, clock.advance(250)) {
      await cb(server.url("/x")).then(
        () => errors.push("answered"),
        (error: Error) => errors.push(error.name),
      );
    }
    expect(errors).toEqual([...Array(5).fill("answered"), ...Array(3).fill("CircuitOpenError")]);
  });
});
