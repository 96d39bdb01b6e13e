import { describe, expect, it } from "vitest";
import {
  type CbFetch,
  type CbFetchOptions,
  type CircuitEvent,
  type Clock,
  createCbFetch,
} from "../src/index.js";
import { ManualClock } from "./helpers/clock.js";

// Error rate and latency in `stats`, with an injected clock: the stub fetch moves the clock by
// the duration its next answer is set to take, so every figure is exact.
const ORIGIN = "https://api.example.com";

/** A clock that counts how often it is read. */
class CountingClock extends ManualClock implements Clock {
  reads = 0;
  override now(): number {
    this.reads++;
    return super.now();
  }
}

function setup(options: CbFetchOptions = {}) {
  const clock = new CountingClock();
  const next = { status: 200, ms: 0, error: false };
  const cb = createCbFetch({
    clock,
    jitter: 0,
    fetch: async () => {
      clock.advance(next.ms);
      if (next.error) throw new TypeError("fetch failed");
      return new Response(null, { status: next.status });
    },
    ...options,
  });
  /** One call that answers `status` (or a network error) after `ms`. */
  const call = async (status: number | "error", ms: number) => {
    Object.assign(next, {
      status: status === "error" ? 200 : status,
      error: status === "error",
      ms,
    });
    return cb(`${ORIGIN}/items?id=1`).catch((error: unknown) => error);
  };
  return { cb, clock, call, stats: () => cb.breaker(ORIGIN).stats };
}

/** The instance's internal switch that `cbfetch/otel` uses; resolves once the code is in. */
const timeCalls = (cb: CbFetch) => cb._timeCalls().ready;

describe("stats: error rate and latency", () => {
  it("a plain instance reads no clock per call and its stats carry none of them", async () => {
    const { clock, call, stats } = setup();
    await call(200, 5);
    const before = clock.reads;
    for (let i = 0; i < 100; i++) await call(200, 5);
    expect(clock.reads).toBe(before);
    expect(stats()).not.toHaveProperty("errorRate");
    expect(stats()).not.toHaveProperty("meanLatencyMs");
    expect(stats()).not.toHaveProperty("lastLatencyMs");
  });

  it("with slowCallMs: mean and last latency, and the error rate, exactly", async () => {
    const { cb, call, stats } = setup({ slowCallMs: 1000, failureThreshold: 10 });
    await timeCalls(cb); // the on-demand code slowCallMs loads
    await cb("https://elsewhere.example/"); // another origin answers: network errors count
    await call(200, 10);
    await call(503, 30);
    await call("error", 50);
    await call(200, 2000); // slow: a failure, and its duration counts
    expect(stats()).toMatchObject({
      successes: 1,
      failures: 3,
      errorRate: 3 / 4,
      meanLatencyMs: (10 + 30 + 50 + 2000) / 4,
      lastLatencyMs: 2000,
    });
  });

  it("success and failure events carry durationMs where calls are timed", async () => {
    const { cb, call } = setup({ slowCallMs: 1000 });
    const seen: Array<[string, number | undefined]> = [];
    const record = (event: CircuitEvent) => seen.push([event.type, event.durationMs]);
    cb.addEventListener("success", record);
    cb.addEventListener("failure", record);
    await call(200, 7);
    await call(500, 9);
    expect(seen).toEqual([
      ["success", 7],
      ["failure", 9],
    ]);
  });

  it("instrumenting (the switch cbfetch/otel uses) starts timing a plain instance", async () => {
    const { cb, clock, call, stats } = setup();
    await call(200, 5); // before: not timed
    await timeCalls(cb);
    const before = clock.reads;
    await call(200, 20);
    await call(200, 40);
    expect(clock.reads).toBe(before + 4); // one read at the start and one at the end of each
    expect(stats()).toMatchObject({ meanLatencyMs: 30, lastLatencyMs: 40, errorRate: 0 });
  });

  it("the error rate and mean start again when the circuit closes; reset() clears them", async () => {
    const { cb, clock, call, stats } = setup({ failureThreshold: 2, openMs: 1000 });
    await timeCalls(cb);
    await call(200, 10);
    await call(503, 20);
    await call(503, 30); // trips
    expect(stats()).toMatchObject({ state: "open", errorRate: 2 / 3, meanLatencyMs: 20 });
    clock.advance(1000);
    await call(200, 100); // the probe closes it: a new episode, counted from this call
    expect(stats()).toMatchObject({ state: "closed", errorRate: 0, meanLatencyMs: 100 });
    await call(500, 50);
    expect(stats()).toMatchObject({ errorRate: 1 / 2, meanLatencyMs: 75, lastLatencyMs: 50 });
    cb.breaker(ORIGIN).reset(); // closed already: no transition, still cleared
    expect(stats()).toMatchObject({ errorRate: undefined, meanLatencyMs: undefined });
    expect(stats().lastLatencyMs).toBeUndefined();
    await call(200, 8);
    expect(stats()).toMatchObject({ errorRate: 0, meanLatencyMs: 8, lastLatencyMs: 8 });
    expect(cb.snapshot()[0]).toMatchObject({ key: ORIGIN, errorRate: 0, meanLatencyMs: 8 });
  });
});
