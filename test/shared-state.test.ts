// @vitest-environment happy-dom
// DESIGN §3 on real parts: instances sharing an idbStore (fake-indexeddb under happy-dom) or
// a memoryStore, a real server on 127.0.0.1, stores that hang or fail. The reports of the
// shared-state issue, each as a test.
import "fake-indexeddb/auto";
import { createStore, values } from "idb-keyval";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { idbStore } from "../src/idb/index.js";
import {
  type BreakerRecord,
  type BreakerStore,
  CircuitOpenError,
  type CircuitEvent,
  createCbFetch,
  memoryStore,
} from "../src/index.js";
import { BREAKER_NUMBERS, readGroup, resolveBreakerOptions } from "../src/breaker/options.js";
import { Registry } from "../src/keys/registry.js";
import { Pipeline } from "../src/shared/pipeline.js";
import { isOpen } from "../src/shared/compare.js";
import { Replica } from "../src/shared/replica.js";
import { ManualClock } from "./helpers/clock.js";
import { rejection, respond, useServer } from "./helpers/server.js";

const server = useServer();
const url = (path = "/") => server.origin + path;
let databases = 0;
const freshDb = () => `cbfetch-shared-${++databases}`;
beforeAll(() => import("../src/shared/shared-state.js"));

describe("two tabs, one store, no sync", () => {
  it("one tab's flaky traffic cannot erase another tab's open; a reload fails fast", async () => {
    const dbName = freshDb();
    const options = { failureThreshold: 2, jitter: 0, openMs: 60_000 };
    const a = createCbFetch({ store: idbStore({ dbName }), ...options });
    const b = createCbFetch({ store: idbStore({ dbName }), ...options });
    server.handle(respond(200));
    await b(url()); // b has loaded the key (nothing stored yet)
    // Tab a: a failure, a success, ten times over (healthy, if flaky).
    for (let i = 0; i < 10; i++) {
      server.handle(respond(503));
      await a(url());
      server.handle(respond(200));
      await a(url());
    }
    await a.flush();
    // Tab b trips.
    server.handle(respond(503));
    await b(url());
    await b(url());
    expect(b.state(url())).toBe("open");
    await b.close();
    await a.close();
    // b reloads during the outage: nothing reaches the origin.
    const reloaded = createCbFetch({ store: idbStore({ dbName }), ...options });
    const hits = server.hits;
    expect(await rejection(reloaded(url()))).toBeInstanceOf(CircuitOpenError);
    expect(server.hits).toBe(hits);
    await reloaded.close();
  });
});

describe("storage stays bounded", () => {
  // 10 000 attacker-chosen keys (here: one key per path, through keyOf, so one real server
  // can fail for all of them), each tripped once, against maxBreakers: 50.
  const KEYS = 10_000;
  const maxBreakers = 50;
  const keyOf = (request: Request) => new URL(request.url).pathname;

  it.each([
    ["memoryStore", () => memoryStore(), (store: BreakerStore) => store.loadAll?.()],
    [
      "idbStore (fake-indexeddb)",
      () => idbStore({ dbName: "cbfetch-bounded" }),
      () => values(createStore("cbfetch-bounded", "breakers")),
    ],
  ] as const)(
    "%s holds about maxBreakers records after 10 000 failing keys",
    async (_name, makeStore, readAll) => {
      const store = makeStore();
      const cb = createCbFetch({ store, keyOf, maxBreakers, failureThreshold: 1 });
      server.handle(respond(503));
      for (let i = 0; i < KEYS; i++) {
        await cb(url(`/attacker-${i}`));
        if (i % 500 === 0) await cb.flush();
      }
      await cb.close();
      const records = (await readAll(store)) ?? [];
      expect(records.length).toBeLessThanOrEqual(maxBreakers + Math.ceil(maxBreakers / 8) + 1);
      // The newest keys are the ones kept.
      expect(records.map((r) => (r as BreakerRecord).key)).toContain(`/attacker-${KEYS - 1}`);
      // A new page reads a bounded set.
      const next = createCbFetch({ store, keyOf, maxBreakers });
      await next.ready;
      expect(next.snapshot().length).toBeLessThanOrEqual(maxBreakers);
      await next.close();
    },
    120_000,
  );

  it("deletes closed records once idle (after maxOpenMs)", async () => {
    const store = memoryStore();
    const cb = createCbFetch({ store, failureThreshold: 1, openMs: 50, maxOpenMs: 50, jitter: 0 });
    server.handle(respond(503));
    await cb(url());
    await new Promise((r) => setTimeout(r, 60));
    server.handle(respond(200));
    await cb(url()); // the probe closes it
    await cb.close();
    expect(await store.loadAll?.()).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 60));
    const next = createCbFetch({ store, maxOpenMs: 50, openMs: 50 });
    await next.ready; // loading prunes what is idle
    await vi.waitFor(async () => expect(await store.loadAll?.()).toHaveLength(0));
    await next.close();
  });
});

