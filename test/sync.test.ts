import { afterEach, describe, expect, it, vi } from "vitest";
import {
  type BreakerRecord,
  type CbFetchOptions,
  CircuitOpenError,
  type CircuitEvent,
  createCbFetch,
  memoryStore,
} from "../src/index.js";
import { isOpen } from "../src/shared/compare.js";
import { ManualClock } from "./helpers/clock.js";
import { hangUp, rejection, respond, useServer } from "./helpers/server.js";

// Several instances on one BroadcastChannel name stand in for tabs: Node's BroadcastChannel
// delivers between channels of one name in one process, as a browser does between tabs.
// Real Chromium tabs are tested in test/browser/sync.browser.test.ts.
const server = useServer();
const opened: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  vi.unstubAllGlobals();
  await Promise.all(opened.splice(0).map((cb) => cb.close()));
});
const url = (path = "/") => server.origin + path;
let channels = 0;

function tabs(count: number, options: CbFetchOptions = {}) {
  const clock = new ManualClock();
  const sync = `test-${++channels}`;
  const make = () => {
    const cb = createCbFetch({
      sync,
      clock,
      failureThreshold: 2,
      openMs: 1000,
      jitter: 0,
      ...options,
    });
    const storeErrors: CircuitEvent[] = [];
    cb.addEventListener("storeerror", (e) => storeErrors.push(e));
    opened.push(cb);
    return Object.assign(cb, { storeErrors });
  };
  return { clock, sync, make, tabs: Array.from({ length: count }, make) };
}

