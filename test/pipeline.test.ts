import { afterEach, describe, expect, it, vi } from "vitest";
import {
  type BreakerRecord,
  type BreakerStore,
  type CircuitEvent,
  createCbFetch,
  memoryStore,
} from "../src/index.js";
import { isOpen } from "../src/shared/compare.js";
import { ManualClock } from "./helpers/clock.js";

// The write pipeline (DESIGN §3 "Writes never wedge"), through the public API: a store whose
// writes fail or hang for chosen keys, a manual clock, and timers that run only when a test
// says so. In workerd a timer set by a request that has ended never runs: every retry here is
// carried by a later flush(), as the Workers middleware hands one to waitUntil per request.
const A = "https://a.example";
const B = "https://b.example";
const C = "https://c.example";
afterEach(() => vi.useRealTimers());

/** A memoryStore whose writes fail for the keys in `failing` and never answer for `hanging`. */
function faultyStore() {
  const inner = memoryStore();
  const saves = new Map<string, number>();
  const failing = new Set<string>();
  const hanging = new Set<string>();
  const store: BreakerStore = {
    load: (key) => inner.load(key),
    save(record) {
      saves.set(record.key, (saves.get(record.key) ?? 0) + 1);
      if (hanging.has(record.key)) return new Promise<never>(() => {});
      if (failing.has(record.key)) return Promise.reject(new Error(`no write for ${record.key}`));
      return inner.save(record);
    },
  };
  return Object.assign(store, {
    failing,
    hanging,
    saves: (key: string) => saves.get(key) ?? 0,
    stored: async (key: string) => (await inner.load(key)) as BreakerRecord | undefined,
  });
}

/** An instance on `store` with a manual clock, and the keys of its storeerrors. */
async function instance(store: BreakerStore) {
  const clock = new ManualClock();
  const cb = createCbFetch({ store, clock });
  const errors: string[] = [];
  cb.addEventListener("storeerror", (event: CircuitEvent) => errors.push(event.key));
  await cb.ready;
  return { cb, clock, errors };
}

/** Timers that never run unless the test moves them (the retry timer among them). */
const stopTimers = () =>
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval"] });

describe("the write pipeline", () => {
  it("one key's failing writes do not hold back another key's", async () => {
    const store = faultyStore();
    store.failing.add(A);
    const { cb, errors } = await instance(store);
    cb.breaker(A).forceOpen(60_000);
    await cb.flush();
    expect(store.saves(A)).toBe(1);
    cb.breaker(B).forceOpen(60_000);
    await cb.flush();
    expect(store.saves(B)).toBe(1);
    expect(isOpen((await store.stored(B)) as BreakerRecord)).toBe(true);
    expect(errors).toEqual([A]); // one storeerror, for the key that failed
  });

  it("a due retry is written by the next flush(), with no timer running", async () => {
    stopTimers();
    const store = faultyStore();
    store.failing.add(A);
    const { cb, clock } = await instance(store);
    cb.breaker(A).forceOpen(60_000);
    await cb.flush();
    expect(store.saves(A)).toBe(1);
    await cb.flush(); // backing off: not due yet, no call
    expect(store.saves(A)).toBe(1);
    store.failing.delete(A);
    clock.advance(2_000); // past the first backoff (1 s, jittered)
    await cb.flush();
    expect(store.saves(A)).toBe(2);
    expect(isOpen((await store.stored(A)) as BreakerRecord)).toBe(true);
  });

  it("backs off per key, doubling, and reports one storeerror per key and streak", async () => {
    stopTimers();
    const store = faultyStore();
    store.failing.add(A).add(B);
    const { cb, clock, errors } = await instance(store);
    cb.breaker(A).forceOpen(60_000);
    await cb.flush();
    // Flushes every 100 ms for 10 s: retries come after about 1, 2, 4 s (each jittered down
    // to half), never one per flush.
    for (let t = 0; t < 10_000; t += 100) {
      clock.advance(100);
      await cb.flush();
    }
    expect(store.saves(A)).toBeGreaterThanOrEqual(3);
    expect(store.saves(A)).toBeLessThanOrEqual(6);
    expect(errors).toEqual([A]);
    // Another key works: B's failure is a streak of its own, written at once, reported once.
    cb.breaker(C).forceOpen(60_000);
    cb.breaker(B).forceOpen(60_000);
    await cb.flush();
    expect(store.saves(B)).toBe(1);
    expect(errors).toEqual([A, B]);
    // A's store works again: its next retry lands and ends its streak; a new failure is news.
    store.failing.delete(A);
    clock.advance(60_000);
    await cb.flush();
    expect(isOpen((await store.stored(A)) as BreakerRecord)).toBe(true);
    store.failing.add(A);
    cb.breaker(A).forceClose();
    await cb.flush();
    expect(errors).toEqual([A, B, A]);
  });

  it("a store down as a whole reports once, not once per key", async () => {
    const store = faultyStore();
    store.failing.add(A).add(B).add(C);
    const { cb, errors } = await instance(store);
    for (const key of [A, B, C]) cb.breaker(key).forceOpen(60_000);
    await cb.flush();
    expect([A, B, C].map((key) => store.saves(key))).toEqual([1, 1, 1]);
    expect(errors).toEqual([A]);
  });

  it("flush() resolves once every write in flight has answered or timed out (and was reported)", async () => {
    stopTimers();
    const store = faultyStore();
    store.hanging.add(A);
    const { cb, errors } = await instance(store);
    cb.breaker(A).forceOpen(60_000);
    const flushes = [cb.flush(), cb.flush()];
    let settled = 0;
    for (const flush of flushes) void flush.then(() => settled++);
    await vi.advanceTimersByTimeAsync(4_900);
    expect(settled).toBe(0);
    expect(errors).toEqual([]);
    await vi.advanceTimersByTimeAsync(100); // the store's 5 s timeout
    expect(settled).toBe(2);
    expect(errors).toEqual([A]);
  });

  it("a store call's deadline is on the instance's clock: flush() before moving it past a write in flight", async () => {
    // A store that answers on a later turn, as fake-indexeddb and IndexedDB do.
    const inner = memoryStore();
    let saves = 0;
    const store: BreakerStore = {
      load: (key) => inner.load(key),
      save: (record) => {
        saves++;
        return new Promise((resolve) => setImmediate(() => resolve(inner.save(record))));
      },
    };
    const { cb, clock, errors } = await instance(store);
    // Moved 30 s in no real time while the open's write is in flight: the write timed out.
    cb.breaker(A).forceOpen(30_000);
    await Promise.resolve(); // the write starts in a microtask
    clock.advance(30_001);
    cb.breaker(A).forceClose();
    await cb.flush();
    expect(errors).toEqual([A]);
    expect(saves).toBe(1); // the close waits out the key's backoff
    clock.advance(60_000);
    await cb.flush();
    expect(saves).toBe(2);
    expect(isOpen((await inner.load(A)) as BreakerRecord)).toBe(false);
    // Flushed first, as the open period's real time would: both written, nothing reported.
    cb.breaker(B).forceOpen(30_000);
    await cb.flush();
    clock.advance(30_001);
    cb.breaker(B).forceClose();
    await cb.flush();
    expect(saves).toBe(4);
    expect(errors).toEqual([A]);
  });
});