describe("writes never wedge", () => {
  /** A store whose first save never settles and whose others work; it counts saves. */
  function firstSaveHangs() {
    const inner = memoryStore();
    let saves = 0;
    const store: BreakerStore = {
      load: (key) => inner.load(key),
      save: (record) => (saves++ === 0 ? new Promise(() => {}) : inner.save(record)),
      loadAll: () => inner.loadAll?.() ?? Promise.resolve([]),
    };
    return { store, inner, saves: () => saves };
  }

  it("a hung save does not hold back later writes", async () => {
    const { store, inner } = firstSaveHangs();
    const cb = createCbFetch({ store, failureThreshold: 1, keyOf: (r) => new URL(r.url).pathname });
    server.handle(respond(503));
    await cb(url("/first")); // its write hangs
    await cb(url("/second"));
    await vi.waitFor(async () => {
      const second = (await inner.load("/second")) as BreakerRecord | undefined;
      expect(second !== undefined && isOpen(second)).toBe(true);
    });
    await cb.close(); // bounded, even with a write hanging
  });

  it("a hung save times out, is reported once and retried with backoff", async () => {
    const { store, inner, saves } = firstSaveHangs();
    const errors: unknown[] = [];
    const options = resolveBreakerOptions(
      readGroup("test", { failureThreshold: 1 }, BREAKER_NUMBERS),
    );
    const registry = new Registry(
      { breaker: options, maxBreakers: 10, preload: true },
      (breaker, from, to) => {
        const entry = registry.peek(breaker.key);
        if (entry && replica.changed(entry, from, to)) pipeline.schedule(entry);
      },
    );
    const replica = new Replica(registry, (_key, error) => errors.push(error), options.clock);
    const pipeline = new Pipeline(store, replica, {
      maxRecords: 10,
      idleMs: 60_000,
      timeoutMs: 50,
    });
    registry.get("k").breaker.forceOpen(60_000);
    await new Promise((r) => setTimeout(r, 80));
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/did not answer within 50 ms/);
    expect(saves()).toBe(1); // no retry before the backoff delay (0.5–1 s)
    await vi.waitFor(async () => expect(await inner.load("k")).toBeDefined(), { timeout: 3000 });
    expect(saves()).toBe(2);
  });

  it("a failing store is called once per backoff step, not once per change, per key", async () => {
    let saves = 0;
    const failing: BreakerStore = {
      load: async () => undefined,
      save: async (record) => {
        saves++;
        if (record.key.endsWith("/flaky")) throw new Error("quota exceeded");
      },
    };
    const clock = new ManualClock();
    const cb = createCbFetch({
      store: failing,
      clock,
      failureThreshold: 1,
      openMs: 1,
      backoff: 1,
      jitter: 0,
      keyOf: (r) => new URL(r.url).pathname,
    });
    const errors: CircuitEvent[] = [];
    cb.addEventListener("storeerror", (e) => errors.push(e));
    await cb.ready;
    server.handle(respond(503));
    await cb(url("/flaky")); // the first write fails: the key's backoff starts
    await vi.waitFor(() => expect(saves).toBe(1));
    for (let i = 0; i < 20; i++) {
      clock.advance(1);
      await cb(url("/flaky")); // a failed probe: re-opened, 20 more changes within the backoff
    }
    await cb.flush();
    expect(saves).toBe(1);
    expect(errors).toHaveLength(1);
    // Calls never wait for the store.
    expect(cb.state(url("/flaky"))).not.toBe("closed");
    // Another key's writes do not wait for that backoff.
    await cb(url("/other"));
    await cb.flush();
    expect(saves).toBe(2);
    expect(errors).toHaveLength(1);
    await cb.close();
  });
});
