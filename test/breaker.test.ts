import { describe, expect, it, vi } from "vitest";
import { systemClock } from "../src/breaker/clock.js";
import { CircuitOpenError, type CreateBreakerOptions, createBreaker } from "../src/index.js";
import { ManualClock } from "./helpers/clock.js";

function setup(options: CreateBreakerOptions = {}) {
  const clock = new ManualClock();
  const changes: string[] = [];
  const breaker = createBreaker({
    key: "k",
    jitter: 0,
    clock,
    onStateChange: (to, from) => changes.push(`${from}->${to}`),
    ...options,
  });
  const fail = (n = 1) => {
    for (let i = 0; i < n; i++) breaker.allow()?.failure("error");
  };
  return { clock, breaker, changes, fail };
}

describe("breaker state machine", () => {
  it("opens after failureThreshold consecutive failures, and a success resets the count", () => {
    const { breaker, fail } = setup({ failureThreshold: 3 });
    fail(2);
    breaker.allow()?.success();
    fail(2);
    expect(breaker.state).toBe("closed");
    expect(breaker.stats.consecutiveFailures).toBe(2);
    fail(1);
    expect(breaker.state).toBe("open");
  });

  it("refuses calls while open and half-opens lazily at retryAt, not before", () => {
    const { breaker, clock, fail, changes } = setup({ failureThreshold: 1, openMs: 1000 });
    fail();
    expect(breaker.retryAt).toBe(clock.t + 1000);
    clock.advance(999);
    expect(breaker.allow()).toBeUndefined();
    expect(breaker.stats.rejections).toBe(1);
    clock.advance(1);
    expect(changes).toEqual(["closed->open"]); // nothing happens without a call
    const probe = breaker.allow();
    expect(probe?.probe).toBe(true);
    expect(changes).toEqual(["closed->open", "open->half-open"]);
  });

  it("admits at most halfOpenMaxProbes probes at once and closes after successThreshold", () => {
    const { breaker, clock, fail } = setup({
      failureThreshold: 1,
      openMs: 10,
      halfOpenMaxProbes: 2,
      successThreshold: 3,
    });
    fail();
    clock.advance(10);
    const a = breaker.allow();
    const b = breaker.allow();
    expect(a).toBeDefined();
    expect(b).toBeDefined();
    expect(breaker.allow()).toBeUndefined();
    a?.success();
    b?.success();
    expect(breaker.state).toBe("half-open");
    const c = breaker.allow();
    expect(breaker.stats.probesInFlight).toBe(1);
    c?.success();
    expect(breaker.state).toBe("closed");
  });

  it("re-opens on one probe failure with backoff, capped at maxOpenMs, and resets on close", () => {
    const { breaker, clock, fail } = setup({
      failureThreshold: 1,
      openMs: 1000,
      backoff: 3,
      maxOpenMs: 5000,
    });
    fail();
    const durations: number[] = [];
    for (let i = 0; i < 4; i++) {
      durations.push((breaker.retryAt ?? 0) - clock.t);
      clock.advance(durations[i] ?? 0);
      breaker.allow()?.failure("error");
    }
    expect(durations).toEqual([1000, 3000, 5000, 5000]);
    expect(breaker.stats.reopenCount).toBe(4);
    clock.advance(5000);
    breaker.allow()?.success();
    expect(breaker.state).toBe("closed");
    expect(breaker.stats.reopenCount).toBe(0);
    fail();
    expect((breaker.retryAt ?? 0) - clock.t).toBe(1000);
  });

  it("keeps jittered open durations within ±jitter (reflected below maxOpenMs)", () => {
    const randoms = [0, 0.999999, 0.5];
    for (const r of randoms) {
      const { breaker, clock, fail } = setup({ failureThreshold: 1, jitter: 0.2, random: () => r });
      fail();
      const d = (breaker.retryAt ?? 0) - clock.t;
      expect(d).toBeGreaterThanOrEqual(30_000 * 0.8);
      expect(d).toBeLessThanOrEqual(30_000 * 1.2);
    }
    // At the ceiling the spread is reflected downwards instead of piling up on maxOpenMs.
    const { breaker, clock, fail } = setup({
      failureThreshold: 1,
      openMs: 1000,
      maxOpenMs: 1000,
      jitter: 0.2,
      random: () => 0.999,
    });
    fail();
    const d = (breaker.retryAt ?? 0) - clock.t;
    expect(d).toBeLessThan(1000);
    expect(d).toBeGreaterThanOrEqual(800);
  });

  it("spreads many breakers' retry times (default jitter)", () => {
    const clock = new ManualClock();
    const times = new Set<number>();
    for (let i = 0; i < 50; i++) {
      const b = createBreaker({ clock, failureThreshold: 1 });
      b.allow()?.failure();
      times.add(b.retryAt ?? 0);
    }
    expect(times.size).toBeGreaterThan(40);
  });

  it("counts a probe that never settles as failed after probeTimeoutMs", () => {
    const { breaker, clock, fail } = setup({
      failureThreshold: 1,
      openMs: 100,
      probeTimeoutMs: 500,
    });
    fail();
    clock.advance(100);
    const hung = breaker.allow();
    expect(hung).toBeDefined();
    clock.advance(499);
    expect(breaker.allow()).toBeUndefined();
    clock.advance(1);
    expect(breaker.allow()).toBeUndefined(); // the expiry re-opened it, with backoff
    expect(breaker.state).toBe("open");
    expect(breaker.stats.reopenCount).toBe(1);
    expect((breaker.retryAt ?? 0) - clock.t).toBe(200);
    // The hung call settling late changes nothing.
    hung?.success();
    expect(breaker.state).toBe("open");
    clock.advance(200);
    breaker.allow()?.success();
    expect(breaker.state).toBe("closed");
  });

  it("ignores outcomes of calls that started before a transition (stale permits)", () => {
    const { breaker, clock, fail } = setup({ failureThreshold: 2, openMs: 100 });
    const slow = breaker.allow();
    fail(2);
    expect(breaker.state).toBe("open");
    clock.advance(100);
    const probe = breaker.allow();
    slow?.success(); // started while closed: must not close the half-open circuit
    expect(breaker.state).toBe("half-open");
    expect(breaker.allow()).toBeUndefined();
    probe?.failure("error");
    expect(breaker.state).toBe("open");
  });

  it("release() frees a probe slot without counting", () => {
    const { breaker, clock, fail } = setup({ failureThreshold: 1, openMs: 100 });
    fail();
    clock.advance(100);
    const probe = breaker.allow();
    expect(breaker.allow()).toBeUndefined();
    probe?.release();
    probe?.success(); // settling twice is ignored
    expect(breaker.state).toBe("half-open");
    const next = breaker.allow();
    expect(next).toBeDefined();
    expect(breaker.stats.successes).toBe(0);
  });

  it("opens exactly until a given retryAt (Retry-After), clamped to maxOpenMs, without jitter", () => {
    const { breaker, clock } = setup({ jitter: 0.5, maxOpenMs: 60_000 });
    breaker.allow()?.failure("status", clock.t + 12_345);
    expect(breaker.state).toBe("open");
    expect(breaker.retryAt).toBe(clock.t + 12_345);
    breaker.forceClose();
    breaker.allow()?.failure("status", clock.t + 10 * 60_000);
    expect(breaker.retryAt).toBe(clock.t + 60_000);
  });

  it("forceOpen, forceClose and reset", () => {
    const { breaker, clock, changes } = setup();
    breaker.forceOpen(2000);
    expect(breaker.state).toBe("open");
    expect(breaker.retryAt).toBe(clock.t + 2000);
    breaker.forceOpen(); // default openMs
    expect(breaker.retryAt).toBe(clock.t + 30_000);
    expect(() => breaker.forceOpen(-1)).toThrow(RangeError);
    breaker.allow();
    breaker.forceClose();
    expect(breaker.state).toBe("closed");
    expect(breaker.stats.rejections).toBe(1);
    breaker.reset();
    expect(breaker.stats).toMatchObject({ rejections: 0, successes: 0, failures: 0 });
    expect(changes).toEqual(["closed->open", "open->closed"]);
  });

  it("recordSuccess / recordFailure without permits follow the current state", () => {
    const { breaker, clock } = setup({ failureThreshold: 2, openMs: 100 });
    breaker.recordFailure();
    breaker.recordFailure("timeout");
    expect(breaker.state).toBe("open");
    breaker.recordFailure(); // ignored while open
    expect(breaker.stats.failures).toBe(2);
    clock.advance(100);
    breaker.allow();
    breaker.recordSuccess(); // settles the oldest probe
    expect(breaker.state).toBe("closed");
  });

  it("run() fast-fails with CircuitOpenError without calling fn, and counts throws", async () => {
    const { breaker, clock } = setup({ failureThreshold: 1, openMs: 5000 });
    await expect(breaker.run(() => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    const fn = vi.fn(async () => 1);
    const error = await breaker.run(fn).catch((e: unknown) => e);
    expect(fn).not.toHaveBeenCalled();
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(error).not.toBeInstanceOf(TypeError);
    expect(error).toMatchObject({
      name: "CircuitOpenError",
      key: "k",
      state: "open",
      retryAt: clock.t + 5000,
      retryAfterMs: 5000,
    });
    clock.advance(5000);
    const add = breaker.wrap(async (a: number, b: number) => a + b);
    await expect(add(2, 3)).resolves.toBe(5);
    expect(breaker.state).toBe("closed");
  });

  it("half-open rejections say half-open and when the probe will have decided", async () => {
    const { breaker, clock } = setup({ failureThreshold: 1, openMs: 10, probeTimeoutMs: 700 });
    breaker.recordFailure();
    clock.advance(10);
    breaker.allow();
    const error = await breaker.run(async () => 1).catch((e: CircuitOpenError) => e);
    expect(error).toMatchObject({ state: "half-open", retryAfterMs: 700 });
  });

  it("slowCallMs counts a slow success as a failure", async () => {
    const { breaker, clock } = setup({ failureThreshold: 1, slowCallMs: 100 });
    await breaker.run(async () => clock.advance(100));
    expect(breaker.state).toBe("closed");
    await expect(breaker.run(async () => clock.advance(101))).resolves.toBeUndefined();
    expect(breaker.state).toBe("open");
  });
});

describe("failure-rate policy", () => {
  const failureRate = { threshold: 0.5, windowMs: 10_000, minimumCalls: 4 };

  it("opens when the ratio crosses the threshold once minimumCalls are in the window", () => {
    const { breaker } = setup({ failureRate });
    breaker.allow()?.failure();
    breaker.allow()?.failure();
    breaker.allow()?.failure(); // 3 calls < minimumCalls
    expect(breaker.state).toBe("closed");
    breaker.allow()?.success(); // 3/4 failed, but a success never trips
    breaker.allow()?.failure(); // 4/5 >= 0.5
    expect(breaker.state).toBe("open");
  });

  it("stays closed below the threshold, whatever the streak of failures", () => {
    const { breaker } = setup({ failureRate, failureThreshold: 1 });
    for (let i = 0; i < 10; i++) breaker.allow()?.success();
    for (let i = 0; i < 9; i++) breaker.allow()?.failure();
    expect(breaker.state).toBe("closed"); // 9/19 < 0.5; failureThreshold is ignored
  });

  it("evicts calls older than the window", () => {
    const { breaker, clock } = setup({ failureRate });
    for (let i = 0; i < 3; i++) breaker.allow()?.failure();
    clock.advance(10_000); // those three fall out of the window
    for (let i = 0; i < 3; i++) breaker.allow()?.success();
    breaker.allow()?.failure(); // 1/4 in the window
    expect(breaker.state).toBe("closed");
    clock.advance(5_000);
    breaker.allow()?.failure(); // 2/5
    expect(breaker.state).toBe("closed");
    breaker.allow()?.failure(); // 3/6 >= 0.5
    expect(breaker.state).toBe("open");
  });

  it("keeps counts of recent buckets while older ones expire bucket by bucket", () => {
    const { breaker, clock } = setup({ failureRate: { ...failureRate, minimumCalls: 1 } });
    for (let i = 0; i < 6; i++) {
      breaker.allow()?.success();
      clock.advance(1000);
    }
    // Six successes spread over 6 s, all still in the window: three failures now tie at 3/9.
    for (let i = 0; i < 3; i++) breaker.allow()?.failure();
    expect(breaker.state).toBe("closed");
    clock.advance(5_000); // the first 2 successes expire: 4 successes, 3 failures + 1 = 4/8
    breaker.allow()?.failure();
    expect(breaker.state).toBe("open");
  });

  it("starts a new window after the circuit closes", () => {
    const { breaker, clock } = setup({ failureRate, openMs: 100 });
    for (let i = 0; i < 4; i++) breaker.allow()?.failure();
    expect(breaker.state).toBe("open");
    clock.advance(100);
    breaker.allow()?.success();
    expect(breaker.state).toBe("closed");
    breaker.allow()?.failure();
    expect(breaker.state).toBe("closed");
  });
});

describe("system clock", () => {
  it("is epoch ms from performance.now(), ignores wall-clock jumps back, follows it ahead (sleep)", () => {
    let perfNow = 5_000;
    let wall = performance.timeOrigin + 5_000;
    const perf = vi.spyOn(performance, "now").mockImplementation(() => perfNow);
    const date = vi.spyOn(Date, "now").mockImplementation(() => wall);
    try {
      const clock = systemClock();
      expect(clock.now()).toBe(performance.timeOrigin + 5_000);
      wall -= 3_600_000; // the user sets the clock back an hour
      perfNow += 10;
      wall += 10;
      expect(clock.now()).toBe(performance.timeOrigin + 5_010);
      // The laptop sleeps for an hour: performance.now() does not tick, the wall clock does.
      wall += 3_600_000 + 3_600_000;
      expect(clock.now()).toBe(wall);
      perfNow += 100;
      wall += 100;
      expect(clock.now()).toBe(wall);
      // Any lead of the wall clock is followed at once (a fake Date moved forward, too).
      wall += 500;
      expect(clock.now()).toBe(wall);
      // The wall clock set back again: ignored, durations still come from performance.now().
      wall -= 60_000;
      perfNow += 20;
      expect(clock.now()).toBe(wall + 60_000 + 20);
    } finally {
      perf.mockRestore();
      date.mockRestore();
    }
  });

  it("lets an open circuit half-open on time after the device slept", () => {
    let perfNow = 1_000;
    let wall = performance.timeOrigin + 1_000;
    vi.spyOn(performance, "now").mockImplementation(() => perfNow);
    vi.spyOn(Date, "now").mockImplementation(() => wall);
    try {
      const breaker = createBreaker({ clock: systemClock(), failureThreshold: 1, jitter: 0 });
      breaker.recordFailure();
      expect(breaker.state).toBe("open");
      wall += 31_000; // slept 31 s; performance.now() stood still
      perfNow += 1;
      expect(breaker.state).toBe("half-open");
    } finally {
      vi.restoreAllMocks();
    }
  });
});

describe("the breaker and its caller's code (issue 13)", () => {
  it("a Retry-After longer than the open time left extends it; a shorter one changes nothing", () => {
    const { breaker, clock } = setup({ failureThreshold: 5 });
    const late = breaker.allow();
    const later = breaker.allow();
    breaker.forceOpen(1000);
    expect(late?.failure("status", clock.t + 60_000)).toBe(true);
    expect(breaker.retryAt).toBe(clock.t + 60_000);
    expect(later?.failure("status", clock.t + 5_000)).toBe(false);
    expect(breaker.retryAt).toBe(clock.t + 60_000);
    expect(breaker.stats).toMatchObject({ failures: 1, ignored: 1 });
  });

  it("permits say whether their outcome counted", () => {
    const { breaker } = setup({ failureThreshold: 1 });
    const stale = breaker.allow();
    expect(breaker.allow()?.success()).toBe(true);
    breaker.forceOpen(10);
    expect(stale?.success()).toBe(false);
    expect(stale?.release()).toBe(false);
  });

  it("a throwing onStateChange neither replaces run()'s outcome nor stops fn at half-open", async () => {
    const reported: unknown[] = [];
    vi.stubGlobal("reportError", (error: unknown) => reported.push(error));
    try {
      const listenerError = new Error("listener");
      const { breaker, clock } = setup({
        failureThreshold: 1,
        onStateChange: () => {
          throw listenerError;
        },
      });
      const workError = new Error("work");
      await expect(breaker.run(() => Promise.reject(workError))).rejects.toBe(workError);
      expect(breaker.state).toBe("open");
      clock.advance(30_000);
      const fn = vi.fn(async () => "ok");
      await expect(breaker.run(fn)).resolves.toBe("ok");
      expect(fn).toHaveBeenCalledOnce();
      expect(breaker.state).toBe("closed");
      expect(reported).toEqual([listenerError, listenerError, listenerError]);
    } finally {
      vi.unstubAllGlobals();
    }
  });
});
