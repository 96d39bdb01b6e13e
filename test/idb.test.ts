// @vitest-environment happy-dom
// idbStore on IndexedDB (fake-indexeddb under happy-dom; the real thing runs in Chromium, see
// test/browser), against a real server on 127.0.0.1.
import "fake-indexeddb/auto";
import { createStore, get, set } from "idb-keyval";
import { describe, expect, it } from "vitest";
import { idbStore } from "../src/idb/index.js";
import {
  type CbFetchOptions,
  CircuitOpenError,
  type CircuitEvent,
  createCbFetch,
} from "../src/index.js";
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

  it("round-trips closed (with its failure count) and recovers after the open time", async () => {
    const clock = new ManualClock();
    const dbName = freshDb();
    const { cb: page } = open(dbName, { clock, failureThreshold: 3, openMs: 1000 });
    server.handle(respond(503));
    await page(url());
    await page(url());
    await page.close();
    const { cb: next } = open(dbName, { clock, failureThreshold: 3, openMs: 1000 });
    await next(url());
    expect(next.state(url())).toBe("open");
    await next.close();

    clock.advance(1000);
    const { cb: later } = open(dbName, { clock, failureThreshold: 3, openMs: 1000 });
    await later.ready;
    expect(later.state(url())).toBe("half-open");
    server.handle(respond(200));
    expect((await later(url())).status).toBe(200);
    expect(later.state(url())).toBe("closed");
    await later.close();
    const stored = await get(server.origin, createStore(dbName, "breakers"));
    expect(stored).toMatchObject({ state: "closed", consecutiveFailures: 0 });
  });

  const valid = () => ({
    v: 1,
    key: server.origin,
    state: "open",
    retryAt: Date.now() + 60_000,
    reopenCount: 0,
    consecutiveFailures: 0,
    rev: 1,
    writer: "w",
  });
  const corrupt: Array<[string, () => unknown]> = [
    ["null", () => null],
    ["a string", () => "open"],
    ["a number", () => 42],
    ["an array", () => [valid()]],
    ["a future version", () => ({ ...valid(), v: 2 })],
    ["a missing field", () => ({ ...valid(), rev: undefined })],
    ["an unknown state", () => ({ ...valid(), state: "ajar" })],
    ["a negative retryAt", () => ({ ...valid(), retryAt: -5 })],
    ["an infinite retryAt", () => ({ ...valid(), retryAt: Number.POSITIVE_INFINITY })],
    ["a NaN retryAt", () => ({ ...valid(), retryAt: Number.NaN })],
    ["a fractional rev", () => ({ ...valid(), rev: 1.5 })],
    ["a string counter", () => ({ ...valid(), reopenCount: "2" })],
    ["another key", () => ({ ...valid(), key: "https://elsewhere.example" })],
    ["open without retryAt", () => ({ ...valid(), retryAt: 0 })],
    ["a class instance", () => new Date()],
    ["a huge writer", () => ({ ...valid(), writer: "w".repeat(10_000) })],
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
    expect(await get(server.origin, createStore(dbName, "breakers"))).toMatchObject({
      v: 1,
      state: "open",
    });
  });

  it("a write never replaces a newer record", async () => {
    const dbName = freshDb();
    const newer = { ...valid(), rev: 99, writer: "other-tab" };
    const store = idbStore({ dbName });
    await store.save({ ...newer, rev: 100 } as never);
    await store.save({ ...valid(), state: "closed", retryAt: 0, rev: 5 } as never);
    expect(await store.load(server.origin)).toMatchObject({ rev: 100, state: "open" });
  });

  it("without IndexedDB the instance reports once and works in memory", async () => {
    const saved = globalThis.indexedDB;
    // @ts-expect-error: simulating a browser without IndexedDB
    delete globalThis.indexedDB;
    try {
      const { cb, storeErrors } = open(freshDb(), { failureThreshold: 1 });
      server.handle(respond(500));
      expect((await cb(url())).status).toBe(500);
      expect(await rejection(cb(url()))).toBeInstanceOf(CircuitOpenError);
      await cb.close();
      expect(storeErrors).toHaveLength(1);
    } finally {
      globalThis.indexedDB = saved;
    }
  });

  it("rejects bad idbStore options", () => {
    expect(() => idbStore({ dbName: "" })).toThrow(/dbName/);
    expect(() => idbStore({ storeName: 5 as unknown as string })).toThrow(/storeName/);
  });
});
