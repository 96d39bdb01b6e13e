import fc from "fast-check";
import { beforeAll, describe, expect, it, vi } from "vitest";
import {
  type BreakerRecord,
  type BreakerStore,
  CircuitOpenError,
  type CircuitEvent,
  createCbFetch,
  memoryStore,
  mergeRecords,
} from "../src/index.js";
import { isOpen } from "../src/shared/compare.js";
import { recordProblem } from "../src/shared/validate.js";
import { ManualClock } from "./helpers/clock.js";
import { hang, hangUp, rejection, respond, useServer } from "./helpers/server.js";

// Persistence semantics with memoryStore and hand-made faulty stores, against a real server.
const server = useServer();
const url = (path = "/") => server.origin + path;
// The store code is loaded with import(); load it up front so the tests with a short
// loadTimeoutMs time the store, not vitest compiling that module on first use.
beforeAll(() => import("../src/shared/shared-state.js"));

/** A memoryStore that counts its writes and can be inspected. */
function countingStore() {
  const inner = memoryStore();
  const store = {
    saves: 0,
    loads: 0,
    load: (key: string) => {
      store.loads++;
      return inner.load(key);
    },
    save: (record: BreakerRecord) => {
      store.saves++;
      return inner.save(record);
    },
    loadAll: () => inner.loadAll?.() ?? Promise.resolve([]),
  } satisfies BreakerStore & Record<string, unknown>;
  return store;
}

