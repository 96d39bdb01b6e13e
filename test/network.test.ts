// @vitest-environment happy-dom
// DESIGN §2, "is it me or them?": a network error proves nothing about the origin; an answer
// of any status proves the network works. Three real servers on 127.0.0.1 stand in for three
// API origins; one that drops every connection stands in for a dead uplink. (Real Chromium,
// with the browser's own network failures, is in test/browser/network.browser.test.ts.)
import { describe, expect, it, vi } from "vitest";
import { type CbFetchOptions, CircuitOpenError, createCbFetch, memoryStore } from "../src/index.js";
import { hangUp, rejection, respond, useServer } from "./helpers/server.js";

const a = useServer();
const b = useServer();
const c = useServer();
const servers = [a, b, c];

/** An instance that judges by other origins' answers alone (no check), unless told otherwise. */
function make(options: CbFetchOptions = {}) {
  const store = memoryStore();
  const cb = createCbFetch({
    failureThreshold: 3,
    openMs: 60_000,
    jitter: 0,
    store,
    networkCheck: false,
    ...options,
  });
  return { cb, store };
}

/** An instance whose circuit of `a` a network failure opened: a refused while b answered. */
async function openedByNetwork() {
  const { cb } = make();
  await cb(b.url());
  a.handle(hangUp);
  for (let i = 0; i < 3; i++) {
    await rejection(cb(a.url()));
    await cb(b.url());
  }
  expect(cb.state(a.url())).toBe("open");
  return cb;
}

/**
 * An instance whose circuit of `a` a network failure opened, after which the network went down (b and c failed in a row) and came back.
 */
async function openedByNetworkThenNetworkDown() {
  const cb = await openedByNetwork();
  b.handle(hangUp);
  c.handle(hangUp);
  await rejection(cb(b.url()));
  await rejection(cb(c.url())); // two origins fail in a row: the network is down
  for (const s of servers) s.handle(respond(200));
  return cb;
}

