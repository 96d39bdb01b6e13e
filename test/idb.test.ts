// @vitest-environment happy-dom
// idbStore on IndexedDB (fake-indexeddb under happy-dom; the real thing runs in Chromium, see
// test/browser), against a real server on 127.0.0.1.
import "fake-indexeddb/auto";
import { createStore, get, set } from "idb-keyval";
import { describe, expect, it, vi } from "vitest";
import { idbStore } from "../src/idb/index.js";
import {
  type BreakerRecord,
  type CbFetchOptions,
  CircuitOpenError,
  type CircuitEvent,
  createCbFetch,
} from "../src/index.js";
import { isOpen } from "../src/shared/compare.js";
import { ManualClock } from "./helpers/clock.js";
import { rejection, respond, useServer } from "./helpers/server.js";

const server = useServer();
const url = (path = "/") => server.origin + path;
let databases = 0;
const freshDb = () => `cbfetch-test-${++databases}`;

function open(dbName: string, options: CbFetchOptions = {}) {
  const cb = createCbFetch({ store: idbStore({ dbName }), jitter: 0, ...options });
  const storeErrors: CircuitEvent[] = [];
  cb.addEventListener("storeerror", (e) => storeErrors.push(e));
  return { cb, storeErrors };
}

describe("idbStore", () => {
  it("a reload sees the open circuit, keeps its retryAt, and sends nothing", async () => {
    const clock = new ManualClock();
    const dbName = freshDb();
    const { cb: page } = open(dbName, { clock, failureThreshold: 2 });
    server.handle(respond(503));
    await page(url("/x"));
    await page(url("/y"));
    const retryAt = page.breaker(url()).retryAt;
    await page.close();

    const { cb: reloaded, storeErrors } = open(dbName, { clock, failureThreshold: 2 });
    const hits = server.hits;
    const error = await rejection(reloaded(url("/z")));
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect((error as CircuitOpenError).retryAt).toBe(retryAt);
    expect(server.hits).toBe(hits);
    expect(storeErrors).toEqual([]);
  });

  it("recovers after the open time and stores the close", async () => {
    const clock = new ManualClock();
    const dbName = freshDb();
    const { cb: page } = open(dbName, { clock, failureThreshold: 3, openMs: 1000 });
    server.handle(respond(503));
    for (let i = 0; i < 3; i++) await page(url());
    expect(page.state(url())).toBe("open");
    await page.close();

    clock.advance(1000);
    const { cb: later } = open(dbName, { clock, failureThreshold: 3, openMs: 1000 });
    await later.ready;
    expect(later.state(url())).toBe("half-open");
    server.handle(respond(200));
    expect((await later(url())).status).toBe(200);
    expect(later.state(url())).toBe("closed");
    await later.close();
    const stored = (await get(server.origin, createStore(dbName, "breakers"))) as BreakerRecord;
    expect(isOpen(stored)).toBe(false);
    expect(stored.closed).toBeGreaterThan(stored.opened);
  });

  const valid = () => ({
    v: 2,
    key: server.origin,
    opened: Date.now() - 1000,
    retryAt: Date.now() + 60_000,
    reopens: 0,
    closed: 0,
  });
  const corrupt: Array<[string, () => unknown]> = [
    ["null", () => null],
    ["a string", () => "open"],
    ["a number", () => 42],
    ["an array", () => [valid()]],
    ["a future version", () => ({ ...valid(), v: 3 })],
    ["a record of version 1", () => ({ v: 1, key: server.origin, state: "open", rev: 3 })],
    ["a missing field", () => ({ ...valid(), closed: undefined })],
    ["a time far in the future", () => ({ ...valid(), opened: Date.now() + 3_600_000 })],
    ["a negative retryAt", () => ({ ...valid(), retryAt: -5 })],
    ["an infinite retryAt", () => ({ ...valid(), retryAt: Number.POSITIVE_INFINITY })],
    ["a NaN retryAt", () => ({ ...valid(), retryAt: Number.NaN })],
    ["fractional reopens", () => ({ ...valid(), reopens: 1.5 })],
    ["a string counter", () => ({ ...valid(), reopens: "2" })],
    ["huge reopens", () => ({ ...valid(), reopens: Number.MAX_SAFE_INTEGER })],
    ["another key", () => ({ ...valid(), key: "https://elsewhere.example" })],
    ["open without retryAt", () => ({ ...valid(), retryAt: 0 })],
    ["a class instance", () => new Date()],
  ];

  it.each(corrupt)("ignores and reports %s, and the request goes through", async (_kind, make) => {
    const dbName = freshDb();
    await set(server.origin, make(), createStore(dbName, "breakers"));
    const { cb, storeErrors } = open(dbName, { failureThreshold: 1 });
    const hits = server.hits;
    const response = await cb(url("/after-corruption"));
    expect(response.status).toBe(200);
    expect(server.hits).toBe(hits + 1);
    expect(cb.state(url())).toBe("closed");
    expect(storeErrors.length).toBeGreaterThanOrEqual(1);
    expect(String(storeErrors[0]?.error)).toMatch(/ignored a stored record/);
    // Nothing is lost: the breaker still works and writes a clean record over the garbage.
    server.handle(respond(503));
    await cb(url());
    await cb.close();
    const stored = await get(server.origin, createStore(dbName, "breakers"));
    expect(stored).toMatchObject({ v: 2, key: server.origin });
    expect(isOpen(stored as BreakerRecord)).toBe(true);
  });

  it("a write merges with the stored record: a change made without knowing an open keeps it", async () => {
    const store = idbStore({ dbName: freshDb() });
    const open = valid() as BreakerRecord;
    await store.save(open);
    // Another tab's close, from evidence older than that open: the open stays.
    await store.save({ ...open, opened: 0, retryAt: 0, closed: open.opened - 1 });
    expect(isOpen((await store.load(server.origin)) as BreakerRecord)).toBe(true);
    // A close after the open began ends it.
    await store.save({ ...open, opened: 0, retryAt: 0, closed: open.opened + 1 });
    expect(await store.load(server.origin)).toMatchObject({
      opened: open.opened,
      closed: open.opened + 1,
    });
  });

  it("without IndexedDB the instance reports once and works in memory", async () => {
    const saved = globalThis.indexedDB;
    // @ts-expect-error: simulating a browser without IndexedDB
    delete globalThis.indexedDB;
    // In development it also says so once (test/testing.test.ts checks the text).
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    try {
      const { cb, storeErrors } = open(freshDb(), { failureThreshold: 1 });
      server.handle(respond(500));
      expect((await cb(url())).status).toBe(500);
      expect(await rejection(cb(url()))).toBeInstanceOf(CircuitOpenError);
      await cb.close();
      expect(storeErrors).toHaveLength(1);
      expect(warn).toHaveBeenCalledTimes(1);
    } finally {
      warn.mockRestore();
      globalThis.indexedDB = saved;
    }
  });

  it("rejects bad idbStore options", () => {
    expect(() => idbStore({ dbName: "" })).toThrow(/dbName/);
    expect(() => idbStore({ storeName: 5 as unknown as string })).toThrow(/storeName/);
  });
});
