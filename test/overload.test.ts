import { describe, expect, it } from "vitest";
import {
  type MakeClient,
  modelClients,
  SCENARIO,
  type Scenario,
  simulate,
  type Summary,
  summarize,
} from "../bench/overload-model.mjs";
import { createBreaker } from "../src/index.js";
import { RetryBudgets } from "../src/retry/budget.js";

// DESIGN §6, "overload" (§11), on the deterministic model of bench/overload-model.mjs: an
// upstream serving at most C = 100 requests/s (503 to the rest, each 503 costing it 2 % of a
// served request), offered 2 × C by Poisson callers for 30 s, then a 10 s outage, then 40 s with
// capacity back. Model time, seeded randomness: no sockets, no dependence on machine speed.
// The clients are cbfetch's real breaker with its real `throttle` (createBreaker({ throttle })).
const clients = modelClients({ createBreaker, RetryBudgets });
const K = 2;
const SEEDS = [1, 2, 3];

const throttle = clients.throttle();
const throttleRetry = clients.throttle({ retry: { limit: 2 } });

function run(make: MakeClient, seed: number, scenario: Scenario = SCENARIO): Summary {
  return summarize(simulate(make, { scenario, seed }), scenario);
}

/** DESIGN §6's overload bar at 2 × capacity. */
function expectOverloadBar(figures: Summary) {
  expect(figures.offeredPerSecond).toBeGreaterThan(1.9 * SCENARIO.capacity);
  expect(figures.attemptsPerServed).toBeLessThanOrEqual(K + 0.1);
  expect(figures.goodput).toBeGreaterThanOrEqual(0.95);
  expect(figures.transitions).toBe(0);
}

describe("overload model: the throttle meets DESIGN §6's bar", () => {
  it.each(SEEDS)(
    "at 2 × capacity: attempts ≤ (k + 0.1) × served, goodput ≥ 95 %, no flapping (seed %i)",
    (seed) => {
      expectOverloadBar(run(throttle, seed));
      expectOverloadBar(run(throttleRetry, seed));
    },
  );

  it.each(SEEDS)(
    "after the outage: back to ≥ 90 % goodput and held there, where the default breaker never is (seed %i)",
    (seed) => {
      // The default breaker flaps at 2 × C: it never holds 90 % (before the outage or after).
      expect(run(clients.breaker(), seed).recoverySeconds).toBeUndefined();
      for (const make of [throttle, throttleRetry]) {
        const { recoverySeconds, heldSeconds } = run(make, seed);
        expect(recoverySeconds).toBeDefined();
        // …and it stays there: every later second at ≥ 90 %.
        expect(heldSeconds).toBe(recoverySeconds);
        // Bounded by the breaker's open time (30 s, jittered ±20 %) and a window or two.
        expect(recoverySeconds!).toBeLessThanOrEqual(40);
      }
    },
  );

  it("holds with the failure-rate policy too (the breaker opens only on a dead upstream)", () => {
    const rate = clients.throttle({
      breaker: { failureRate: { threshold: 0.3, windowMs: 10_000, minimumCalls: 20 } },
    });
    expectOverloadBar(run(rate, 1));
  });
});

describe("overload model: at 4 × capacity", () => {
  // At 2 × C anything that does not retry asks only twice what is served; at 4 × C the throttle
  // is what keeps the upstream near k attempts per request served.
  const heavy: Scenario = { ...SCENARIO, load: 4 };

  it.each(SEEDS)(
    "the throttle still meets the bar, and is back after the outage (seed %i)",
    (seed) => {
      for (const make of [throttle, throttleRetry]) {
        const figures = run(make, seed, heavy);
        expect(figures.attemptsPerServed).toBeLessThanOrEqual(K + 0.1);
        expect(figures.goodput).toBeGreaterThanOrEqual(0.95);
        expect(figures.transitions).toBe(0);
        expect(figures.heldSeconds).toBeDefined();
      }
    },
  );

  it("raw fetch asks 4 × what is served; ky's retry: 2 keeps the upstream saturated: never back to 90 %", () => {
    expect(run(clients.raw, 1, heavy).attemptsPerServed).toBeGreaterThan(3.9);
    const ky = run(clients.kyRetry2, 1, heavy);
    expect(ky.attemptsPerServed).toBeGreaterThan(12);
    expect(ky.recoverySeconds).toBeUndefined();
  });
});

describe("overload model: the others, measured beside it", () => {
  it("raw fetch and ky's retry: 2 keep the upstream at 2 and over 5 attempts per request served", () => {
    const raw = run(clients.raw, 1);
    const ky = run(clients.kyRetry2, 1);
    expect(raw.attemptsPerServed).toBeGreaterThan(1.95);
    expect(ky.attemptsPerServed).toBeGreaterThan(5);
    // Each 503 costs the upstream work: the retries' 503s cost ky's callers 6 % of capacity.
    expect(ky.goodput).toBeLessThan(raw.goodput - 0.05);
  });

  it("the default breaker flaps at 2 × capacity and serves under 10 % of it", () => {
    for (const seed of SEEDS) {
      const plain = run(clients.breaker(), seed);
      expect(plain.tripsPerMinute).toBeGreaterThan(0);
      expect(plain.goodput).toBeLessThan(0.1);
    }
  });

  it("the breaker beside the throttle still opens on the outage (a dead origin)", () => {
    for (const seed of SEEDS) {
      const slices = simulate(throttle, { seed });
      const outage = slices.slice(
        SCENARIO.overloadMs / 1000,
        (SCENARIO.overloadMs + SCENARIO.outageMs) / 1000,
      );
      expect(outage.reduce((n, slice) => n + slice.trips, 0)).toBe(1);
    }
  });

  it("a throttle alone (a breaker that never opens) is back within seconds of the outage", () => {
    for (const seed of SEEDS) {
      const alone = run(clients.throttle({ breaker: { failureThreshold: 1e9 } }), seed);
      expect(alone.recoverySeconds).toBeLessThanOrEqual(8);
    }
  });
});

describe("overload model: why the goodput bar needs cheap rejections", () => {
  // The throttle settles where the upstream gets k attempts per request served, so it rejects
  // (k − 1) for each one it serves: served = C / (1 + (k − 1) × rejectCost). At k = 2 the 95 %
  // bar holds only while a 503 costs the upstream at most 1/0.95 − 1 ≈ 5.3 % of a served request.
  it.each([0.05, 0.1, 0.2])(
    "at rejectCost %f goodput is 1 / (1 + (k − 1) × rejectCost)",
    (cost) => {
      const figures = run(throttle, 1, { ...SCENARIO, rejectCost: cost });
      expect(figures.goodput).toBeCloseTo(1 / (1 + (K - 1) * cost), 1);
    },
  );
});

describe("overload model: deterministic", () => {
  it("the same seed gives the same run; another seed, another run", () => {
    const a = simulate(throttle, { seed: 5 });
    expect(simulate(throttle, { seed: 5 })).toEqual(a);
    expect(simulate(throttle, { seed: 6 })).not.toEqual(a);
  });
});