describe("is it me or them?", () => {
  it("a dead uplink opens no circuit and stores nothing; once it is back, calls go out", async () => {
    const { cb, store } = make();
    for (const s of servers) expect((await cb(s.url())).status).toBe(200); // all healthy
    for (const s of servers) s.handle(hangUp); // the uplink dies: every request fails
    for (let i = 0; i < 5; i++) {
      // The very error fetch gives (a TypeError; happy-dom's fetch has its own NetworkError).
      for (const s of servers) expect(await rejection(cb(s.url()))).toBeInstanceOf(Error);
    }
    for (const s of servers) expect(cb.state(s.url())).toBe("closed");
    await cb.flush();
    expect(await store.loadAll?.()).toEqual([]);
    for (const s of servers) s.handle(respond(200)); // back
    for (const s of servers) {
      const hits = s.hits;
      expect((await cb(s.url())).status).toBe(200);
      expect(s.hits).toBe(hits + 1);
    }
    await cb.close();
  });

  it("one origin refusing connections while the others answer trips within failureThreshold calls", async () => {
    const { cb } = make();
    for (const s of servers) await cb(s.url()); // an app at work: every origin answers
    a.handle(hangUp);
    // Interleaved with the others' answers...
    for (let i = 0; i < 3; i++) {
      await rejection(cb(a.url()));
      expect((await cb(b.url())).status).toBe(200);
    }
    expect(cb.state(a.url())).toBe("open");
    // ...and in a burst after them.
    const burst = make().cb;
    expect((await burst(b.url())).status).toBe(200);
    await Promise.all([1, 2, 3].map(() => rejection(burst(a.url()))));
    expect(burst.state(a.url())).toBe("open");
    expect([burst.state(b.url()), burst.state(c.url())]).toEqual(["closed", "closed"]);
    await Promise.all([cb.close(), burst.close()]);
  });

  it("a 503 outage of one origin trips it even while the others are unreachable", async () => {
    const { cb } = make();
    // The others fail first (the network looks down), and a answers 503: statuses always count.
    a.handle(respond(503));
    b.handle(hangUp);
    c.handle(hangUp);
    for (let i = 0; i < 3; i++) {
      await rejection(cb(b.url()));
      await rejection(cb(c.url()));
      await cb(a.url());
    }
    expect(cb.state(a.url())).toBe("open");
    await cb.close();
  });

  it("with no check, an app of one origin: its network errors open nothing (its statuses still do)", async () => {
    const { cb } = make();
    a.handle(hangUp);
    for (let i = 0; i < 6; i++) await rejection(cb(a.url()));
    expect(cb.state(a.url())).toBe("closed");
    a.handle(respond(503));
    for (let i = 0; i < 3; i++) await cb(a.url());
    expect(cb.state(a.url())).toBe("open");
    await cb.close();
  });

  it("a circuit opened by network errors is probed on the first call after an online event", async () => {
    const cb = await openedByNetworkThenNetworkDown();
    window.dispatchEvent(new Event("online"));
    const hits = a.hits;
    expect((await cb(a.url())).status).toBe(200);
    expect(a.hits).toBe(hits + 1);
    expect(cb.state(a.url())).toBe("closed");
    await cb.close();
  });

  it("an online event alone (no call failed while the network was away) makes it due too", async () => {
    const cb = await openedByNetwork();
    // The page was idle (or only made refused calls) while offline: the judge never saw the
    // network down, but the browser says it is back.
    expect(await rejection(cb(a.url()))).toBeInstanceOf(CircuitOpenError);
    a.handle(respond(200));
    window.dispatchEvent(new Event("online"));
    const hits = a.hits;
    expect((await cb(a.url())).status).toBe(200);
    expect(a.hits).toBe(hits + 1);
    expect(cb.state(a.url())).toBe("closed");
    await cb.close();
  });

  it("an online event does not cut short an open decided since (a Retry-After)", async () => {
    const cb = await openedByNetwork();
    a.handle(respond(200));
    window.dispatchEvent(new Event("online"));
    expect((await cb(a.url())).status).toBe(200); // probed and closed
    // Then the API asks for a minute off: an `online` event later does not end that.
    a.handle(respond(429, "slow down", { "retry-after": "60" }));
    expect((await cb(a.url())).status).toBe(429);
    expect(cb.state(a.url())).toBe("open");
    window.dispatchEvent(new Event("online"));
    const hits = a.hits;
    expect(await rejection(cb(a.url()))).toBeInstanceOf(CircuitOpenError);
    expect(a.hits).toBe(hits);
    await cb.close();
  });

  it("close() stops listening for online (issue 23): the open then runs its course", async () => {
    const cb = await openedByNetwork();
    await cb.close();
    a.handle(respond(200));
    window.dispatchEvent(new Event("online"));
    const hits = a.hits;
    expect(await rejection(cb(a.url()))).toBeInstanceOf(CircuitOpenError);
    expect(a.hits).toBe(hits);
  });

  it("...or after an answer from any origin once the network is back", async () => {
    const cb = await openedByNetworkThenNetworkDown();
    expect((await cb(b.url())).status).toBe(200); // and back: b answers
    // a's next call is refused (decided before anything could notice), the one after probes.
    const first = await rejection(cb(a.url()));
    if (first !== undefined) expect(first).toBeInstanceOf(CircuitOpenError);
    const hits = a.hits;
    expect((await cb(a.url())).status).toBe(200);
    expect(a.hits).toBe(hits + 1);
    await cb.close();
  });
});

// When no other origin has answered, the judge checks a second place itself: the page's own
// origin by default (`networkCheck`). A fourth server stands in for it here; real Chromium with
// a real page origin is in test/browser/network.browser.test.ts.
const page = useServer();