describe("cross-tab sync (BroadcastChannel)", () => {
  it("an open in one tab is open in the others, which then send nothing", async () => {
    const {
      tabs: [a, b, c],
    } = tabs(3);
    if (!a || !b || !c) throw new Error("three tabs");
    await Promise.all([a.ready, b.ready, c.ready]);
    server.handle(respond(503));
    await a(url());
    await a(url());
    await vi.waitFor(() => expect([b.state(url()), c.state(url())]).toEqual(["open", "open"]));
    const hits = server.hits;
    const error = await rejection(b(url()));
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect((error as CircuitOpenError).retryAt).toBe(a.breaker(url()).retryAt);
    expect(await rejection(c(url()))).toBeInstanceOf(CircuitOpenError);
    expect(server.hits).toBe(hits);
  });

  it("a tab tripping while another records flaky outcomes: both end open", async () => {
    const {
      tabs: [a, b],
    } = tabs(2, { failureThreshold: 3 });
    if (!a || !b) throw new Error("two tabs");
    await Promise.all([a.ready, b.ready]);
    // In the same moment (before any message is delivered): a trips, b records failure,
    // success, failure, success. b's changes were made without knowing a's open.
    const [breakerA, breakerB] = [a.breaker(url()), b.breaker(url())];
    for (let i = 0; i < 3; i++) breakerA.recordFailure();
    for (let i = 0; i < 2; i++) {
      breakerB.recordFailure();
      breakerB.recordSuccess();
    }
    await vi.waitFor(() => expect(b.state(url())).toBe("open"));
    await new Promise((r) => setTimeout(r, 20));
    expect([a.state(url()), b.state(url())]).toEqual(["open", "open"]);
  });

  it("failure counts are per tab: healthy but flaky traffic sends nothing", async () => {
    const {
      sync,
      tabs: [a, b],
    } = tabs(2, { failureThreshold: 3 });
    if (!a || !b) throw new Error("two tabs");
    await Promise.all([a.ready, b.ready]);
    const listener = new BroadcastChannel(`cbfetch:${sync}`);
    const messages: unknown[] = [];
    listener.onmessage = (event) => messages.push(event.data);
    for (const status of [503, 200, 503, 200, 503, 503, 200]) {
      server.handle(respond(status));
      await b(url());
    }
    await new Promise((r) => setTimeout(r, 20));
    expect(messages).toEqual([]);
    expect(a.breaker(url()).stats.consecutiveFailures).toBe(0);
    listener.close();
  });

  it("a probe's success closes every tab; its failure re-opens every tab", async () => {
    const {
      clock,
      tabs: [a, b],
    } = tabs(2);
    if (!a || !b) throw new Error("two tabs");
    server.handle(respond(503));
    await a(url());
    await a(url());
    await vi.waitFor(() => expect(b.state(url())).toBe("open"));
    clock.advance(1000);
    await b(url()); // b's probe fails: re-open with backoff, everywhere
    await vi.waitFor(() => expect(a.breaker(url()).stats.state).toBe("open"));
    expect(a.breaker(url()).retryAt).toBe(clock.t + 2000);
    clock.advance(2000);
    server.handle(respond(200));
    expect((await a(url())).status).toBe(200);
    await vi.waitFor(() => expect(b.state(url())).toBe("closed"));
  });

  it("a tab that joins late learns the state before its first call goes out", async () => {
    const {
      make,
      tabs: [a],
    } = tabs(1);
    if (!a) throw new Error("one tab");
    server.handle(respond(503));
    await a(url());
    await a(url());
    const late = make();
    const hits = server.hits;
    expect(await rejection(late(url()))).toBeInstanceOf(CircuitOpenError);
    expect(server.hits).toBe(hits);
  });

  it("ignores and reports garbage; ignores other versions quietly", async () => {
    const {
      sync,
      tabs: [a],
    } = tabs(1);
    if (!a) throw new Error("one tab");
    await a.ready;
    const intruder = new BroadcastChannel(`cbfetch:${sync}`);
    const valid = {
      v: 2,
      key: server.origin,
      opened: Date.now(),
      retryAt: Date.now() + 60_000,
      reopens: 0,
      closed: 0,
    };
    const garbage: unknown[] = [
      "hello",
      42,
      null,
      [1, 2],
      { cbfetch: 2, type: "nonsense" },
      { cbfetch: 2, type: "state", records: "not an array" },
      { cbfetch: 2, type: "state", records: [{ ...valid, opened: -1 }] },
      { cbfetch: 2, type: "state", records: [{ ...valid, v: 9 }] },
      { cbfetch: 2, type: "state", records: [{ ...valid, reopens: -1 }] },
      { cbfetch: 2, type: "state", records: [{ ...valid, opened: Number.MAX_SAFE_INTEGER }] },
      { cbfetch: 2, type: "state", records: [null] },
    ];
    for (const message of garbage) intruder.postMessage(message);
    intruder.postMessage({ cbfetch: 3, type: "state", records: [valid] }); // a newer cbfetch
    intruder.postMessage({ cbfetch: 1, type: "state", records: [valid] }); // an older one
    await vi.waitFor(() => expect(a.storeErrors).toHaveLength(garbage.length));
    intruder.close();
    expect(a.state(url())).toBe("closed");
    expect((await a(url())).status).toBe(200);
  });

  it("an older record never rolls a tab back; a later open wins", async () => {
    const {
      sync,
      clock,
      tabs: [a],
    } = tabs(1);
    if (!a) throw new Error("one tab");
    server.handle(respond(503));
    await a(url());
    await a(url()); // open, at clock.t
    const peer = new BroadcastChannel(`cbfetch:${sync}`);
    const record = (fields: object) => ({
      cbfetch: 2,
      type: "state",
      records: [
        { v: 2, key: server.origin, opened: 0, retryAt: 0, reopens: 0, closed: 0, ...fields },
      ],
    });
    // A close from evidence older than a's open (made without knowing it): ignored.
    peer.postMessage(record({ closed: clock.t - 1 }));
    await new Promise((r) => setTimeout(r, 20));
    expect(a.state(url())).toBe("open");
    clock.advance(1);
    peer.postMessage(record({ opened: clock.t, retryAt: clock.t + 7000 }));
    await vi.waitFor(() => expect(a.breaker(url()).retryAt).toBe(clock.t + 7000));
    peer.close();
  });

  it("offline network errors are neither counted nor shared", async () => {
    const {
      tabs: [a, b],
    } = tabs(2, { failureThreshold: 1, networkErrors: "verify" }); // a browser's rule
    if (!a || !b) throw new Error("two tabs");
    vi.stubGlobal("navigator", { onLine: false });
    server.handle(hangUp);
    await rejection(a(url()));
    await new Promise((r) => setTimeout(r, 20));
    expect(a.breaker(url()).stats.consecutiveFailures).toBe(0);
    expect(b.state(url())).toBe("closed");
    expect(b.snapshot()).toEqual([]);
  });

  it("works with a store too, and close() stops listening", async () => {
    const store = memoryStore();
    const {
      tabs: [a, b],
    } = tabs(2, { store });
    if (!a || !b) throw new Error("two tabs");
    await b.close();
    server.handle(respond(503));
    await a(url());
    await a(url());
    await new Promise((r) => setTimeout(r, 20));
    expect(b.state(url())).toBe("closed"); // closed instances hear nothing
    expect(isOpen((await store.load(server.origin)) as BreakerRecord)).toBe(true);
  });

  // happy-dom has a window, and so the page lifecycle (real Chromium's back/forward cache is in
  // test/browser/lifecycle.browser.test.ts).
  it.runIf(typeof window !== "undefined")(
    "a page back from the back/forward cache rejoins: an open decided while it was away holds before its next call",
    async () => {
      const {
        tabs: [a, b],
      } = tabs(2);
      if (!a || !b) throw new Error("two tabs");
      await Promise.all([a.ready, b.ready]);
      server.handle(respond(200));
      expect((await b(url())).status).toBe(200);
      const lifecycle = (type: string) =>
        window.dispatchEvent(Object.assign(new Event(type), { persisted: true }));
      lifecycle("pagehide"); // into the cache: b lets go of its channel and hears nothing
      server.handle(respond(503));
      await a(url());
      await a(url());
      await new Promise((r) => setTimeout(r, 20));
      expect(b.state(url())).toBe("closed");
      lifecycle("pageshow"); // restored
      const hits = server.hits;
      expect(await rejection(b(url()))).toBeInstanceOf(CircuitOpenError);
      expect(server.hits).toBe(hits);
    },
  );

  it("without BroadcastChannel, sync is off and everything else works", async () => {
    vi.stubGlobal("BroadcastChannel", undefined);
    const cb = createCbFetch({ sync: true, failureThreshold: 1 });
    server.handle(respond(500));
    await cb(url());
    expect(await rejection(cb(url()))).toBeInstanceOf(CircuitOpenError);
    expect(() => createCbFetch({ sync: "" })).toThrow(/"sync"/);
  });
});

