// @vitest-environment happy-dom
// Faults of the platform underneath (IndexedDB on fake-indexeddb, BroadcastChannel, the clock,
// the fetch): requests keep flowing, the breaker keeps breaking, problems are reported.
import "fake-indexeddb/auto";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { idbStore } from "../src/idb/index.js";
import {
  type CbFetchOptions,
  CircuitOpenError,
  type CircuitEvent,
  createCbFetch,
} from "../src/index.js";
import { respond, useServer } from "./helpers/server.js";

const server = useServer();
afterEach(() => vi.restoreAllMocks());
// The instance loads its store code with import(); vitest compiles it on first use, which can
// take longer than these tests' 50 ms loadTimeoutMs on a busy machine. Load it up front so
// each test counts only the storage faults it makes.
beforeAll(() => import("../src/shared/shared-state.js"));
const url = (path = "/") => server.origin + path;
let n = 0;

/** Trips the breaker with 503s, checks it fails fast, and returns the storeerrors seen. */
async function keepsBreaking(options: CbFetchOptions) {
  const cb = createCbFetch({ failureThreshold: 2, loadTimeoutMs: 50, ...options });
  const errors: CircuitEvent[] = [];
  cb.addEventListener("storeerror", (e) => errors.push(e));
  await cb.ready;
  server.handle(respond(503));
  expect((await cb(url())).status).toBe(503);
  expect((await cb(url())).status).toBe(503);
  const hits = server.hits;
  await expect(cb(url())).rejects.toBeInstanceOf(CircuitOpenError);
  expect(server.hits).toBe(hits);
  await cb.close();
  return errors;
}

describe("IndexedDB faults", () => {
  const store = () => idbStore({ dbName: `faults-${++n}` });

  it("open throws", async () => {
    vi.spyOn(indexedDB, "open").mockImplementation(() => {
      throw new DOMException("denied", "SecurityError");
    });
    expect(await keepsBreaking({ store: store() })).toHaveLength(1);
  });

  it("open never completes (blocked by another connection)", async () => {
    vi.spyOn(indexedDB, "open").mockImplementation(() => ({}) as IDBOpenDBRequest);
    const errors = await keepsBreaking({ store: store() });
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(String(errors[0]?.error)).toMatch(/took over 50 ms/);
  });

  it("reads throw", async () => {
    vi.spyOn(IDBObjectStore.prototype, "get").mockImplementation(() => {
      throw new DOMException("read failed", "UnknownError");
    });
    vi.spyOn(IDBObjectStore.prototype, "getAll").mockImplementation(() => {
      throw new DOMException("read failed", "UnknownError");
    });
    expect(await keepsBreaking({ store: store() })).toHaveLength(1);
  });

  it("writes throw (quota)", async () => {
    vi.spyOn(IDBObjectStore.prototype, "put").mockImplementation(() => {
      throw new DOMException("quota", "QuotaExceededError");
    });
    const errors = await keepsBreaking({ store: store() });
    expect(errors).toHaveLength(1);
    expect(String(errors[0]?.error)).toMatch(/quota/);
  });

  it("the connection closes mid-flight (Safari)", async () => {
    const s = store();
    const cb = createCbFetch({ store: s, failureThreshold: 2 });
    await cb.ready;
    // Close every open connection under the store's feet, then keep using it.
    const original = IDBDatabase.prototype.transaction;
    vi.spyOn(IDBDatabase.prototype, "transaction").mockImplementation(function (
      this: IDBDatabase,
      ...args
    ) {
      this.close();
      return original.apply(this, args as Parameters<typeof original>);
    });
    server.handle(respond(503));
    await cb(url());
    await cb(url());
    await expect(cb(url())).rejects.toBeInstanceOf(CircuitOpenError);
    await cb.close();
  });
});

describe("other faults", () => {
  it("BroadcastChannel.postMessage throws", async () => {
    vi.spyOn(BroadcastChannel.prototype, "postMessage").mockImplementation(() => {
      throw new DOMException("closed", "InvalidStateError");
    });
    const errors = await keepsBreaking({ sync: `faults-${++n}` });
    expect(errors.length).toBeGreaterThanOrEqual(1);
  });

  it("a clock stuck on one value: the circuit stays open, nothing throws", async () => {
    const cb = createCbFetch({ failureThreshold: 1, clock: { now: () => 42 } });
    server.handle(respond(500));
    await cb(url());
    for (let i = 0; i < 5; i++) await expect(cb(url())).rejects.toBeInstanceOf(CircuitOpenError);
  });

  it("a clock that jumps far ahead: the circuit half-opens and probes", async () => {
    let t = 1_000;
    const cb = createCbFetch({ failureThreshold: 1, clock: { now: () => t } });
    server.handle(respond(500));
    await cb(url());
    t += 10 * 365 * 86_400_000;
    server.handle(respond(200));
    expect((await cb(url())).status).toBe(200);
    expect(cb.state(url())).toBe("closed");
  });
});
