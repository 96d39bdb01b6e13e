// A deterministic model of the overload scenario (DESIGN §11, the "overload" row of §6), shared
// by test/overload.test.ts (which asserts the bar on it) and bench/overload.mjs (which runs the
// same scenario against a real server and reports with the same figures and chart).
//
// Discrete time in 1 ms steps, an injected clock and seeded random sources, no sockets: the
// result depends on the seed only, never on the machine's speed.
// - The upstream serves at most `capacity` requests per second: a token bucket (refill
//   `capacity`/s, holding at most `burstMs` of it). A request finding a token is served
//   (`serviceMs` later); any other is answered 503 at once (`rejectMs`), and that rejection
//   costs `rejectCost` of a token (the work of reading and refusing it), so rejections eat into
//   what it can serve. During the outage everything is a 503 and costs nothing (it is down).
// - Callers offer `load` × capacity logical requests per second, Poisson arrivals (the same
//   sequence for every client), through the whole run: overload, outage, recovery.
// - A client is a pair of functions: `send(request, t)` decides whether an attempt goes out now
//   (false: refused locally, and the request ends with its last real outcome), and
//   `settle(request, t, ok)` hears its outcome and returns the wait before the next attempt (ms)
//   or undefined (the request ends). `request.attempt` counts from 0. The clients made by
//   `modelClients` use cbfetch's real breaker (with its real `throttle`) and retry budget on
//   the model's clock and a seeded random source.

/** The scenario; the bench runs the same timeline against a real server. */
export const SCENARIO = Object.freeze({
  capacity: 100,
  load: 2,
  overloadMs: 30_000,
  outageMs: 10_000,
  recoveryMs: 40_000,
  serviceMs: 10,
  rejectMs: 1,
  rejectCost: 0.02,
  burstMs: 100,
  /** Figures and the chart use slices of this length. */
  sliceMs: 1000,
  /** The first part of the overload phase, left out of its steady-state figures. */
  warmupMs: 5000,
});

/** The model clock's epoch at t = 0 (any epoch-like value works). */
const EPOCH = 1_700_000_000_000;
const TICK_MS = 1;