describe("sync edge cases (issue 13)", () => {
  it("after close(), a state change sends nothing and reports nothing", async () => {
    const {
      tabs: [a, b],
    } = tabs(2);
    if (!a || !b) throw new Error("two tabs");
    await Promise.all([a.ready, b.ready]);
    await a.close();
    a.breaker(url()).forceOpen();
    a.breaker(url()).forceClose();
    await new Promise((r) => setTimeout(r, 20));
    expect(a.storeErrors).toEqual([]);
    expect(b.state(url())).toBe("closed");
    expect(a.state(url())).toBe("closed"); // still works in memory
  });

  // Stands in for a tab that holds the probe's Web Lock (real Chromium: test/browser).
  it("a call refused because another tab holds the probe lock is a counted rejection with a real retryAfterMs", async () => {
    vi.stubGlobal("navigator", {
      onLine: true,
      locks: {
        request: (_name: string, _options: unknown, callback: (lock: null) => unknown) =>
          Promise.resolve(callback(null)),
      },
    });
    const {
      clock,
      tabs: [a],
    } = tabs(1, { probeTimeoutMs: 5000 });
    if (!a) throw new Error("one tab");
    const rejects: CircuitEvent[] = [];
    a.addEventListener("reject", (e) => rejects.push(e));
    await a.ready;
    a.breaker(url()).forceOpen(100);
    clock.advance(100);
    const hits = server.hits;
    const error = await rejection(a(url()));
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(error).toMatchObject({ state: "half-open", retryAfterMs: 5000 });
    expect(server.hits).toBe(hits);
    expect(a.breaker(url()).stats).toMatchObject({ rejections: 1, ignored: 0, probesInFlight: 0 });
    expect(rejects.map((e) => e.retryAt)).toEqual([clock.t + 5000]);
  });
});
