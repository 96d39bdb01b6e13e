// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  type CbFetch,
  CircuitOpenError,
  createBreaker,
  createCbFetch,
  memoryStore,
} from "../src/index.js";

// Issue 17, DESIGN §10: an app's own tests under vitest + happy-dom. Each instance's clock is its
// own; vitest's fake timers move it exactly, also for an instance created when its module loads
// (like this one, before any test installs fake timers); time does not leak between tests;
// store and sync do not make a fake-timer test hang; close() and sync names isolate instances.
const URL_A = "https://api.example.test/items";
const OPEN_MS = 1000;
const failing = vi.fn(async () => new Response("down", { status: 503 }));
const app = createCbFetch({ fetch: failing, failureThreshold: 1, openMs: OPEN_MS, jitter: 0 });

let opened: CbFetch[] = [];
/** An instance of the test's own, closed after it. */
function instance(options: Parameters<typeof createCbFetch>[0]): CbFetch {
  const cb = createCbFetch(options);
  opened.push(cb);
  return cb;
}

afterEach(async () => {
  vi.useRealTimers();
  app.breaker(URL_A).reset();
  await Promise.all(opened.map((cb) => cb.close()));
  opened = [];
});

/** Trips `cb` (one failure), then checks it opens for exactly OPEN_MS of fake time. */
async function expectExactOpen(cb: CbFetch, advance: (ms: number) => void) {
  await cb(URL_A);
  expect(cb.state(URL_A)).toBe("open");
  advance(OPEN_MS - 1);
  expect(cb.state(URL_A)).toBe("open");
  const refused: unknown = await cb(URL_A).catch((error: unknown) => error);
  expect(refused).toBeInstanceOf(CircuitOpenError);
  expect((refused as CircuitOpenError).retryAfterMs).toBe(1);
  advance(1);
  expect(cb.state(URL_A)).toBe("half-open");
}

describe("fake timers move an instance's clock exactly (DESIGN §10)", () => {
  it("vi.useFakeTimers() defaults fake Date and performance", () => {
    vi.useFakeTimers();
    const fakes = performance;
    vi.useRealTimers();
    expect(fakes).not.toBe(performance); // so the clock sees a new timeline
  });

  it("moves the instance created at module load, before the fake timers", async () => {
    vi.useFakeTimers();
    await expectExactOpen(app, (ms) => vi.advanceTimersByTime(ms));
  });

  it("leaks no time into the next test: this one advances an hour…", async () => {
    vi.useFakeTimers();
    vi.advanceTimersByTime(3_600_000);
    await expectExactOpen(app, (ms) => vi.advanceTimersByTime(ms));
  });

  it("…and the module's instance is back on real time, then exact again under new fakes", async () => {
    const before = Date.now();
    await app(URL_A);
    const { retryAt } = app.breaker(URL_A);
    expect(retryAt).toBeGreaterThanOrEqual(before + OPEN_MS);
    expect(retryAt).toBeLessThan(Date.now() + OPEN_MS + 50); // not an hour ahead
    app.breaker(URL_A).reset();
    vi.useFakeTimers();
    await expectExactOpen(app, (ms) => vi.advanceTimersByTime(ms));
  });

  it("moves an instance created under fake timers, and a plain createBreaker()", async () => {
    vi.useFakeTimers();
    await expectExactOpen(
      instance({ fetch: failing, failureThreshold: 1, openMs: OPEN_MS, jitter: 0 }),
      (ms) => vi.advanceTimersByTime(ms),
    );
    const breaker = createBreaker({ failureThreshold: 1, openMs: OPEN_MS, jitter: 0 });
    breaker.recordFailure();
    vi.advanceTimersByTime(OPEN_MS - 1);
    expect(breaker.state).toBe("open");
    vi.advanceTimersByTime(1);
    expect(breaker.state).toBe("half-open");
  });

  it("with toFake lists that keep setImmediate real (for fake-indexeddb)", async () => {
    vi.useFakeTimers({
      toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date", "performance"],
    });
    await expectExactOpen(app, (ms) => vi.advanceTimersByTime(ms));
  });

  it("follows a fake Date alone within the real time that passes (performance not faked)", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    await app(URL_A);
    vi.advanceTimersByTime(OPEN_MS - 1);
    expect(app.state(URL_A)).toBe("open");
    vi.advanceTimersByTime(50); // the real performance.now() ticked a little since the trip
    expect(app.state(URL_A)).toBe("half-open");
  });

  it("follows vi.setSystemTime() forward at once (Date moves, performance does not)", async () => {
    vi.useFakeTimers();
    await app(URL_A);
    vi.setSystemTime(Date.now() + OPEN_MS - 1);
    expect(app.state(URL_A)).toBe("open");
    vi.setSystemTime(Date.now() + 1);
    expect(app.state(URL_A)).toBe("half-open");
  });

  it("never goes back inside one timeline: vi.setSystemTime() into the past is ignored", async () => {
    vi.useFakeTimers();
    await app(URL_A);
    const { retryAt } = app.breaker(URL_A);
    vi.setSystemTime(Date.now() - 3_600_000); // like a user setting the clock back an hour
    const refused = (await app(URL_A).catch((error: unknown) => error)) as CircuitOpenError;
    expect(refused.retryAfterMs).toBe(OPEN_MS); // not an hour more
    expect(refused.retryAt).toBe(retryAt);
    vi.advanceTimersByTime(OPEN_MS); // durations still come from performance.now()
    expect(app.state(URL_A)).toBe("half-open");
  });
});