describe("persistence with a store", () => {
  it("a reload during an outage fails fast without a single request", async () => {
    const clock = new ManualClock();
    const store = memoryStore();
    const first = createCbFetch({ store, clock, failureThreshold: 2, jitter: 0 });
    server.handle(respond(503));
    await first(url("/a"));
    await first(url("/b"));
    const retryAt = first.breaker(url()).retryAt;
    await first.close();

    const reloaded = createCbFetch({ store, clock, failureThreshold: 2, jitter: 0 });
    await reloaded.ready;
    expect(reloaded.state(url())).toBe("open");
    const hits = server.hits;
    const error = await rejection(reloaded(url("/c")));
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(error).toMatchObject({ retryAt });
    expect(server.hits).toBe(hits);
  });

  it("keeps a change made before the store's code has loaded", async () => {
    // The store and sync code is loaded with import() when the instance is created; a change
    // made synchronously right after must still be written once it is in.
    const store = countingStore();
    const cb = createCbFetch({ store });
    cb.breaker(url()).forceOpen(60_000);
    await cb.flush();
    expect(store.saves).toBe(1);
    const stored = (await store.load(server.origin)) as BreakerRecord;
    expect(stored).toMatchObject({ key: server.origin });
    expect(isOpen(stored)).toBe(true);
    await cb.close();
  });

  it("the first call waits for its key's state even without loadAll", async () => {
    const clock = new ManualClock();
    const inner = memoryStore();
    const store: BreakerStore = { load: (k) => inner.load(k), save: (r) => inner.save(r) };
    const first = createCbFetch({ store, clock, failureThreshold: 1 });
    server.handle(respond(500));
    await first(url());
    await first.close();
    const reloaded = createCbFetch({ store, clock, failureThreshold: 1 });
    const hits = server.hits;
    expect(await rejection(reloaded(url()))).toBeInstanceOf(CircuitOpenError);
    expect(server.hits).toBe(hits);
  });

  it("restores half-open (fresh probes); failure counts stay with each instance", async () => {
    const clock = new ManualClock();
    const store = memoryStore();
    const options = { store, clock, failureThreshold: 3, openMs: 1000, jitter: 0 };
    const first = createCbFetch(options);
    server.handle(respond(503));
    for (let i = 0; i < 3; i++) await first(url());
    clock.advance(1000);
    server.handle(hang);
    const before = server.hits;
    void rejection(first(url())); // the probe hangs, and the page goes away
    await vi.waitFor(() => expect(server.hits).toBe(before + 1));
    await first.close();
    // Open → half-open follows from retryAt, so the store keeps "open" with a retryAt now past.
    const stored = (await store.load(server.origin)) as BreakerRecord;
    expect(isOpen(stored)).toBe(true);
    expect(stored.retryAt).toBeLessThanOrEqual(clock.t);

    const second = createCbFetch(options);
    await second.ready;
    expect(second.state(url())).toBe("half-open");
    server.handle(respond(503));
    const hits = server.hits;
    await second(url()); // admitted as a probe, not refused: the old probe died with the page
    expect(server.hits).toBe(hits + 1);
    expect(second.breaker(url()).stats.reopenCount).toBe(1);
    await second.close();

    // Failures in the closed state are counted by each instance: nothing is written for them.
    const countStore = countingStore();
    const withCounts = createCbFetch({ ...options, store: countStore });
    await withCounts(url());
    await withCounts(url());
    await withCounts.close();
    expect(countStore.saves).toBe(0);
    const third = createCbFetch({ ...options, store: countStore });
    await third(url());
    expect(third.state(url())).toBe("closed");
  });

  it("writes on transitions only: 0 writes for 10 000 healthy calls", async () => {
    const store = countingStore();
    const cb = createCbFetch({ store, failureThreshold: 2, openMs: 1, jitter: 0 });
    server.handle(respond(200));
    for (let i = 0; i < 10_000; i++) await cb(url(`/items/${i}`));
    await cb.close();
    expect(store.saves).toBe(0);

    const cycle = countingStore();
    const clock = new ManualClock();
    const cb2 = createCbFetch({ store: cycle, clock, failureThreshold: 2, openMs: 100, jitter: 0 });
    server.handle(respond(503));
    await cb2(url());
    await cb2(url()); // closed -> open: one write
    clock.advance(100);
    server.handle(respond(200));
    await cb2(url()); // open -> half-open -> closed: one write
    await cb2.close();
    expect(cycle.saves).toBe(2);
  }, 60_000);

  it("a throwing store degrades to memory with one storeerror; fetches never fail", async () => {
    const broken: BreakerStore = {
      load: () => Promise.reject(new Error("quota")),
      save: () => {
        throw new Error("sync throw");
      },
      loadAll: () => Promise.reject(new Error("blocked")),
    };
    const cb = createCbFetch({ store: broken, failureThreshold: 1 });
    const errors: CircuitEvent[] = [];
    cb.addEventListener("storeerror", (e) => errors.push(e));
    await cb.ready;
    server.handle(respond(500));
    expect((await cb(url())).status).toBe(500);
    expect(cb.state(url())).toBe("open"); // the breaker keeps breaking in memory
    expect(await rejection(cb(url()))).toBeInstanceOf(CircuitOpenError);
    await cb.close();
    expect(errors).toHaveLength(1);
    expect(String(errors[0]?.error)).toContain("blocked");
  });

  it("a hung store delays a key's first call by loadTimeoutMs at most", async () => {
    const hung: BreakerStore = { load: () => new Promise(() => {}), save: async () => {} };
    const cb = createCbFetch({ store: hung, loadTimeoutMs: 50 });
    const errors: CircuitEvent[] = [];
    cb.addEventListener("storeerror", (e) => errors.push(e));
    const started = Date.now();
    expect((await cb(url())).status).toBe(200);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(errors.map((e) => e.key)).toEqual([server.origin]);
    expect((await cb(url())).status).toBe(200); // later calls do not wait again
    expect(errors).toHaveLength(1);
  });

  it("a late stored open is merged, unless a call has succeeded since it began", async () => {
    const clock = new ManualClock();
    const storedOpen = (retryAt: number) => ({
      v: 2,
      key: server.origin,
      opened: clock.t - 1000, // from an earlier page: before this instance started
      retryAt,
      reopens: 0,
      closed: 0,
    });
    const lateStore = () => {
      const saved: BreakerRecord[] = [];
      let deliver: (value: unknown) => void = () => {};
      const store: BreakerStore = {
        load: () => new Promise((resolve) => (deliver = resolve)),
        save: async (record) => void saved.push(record),
      };
      return { store, saved, deliver: (value: unknown) => deliver(value) };
    };

    // The store answers after loadTimeoutMs, and the first call has already succeeded:
    // the origin answered after that open began, so the circuit stays closed and the store
    // is told (its record would otherwise re-open the next page).
    const late = lateStore();
    const cb = createCbFetch({ store: late.store, clock, loadTimeoutMs: 20 });
    expect((await cb(url())).status).toBe(200);
    late.deliver(storedOpen(clock.t + 5000));
    await cb.flush();
    expect(cb.state(url())).toBe("closed");
    expect(late.saved).toHaveLength(1);
    expect(isOpen(late.saved[0] as BreakerRecord)).toBe(false);
    await cb.close();

    // No call has succeeded yet (the first one failed): the stored open is adopted.
    const failing = lateStore();
    const cb2 = createCbFetch({ store: failing.store, clock, loadTimeoutMs: 20 });
    server.handle(hangUp);
    await rejection(cb2(url()));
    failing.deliver(storedOpen(clock.t + 5000));
    await vi.waitFor(() => expect(cb2.state(url())).toBe("open"));
    await cb2.close();
  });

  it("clamps a stored retryAt further ahead than maxOpenMs", async () => {
    const clock = new ManualClock();
    const store = memoryStore();
    await store.save({
      v: 2,
      key: server.origin,
      opened: clock.t - 1,
      retryAt: clock.t + 10 * 365 * 86_400_000,
      reopens: 2,
      closed: 0,
    });
    const cb = createCbFetch({ store, clock, maxOpenMs: 60_000 });
    await cb.ready;
    expect(cb.breaker(url()).retryAt).toBe(clock.t + 60_000);
  });

  it("stores only the origin and numbers", async () => {
    const store = memoryStore();
    const cb = createCbFetch({ store, failureThreshold: 1 });
    server.handle(respond(503));
    await cb(url("/users/42?token=secret#frag"));
    await cb.close();
    const record = await store.load(server.origin);
    expect(Object.keys(record as object).sort()).toEqual(
      ["closed", "key", "opened", "reopens", "retryAt", "v"].sort(),
    );
    expect(JSON.stringify(record)).not.toMatch(/users|token|secret|frag/);
  });
});