/** A seeded generator in [0, 1) (mulberry32). */
export function seeded(seed) {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A Poisson-distributed count with mean `mean` (Knuth's method: small means only). */
function poisson(mean, random) {
  const limit = Math.exp(-mean);
  let count = 0;
  for (let p = random(); p > limit; p *= random()) count++;
  return count;
}

/** The phase at time t (ms from the start). */
export function phaseAt(t, s = SCENARIO) {
  if (t < s.overloadMs) return "overload";
  return t < s.overloadMs + s.outageMs ? "outage" : "recovery";
}

/** The model upstream: a token bucket of capacity, with rejections that cost a little. */
function upstream(s) {
  // At least one token, or a small capacity would never serve anything.
  const burst = Math.max(1, (s.capacity * s.burstMs) / 1000);
  let tokens = burst;
  return {
    tick() {
      tokens = Math.min(burst, tokens + (s.capacity * TICK_MS) / 1000);
    },
    /** Whether an attempt arriving at t is served. */
    serve(t) {
      if (phaseAt(t, s) === "outage") return false;
      if (tokens >= 1) {
        tokens -= 1;
        return true;
      }
      // Rejecting is work too; the debt is bounded by one burst (it cannot refuse faster).
      tokens = Math.max(-burst, tokens - s.rejectCost);
      return false;
    },
  };
}

/**
 * Runs one client through the scenario. `makeClient({ clock, random, onTransition })` builds
 * it; `onTransition(from, to)` is for its breaker, if any. Returns per-slice counts.
 */
export function simulate(makeClient, { scenario = SCENARIO, seed = 1 } = {}) {
  const s = scenario;
  const end = s.overloadMs + s.outageMs + s.recoveryMs;
  const slices = Array.from({ length: Math.ceil(end / s.sliceMs) }, () => ({
    arrivals: 0,
    attempts: 0,
    served: 0,
    refused: 0,
    succeeded: 0,
    failed: 0,
    transitions: 0,
    trips: 0,
  }));
  const slice = (t) => slices[Math.floor(t / s.sliceMs)];
  let t = 0;
  const clock = { now: () => EPOCH + t };
  const client = makeClient({
    clock,
    random: seeded(seed * 7919 + 1),
    onTransition(from, to) {
      slice(t).transitions++;
      if (from === "closed" && to === "open") slice(t).trips++;
    },
  });
  const arrivals = seeded(seed);
  const server = upstream(s);
  // Events due per tick: a response [request, ok], or a retry [request].
  const due = new Map();
  const at = (time, event) => {
    const tick = Math.ceil(time / TICK_MS);
    const list = due.get(tick);
    if (list === undefined) due.set(tick, [event]);
    else list.push(event);
  };
  const finish = (ok) => slice(t)[ok ? "succeeded" : "failed"]++;
  const attempt = (request) => {
    if (!client.send(request, t)) {
      slice(t).refused++;
      return finish(false);
    }
    slice(t).attempts++;
    const ok = server.serve(t);
    if (ok) slice(t).served++;
    at(t + (ok ? s.serviceMs : s.rejectMs), [request, ok]);
  };
  for (let tick = 0; (t = tick * TICK_MS) < end; tick++) {
    server.tick();
    for (const [request, ok] of due.get(tick) ?? []) {
      if (ok === undefined) {
        attempt(request);
        continue;
      }
      const wait = client.settle(request, t, ok);
      if (ok || wait === undefined) finish(ok);
      else {
        request.attempt++;
        at(t + wait, [request]);
      }
    }
    due.delete(tick);
    const count = poisson((s.load * s.capacity * TICK_MS) / 1000, arrivals);
    for (let i = 0; i < count; i++) {
      slice(t).arrivals++;
      attempt({ attempt: 0 });
    }
  }
  return slices;
}

/**
 * The clients of the model, built on cbfetch's real parts, passed in (`src/` in the test,
 * `dist/` in the bench): `{ createBreaker, RetryBudgets }`.
 */
export function modelClients({ createBreaker, RetryBudgets }) {
  const breakerOf = ({ clock, random, onTransition }, options = {}) =>
    createBreaker({
      ...options,
      clock,
      random,
      onStateChange: (to, from) => onTransition(from, to),
    });
  /**
   * A breaker (cbfetch's default policy unless `breaker` options say otherwise), with
   * cbfetch's `throttle` when `throttle` is set (`true` or its options): the breaker decides
   * every attempt, a refusal touches nothing else. With `retry` (cbfetch's: limit, delayMs,
   * maxDelayMs, budget), a failed attempt is retried after full jitter if the budget allows,
   * and each retry is an ordinary call (the breaker or its throttle may refuse it: the request
   * ends with its last real outcome).
   */
  const client =
    ({ throttle, breaker: breakerOptions, retry } = {}) =>
    (env) => {
      const { clock } = env;
      const breaker = breakerOf(env, { ...breakerOptions, throttle });
      let budget;
      if (retry) {
        const budgets = new RetryBudgets();
        budgets.clock = clock;
        if (retry.budget !== undefined)
          budgets.options = retry.budget && { ...budgets.options, ...retry.budget };
        budget = budgets.for("upstream");
      }
      const { limit = 2, delayMs = 300, maxDelayMs = 10_000 } = retry ?? {};
      return {
        breaker,
        send(request) {
          if (request.attempt === 0) budget?.first();
          return (request.permit = breaker.allow()) !== undefined;
        },
        settle(request, _t, ok) {
          if (ok) {
            request.permit.success();
            return undefined;
          }
          request.permit.failure("status");
          if (!retry || request.attempt >= limit || !budget.take()) return undefined;
          return env.random() * Math.min(maxDelayMs, delayMs * 2 ** request.attempt);
        },
      };
    };
  return {
    /** Every request once, as fetch. */
    raw: () => ({ send: () => true, settle: () => undefined }),
    /** ky's `retry: 2`: 2 retries of a 503, after 300 and 600 ms (ky's default delay, no jitter). */
    kyRetry2: () => ({
      send: () => true,
      settle: (request, _t, ok) =>
        ok || request.attempt >= 2 ? undefined : 300 * 2 ** request.attempt,
    }),
    /** A breaker alone (cbfetch's default policy unless `options` say otherwise). */
    breaker: (options = {}) => client({ breaker: options }),
    /**
     * `createBreaker({ throttle })`, as `createCbFetch({ throttle })` has it: `throttle` is
     * `true` unless given; `breaker`: the breaker's other options; `retry`: see above.
     */
    throttle: ({ throttle = true, ...rest } = {}) => client({ throttle, ...rest }),
  };
}

/**
 * The figures of one client's run (the bench computes them the same way from a real run):
 * - over the overload phase after its warm-up: `attemptsPerServed` (attempts that reached the
 *   upstream per request it served) and `goodput` (served per second, as a share of capacity);
 * - over the whole overload phase: `tripsPerMinute` (closed → open) and `transitions` (any);
 * - after capacity's return: `recoverySeconds`, the start of the first slice served at ≥ 90 %
 *   of capacity, and `heldSeconds`, the start of the slice from which every later one is
 *   (undefined: never in the run);
 * - `goodputBySlice`: served per slice as a share of capacity, for the chart.
 */
export function summarize(slices, s = SCENARIO) {
  const atCapacity = (s.capacity * s.sliceMs) / 1000;
  const sum = (from, to, field) =>
    slices.slice(from / s.sliceMs, to / s.sliceMs).reduce((n, slice) => n + slice[field], 0);
  const seconds = (s.overloadMs - s.warmupMs) / 1000;
  const served = sum(s.warmupMs, s.overloadMs, "served");
  const goodputBySlice = slices.map((slice) => slice.served / atCapacity);
  const back = (s.overloadMs + s.outageMs) / s.sliceMs;
  let recovered;
  let held;
  for (let i = slices.length - 1; i >= back; i--) {
    if (goodputBySlice[i] < 0.9) break;
    held = i;
  }
  for (let i = back; i < slices.length && recovered === undefined; i++) {
    if (goodputBySlice[i] >= 0.9) recovered = i;
  }
  const after = (i) => (i === undefined ? undefined : ((i - back) * s.sliceMs) / 1000);
  return {
    offeredPerSecond: sum(s.warmupMs, s.overloadMs, "arrivals") / seconds,
    attemptsPerServed: sum(s.warmupMs, s.overloadMs, "attempts") / served,
    goodput: served / (s.capacity * seconds),
    tripsPerMinute: sum(0, s.overloadMs, "trips") / (s.overloadMs / 60_000),
    transitions: sum(0, s.overloadMs, "transitions"),
    recoverySeconds: after(recovered),
    heldSeconds: after(held),
    goodputBySlice,
  };
}