describe("the network check", () => {
  /** An instance whose check goes to `page`, over a store to see what would be shared. */
  function checked(options: CbFetchOptions = {}) {
    return make({ networkCheck: page.url("/"), ...options });
  }

  it("a one-API app trips on network errors: the page's origin answers one check", async () => {
    const { cb } = checked();
    const checks = page.hits;
    a.handle(hangUp);
    for (let i = 0; i < 3; i++) await rejection(cb(a.url()));
    await vi.waitFor(() => expect(cb.state(a.url())).toBe("open"));
    expect(page.hits - checks).toBe(1); // once per suspicion, not once per call
    expect(page.received.at(-1)).toMatchObject({ method: "HEAD", url: "/" });
    await cb.close();
  });

  it("by default the check goes to the page's own origin", async () => {
    vi.stubGlobal("location", new URL(page.url("/app/index.html")));
    try {
      const { cb } = make({ networkCheck: undefined }); // the default
      const checks = page.hits;
      a.handle(hangUp);
      for (let i = 0; i < 3; i++) await rejection(cb(a.url()));
      await vi.waitFor(() => expect(cb.state(a.url())).toBe("open"));
      expect(page.hits - checks).toBe(1);
      expect(page.received.at(-1)).toMatchObject({ method: "HEAD", url: "/" });
      await cb.close();
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it("concurrent network errors share one check", async () => {
    const { cb } = checked();
    const checks = page.hits;
    a.handle(hangUp);
    await Promise.all([1, 2, 3].map(() => rejection(cb(a.url()))));
    await vi.waitFor(() => expect(cb.state(a.url())).toBe("open"));
    expect(page.hits - checks).toBe(1);
    await cb.close();
  });

  it("a dead uplink, the page's origin included: one failed check, nothing opens or is stored", async () => {
    const { cb, store } = checked();
    for (const s of [...servers, page]) s.handle(hangUp);
    const checks = page.hits;
    for (let round = 0; round < 5; round++) {
      for (const s of servers) await rejection(cb(s.url()));
      await new Promise((resolve) => setTimeout(resolve, 20)); // the check's answer
    }
    for (const s of servers) expect(cb.state(s.url())).toBe("closed");
    // One check when the suspicion began; after it failed, the next waits (a second, doubling).
    expect(page.hits - checks).toBe(1);
    await cb.flush();
    expect(await store.loadAll?.()).toEqual([]);
    for (const s of [...servers, page]) s.handle(respond(200));
    await cb.close();
  });

  it("an API that is the page's own origin is not checked: its network errors do not count", async () => {
    const { cb } = make({ networkCheck: a.url("/") });
    const checks = a.hits;
    a.handle(hangUp);
    for (let i = 0; i < 6; i++) await rejection(cb(a.url()));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(cb.state(a.url())).toBe("closed");
    expect(a.hits - checks).toBe(6); // the calls themselves, and no check
    a.handle(respond(503)); // its failing statuses still trip it
    for (let i = 0; i < 3; i++) await cb(a.url());
    expect(cb.state(a.url())).toBe("open");
    await cb.close();
  });

  it("networkCheck: false turns the check off", async () => {
    const { cb } = checked({ networkCheck: false });
    const checks = page.hits;
    a.handle(hangUp);
    for (let i = 0; i < 6; i++) await rejection(cb(a.url()));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(cb.state(a.url())).toBe("closed");
    expect(page.hits).toBe(checks);
    await cb.close();
  });

  it('networkErrors: "count" makes a page count every network error, as a server does', async () => {
    const { cb } = checked({ networkErrors: "count" });
    const checks = page.hits;
    a.handle(hangUp);
    for (let i = 0; i < 3; i++) await rejection(cb(a.url()));
    expect(cb.state(a.url())).toBe("open");
    expect(page.hits).toBe(checks);
    await cb.close();
  });

  it("no check while navigator.onLine is false", async () => {
    const { cb } = checked();
    vi.stubGlobal("navigator", { onLine: false });
    try {
      const checks = page.hits;
      a.handle(hangUp);
      for (let i = 0; i < 3; i++) await rejection(cb(a.url()));
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(cb.state(a.url())).toBe("closed");
      expect(page.hits).toBe(checks);
    } finally {
      vi.unstubAllGlobals();
    }
    await cb.close();
  });
});