describe("records", () => {
  const now = 1_700_000_000_000;
  const valid: BreakerRecord = {
    v: 2,
    key: "https://a.example",
    opened: now - 10,
    retryAt: now + 30_000,
    reopens: 1,
    closed: now - 20,
  };
  const record = fc.record({
    v: fc.constant(2 as const),
    key: fc.constant("k"),
    opened: fc.nat(20),
    retryAt: fc.nat(20),
    reopens: fc.nat(3),
    closed: fc.nat(20),
  });

  it("merge is a join: commutative, associative, idempotent", () => {
    fc.assert(
      fc.property(record, record, record, (a, b, c) => {
        expect(mergeRecords(a, b)).toEqual(mergeRecords(b, a));
        expect(mergeRecords(mergeRecords(a, b), c)).toEqual(mergeRecords(a, mergeRecords(b, c)));
        expect(mergeRecords(a, a)).toEqual(a);
      }),
      { seed: 20261130, numRuns: 2000 },
    );
  });

  it("an open is ended only by a later close; a close only by a later open", () => {
    const open = { ...valid, opened: now, closed: now - 1 };
    expect(isOpen(mergeRecords(open, { ...valid, opened: 0, retryAt: 0, closed: now - 1 }))).toBe(
      true,
    );
    expect(isOpen(mergeRecords(open, { ...open, closed: now + 1 }))).toBe(false);
    expect(isOpen(mergeRecords({ ...open, closed: now + 1 }, { ...open, opened: now + 2 }))).toBe(
      true,
    );
  });

  it("accepts a valid record, rejects poison", () => {
    expect(recordProblem(valid, undefined, now)).toBeUndefined();
    expect(recordProblem({ ...valid, extra: "ignored" }, undefined, now)).toBeUndefined();
    expect(recordProblem({ ...valid, opened: now + 3_600_000 }, undefined, now)).toMatch(/future/);
    expect(recordProblem({ ...valid, closed: Number.MAX_SAFE_INTEGER }, undefined, now)).toMatch(
      /future/,
    );
    expect(recordProblem({ ...valid, reopens: Number.MAX_SAFE_INTEGER }, undefined, now)).toMatch(
      /reopens/,
    );
    expect(recordProblem({ ...valid, v: 1 }, undefined, now)).toMatch(/version 1/);
    expect(recordProblem({ ...valid, opened: Number.NaN }, undefined, now)).toMatch(/times/);
  });
});