describe("store and sync under fake timers: the first call never hangs", () => {
  let channel = 0;
  const name = () => `testing-${++channel}`;
  const ok = vi.fn(async () => new Response("ok"));

  it("with memoryStore(): the waits end when the store answers", { timeout: 3000 }, async () => {
    vi.useFakeTimers();
    const cb = instance({ fetch: ok, store: memoryStore() });
    await cb.ready;
    expect((await cb(URL_A)).status).toBe(200);
  });

  it("with sync and syncWaitMs: 0, no timer is waited on", { timeout: 3000 }, async () => {
    vi.useFakeTimers();
    const cb = instance({ fetch: ok, store: memoryStore(), sync: name(), syncWaitMs: 0 });
    await cb.ready;
    expect((await cb(URL_A)).status).toBe(200);
  });

  it("with sync's default join wait, the first call goes once fake time passes 50 ms", async () => {
    vi.useFakeTimers();
    const cb = instance({ fetch: ok, sync: name() });
    let done = false;
    const first = cb(URL_A).then((response) => {
      done = true;
      return response;
    });
    await vi.advanceTimersByTimeAsync(49);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect((await first).status).toBe(200);
  });

  it(
    "an instance made just before the fake timers (its code still loading) waits in real time",
    { timeout: 3000 },
    async () => {
      // Like an app's module-level instance: its sync code arrives after the test faked timers.
      const cb = instance({ fetch: ok, store: memoryStore(), sync: name() });
      vi.useFakeTimers();
      expect((await cb(URL_A)).status).toBe(200);
      await cb.ready;
    },
  );

  it(
    "an instance made ready before the fake timers needs nothing more",
    { timeout: 3000 },
    async () => {
      const cb = instance({ fetch: ok, sync: name() });
      await cb.ready;
      vi.useFakeTimers();
      expect((await cb(URL_A)).status).toBe(200);
    },
  );
});

describe("isolation between tests' instances", () => {
  const settle = () => new Promise((resolve) => setTimeout(resolve, 30));

  it("instances of one sync name share state; of another name, not", async () => {
    const options = { fetch: failing, failureThreshold: 1, syncWaitMs: 0 };
    const a = instance({ ...options, sync: "isolation" });
    const b = instance({ ...options, sync: "isolation" });
    const other = instance({ ...options, sync: "isolation-other" });
    await Promise.all([a.ready, b.ready, other.ready]);
    await a(URL_A);
    await settle();
    expect(b.state(URL_A)).toBe("open");
    expect(other.state(URL_A)).toBe("closed");
  });

  it("a closed instance neither sends nor hears", async () => {
    const options = { fetch: failing, failureThreshold: 1, syncWaitMs: 0, sync: "isolation" };
    const a = instance(options);
    const b = instance(options);
    await Promise.all([a.ready, b.ready]);
    await a.close();
    await b(URL_A); // b trips: a, closed, does not hear it
    await a(URL_A); // a trips on its own: b does not hear it
    await settle();
    b.breaker(URL_A).reset();
    await settle();
    expect(a.state(URL_A)).toBe("open");
    expect(b.state(URL_A)).toBe("closed");
    // A new instance of the name (the next test's) starts from nothing a closed one did.
    const next = instance(options);
    await next.ready;
    await settle();
    expect(next.state(URL_A)).toBe("closed");
  });
});

describe("idbStore() where there is no IndexedDB (happy-dom)", () => {
  it("warns once per store in a test or development run, and not in production", async () => {
    const { idbStore } = await import("../src/idb/index.js");
    expect(typeof indexedDB).toBe("undefined");
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    try {
      const errors: unknown[] = [];
      const cb = instance({ store: idbStore(), fetch: vi.fn(async () => new Response("ok")) });
      cb.addEventListener("storeerror", (event) => errors.push(event.error));
      await cb.ready;
      await cb(URL_A);
      await cb("https://other.example.test/");
      expect(errors.length).toBeGreaterThan(0); // the storeerror is still there
      expect(warn).toHaveBeenCalledOnce();
      expect(String(warn.mock.calls[0]?.[0])).toMatch(/memoryStore\(\).*fake-indexeddb\/auto/s);

      vi.stubEnv("NODE_ENV", "production");
      const quiet = instance({ store: idbStore(), fetch: vi.fn(async () => new Response("ok")) });
      await quiet.ready;
      await quiet(URL_A);
      expect(warn).toHaveBeenCalledOnce();
    } finally {
      vi.unstubAllEnvs();
      warn.mockRestore();
    }
  });
});