describe("the store and sync code", () => {
  it("is imported only by an instance with a store or sync", async () => {
    vi.resetModules();
    let imports = 0;
    vi.doMock("../src/shared/shared-state.js", async (original) => {
      imports++;
      return original();
    });
    try {
      const { createCbFetch: create } = await import("../src/fetch/create.js");
      const plain = create();
      expect((await plain(url())).status).toBe(200);
      plain.breaker(url()).forceOpen();
      await plain.flush();
      await plain.close();
      expect(imports).toBe(0);
      const stored = create({ store: memoryStore() });
      await stored.ready;
      expect(imports).toBe(1);
      await stored.close();
    } finally {
      vi.doUnmock("../src/shared/shared-state.js");
      vi.resetModules();
    }
  });
});

describe("the bulkhead and timeout code", () => {
  it("is imported only by an instance that sets maxConcurrent or timeoutMs, before its first call", async () => {
    vi.resetModules();
    const imports = { bulkhead: 0, timeout: 0 };
    vi.doMock("../src/guards/bulkhead.js", async (original) => {
      imports.bulkhead++;
      return original();
    });
    vi.doMock("../src/guards/timeout.js", async (original) => {
      imports.timeout++;
      return original();
    });
    try {
      const { createCbFetch: create } = await import("../src/fetch/create.js");
      const plain = create();
      expect((await plain(url())).status).toBe(200);
      expect(imports).toEqual({ bulkhead: 0, timeout: 0 });
      // Each is in force from the first call: one in flight, the next refused; a slow answer
      // times out.
      const limited = create({ maxConcurrent: 1, timeoutMs: 50 });
      server.handle((_req, res) => setTimeout(() => respond(200)(_req, res), 200));
      const [first, second] = await Promise.allSettled([limited(url()), limited(url())]);
      expect(imports).toEqual({ bulkhead: 1, timeout: 1 });
      expect(first).toMatchObject({ status: "rejected", reason: { name: "TimeoutError" } });
      expect(second).toMatchObject({ status: "rejected", reason: { name: "BulkheadFullError" } });
    } finally {
      vi.doUnmock("../src/guards/bulkhead.js");
      vi.doUnmock("../src/guards/timeout.js");
      vi.resetModules();
    }
  });
});

describe("when the store and sync code cannot load", () => {
  // Stands in for a lazy chunk that fails to download (a deploy replaced it, the network
  // dropped): vitest makes the import() of that module reject.
  it("reports one storeerror and carries on in memory", async () => {
    vi.resetModules();
    vi.doMock("../src/shared/shared-state.js", () => {
      throw new Error("chunk failed to load");
    });
    try {
      const { createCbFetch: create } = await import("../src/fetch/create.js");
      const cb = create({ store: memoryStore(), failureThreshold: 1 });
      const errors: unknown[] = [];
      cb.addEventListener("storeerror", (event) => errors.push((event as CircuitEvent).error));
      await cb.ready;
      expect(errors).toHaveLength(1);
      server.handle(respond(503));
      expect((await cb(url())).status).toBe(503);
      const hits = server.hits;
      expect(await rejection(cb(url()))).toMatchObject({ name: "CircuitOpenError" });
      expect(server.hits).toBe(hits);
      await cb.flush();
      await cb.close();
    } finally {
      vi.doUnmock("../src/shared/shared-state.js");
      vi.resetModules();
    }
  });
});
