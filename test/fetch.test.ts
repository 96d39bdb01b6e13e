import { afterEach, describe, expect, it, vi } from "vitest";
import {
  BulkheadFullError,
  type CbFetchOptions,
  type CircuitEvent,
  CircuitOpenError,
  cbFetch,
  createCbFetch,
} from "../src/index.js";
import { ManualClock } from "./helpers/clock.js";
import { hang, hangUp, rejection, respond, useServer, startServer } from "./helpers/server.js";

// Runs in plain Node and again under happy-dom (see vitest.config.ts), against a real
// node:http server on 127.0.0.1.
let clock: ManualClock;
const server = useServer();
// Another origin that answers: a network error counts against an origin only once the network
// is shown to work (DESIGN §2, "is it me or them?").
const elsewhere = useServer();
afterEach(() => vi.unstubAllGlobals());

function make(options: CbFetchOptions = {}) {
  clock = new ManualClock();
  return createCbFetch({ clock, jitter: 0, ...options });
}
const url = (path = "/") => server.origin + path;

describe("createCbFetch against a real server", () => {
  it("trips after failureThreshold failures and then fails fast without a request", async () => {
    const cb = make({ failureThreshold: 3 });
    server.handle(respond(503));
    for (let i = 0; i < 3; i++) expect((await cb(url("/x"))).status).toBe(503);
    expect(cb.state(url())).toBe("open");
    const hits = server.hits;
    const error = await rejection(cb(url("/y")));
    expect(server.hits).toBe(hits);
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(error).not.toBeInstanceOf(TypeError);
    expect(error).toMatchObject({
      name: "CircuitOpenError",
      key: server.origin,
      state: "open",
      retryAt: clock.t + 30_000,
      retryAfterMs: 30_000,
    });
  });

  it("counts network errors, 500/502/503/504/408/429 and timeouts; not 4xx or 2xx", async () => {
    const cb = make({ failureThreshold: 100 });
    const failures: CircuitEvent[] = [];
    cb.addEventListener("failure", (e) => failures.push(e));
    for (const status of [500, 502, 503, 504, 408, 429]) {
      server.handle(respond(status));
      await cb(url());
    }
    for (const status of [200, 400, 401, 403, 404, 409, 422, 501]) {
      server.handle(respond(status));
      await cb(url());
    }
    server.handle(hangUp);
    await cb(elsewhere.url()); // another origin answers: the network works
    const networkError = await rejection(cb(url()));
    // The very error fetch gives (TypeError in Node and browsers; happy-dom has its own).
    expect(networkError).toBeInstanceOf(Error);
    expect((networkError as Error).name).toBe(((await rejection(fetch(url()))) as Error).name);
    expect(failures.map((e) => e.status ?? e.kind)).toEqual([
      500,
      502,
      503,
      504,
      408,
      429,
      "error",
    ]);
    expect(cb.breaker(url()).stats).toMatchObject({ failures: 7, successes: 8 });
  });

  it("times out with a TimeoutError after timeoutMs and counts it", async () => {
    const cb = make({ failureThreshold: 1, timeoutMs: 50 });
    await cb(elsewhere.url()); // another origin answers: the network works
    server.handle(hang);
    const error = await rejection(cb(url()));
    expect(error).toMatchObject({ name: "TimeoutError" });
    expect(cb.state(url())).toBe("open");
  });

  it("half-open admits exactly halfOpenMaxProbes of many concurrent callers", async () => {
    const cb = make({ failureThreshold: 1, openMs: 1000, halfOpenMaxProbes: 2 });
    server.handle(respond(500));
    await cb(url());
    clock.advance(1000);
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    server.handle((_req, res) => {
      gate.then(() => respond(200)(_req, res));
    });
    const hits = server.hits;
    const calls = Array.from({ length: 40 }, () => rejection(cb(url("/probe"))));
    await vi.waitFor(() => expect(server.hits).toBe(hits + 2));
    release();
    const results = await Promise.all(calls);
    const refused = results.filter((r) => r instanceof CircuitOpenError);
    expect(refused).toHaveLength(38);
    expect(refused[0]).toMatchObject({ state: "half-open" });
    expect(server.hits).toBe(hits + 2);
    expect(cb.state(url())).toBe("closed");
  });

  it("re-opens when the probe fails, with backoff", async () => {
    const cb = make({ failureThreshold: 1, openMs: 1000, backoff: 2 });
    server.handle(respond(503));
    await cb(url());
    clock.advance(1000);
    await cb(url());
    expect(cb.state(url())).toBe("open");
    expect(cb.breaker(url()).retryAt).toBe(clock.t + 2000);
  });

  it("opens at once until Retry-After on 429/503 (seconds and HTTP-date), clamped", async () => {
    const cb = make({ maxOpenMs: 60_000 });
    server.handle(respond(429, "slow down", { "retry-after": "7" }));
    await cb(url());
    expect(cb.breaker(url()).retryAt).toBe(clock.t + 7000);
    cb.breaker(url()).forceClose();
    const date = new Date(Date.now() + 20_000).toUTCString();
    server.handle(respond(503, "later", { "retry-after": date }));
    await cb(url());
    const delay = (cb.breaker(url()).retryAt ?? 0) - clock.t;
    expect(delay).toBeGreaterThan(18_000);
    expect(delay).toBeLessThanOrEqual(20_000);
    cb.breaker(url()).forceClose();
    server.handle(respond(503, "much later", { "retry-after": "86400" }));
    await cb(url());
    expect(cb.breaker(url()).retryAt).toBe(clock.t + 60_000);
  });

  it("ignores garbage Retry-After and respectRetryAfter: false", async () => {
    const cb = make();
    server.handle(respond(503, "x", { "retry-after": "soon-ish" }));
    await cb(url());
    expect(cb.state(url())).toBe("closed");
    const off = make({ respectRetryAfter: false });
    server.handle(respond(429, "x", { "retry-after": "60" }));
    await off(url());
    expect(off.state(url())).toBe("closed");
  });

  it("a caller's abort is neither failure nor success, and frees the probe slot", async () => {
    const cb = make({ failureThreshold: 1, openMs: 100 });
    server.handle(hang);
    const controller = new AbortController();
    const before = server.hits;
    const pending = rejection(cb(url(), { signal: controller.signal }));
    await vi.waitFor(() => expect(server.hits).toBe(before + 1));
    controller.abort();
    expect(await pending).toMatchObject({ name: "AbortError" });
    expect(cb.state(url())).toBe("closed");
    expect(cb.breaker(url()).stats).toMatchObject({ failures: 0, successes: 0 });

    server.handle(respond(500));
    await cb(url());
    clock.advance(100);
    server.handle(hang);
    const probeAbort = new AbortController();
    const hits = server.hits;
    const probe = rejection(cb(url(), { signal: probeAbort.signal }));
    await vi.waitFor(() => expect(server.hits).toBe(hits + 1));
    expect(await rejection(cb(url()))).toBeInstanceOf(CircuitOpenError);
    probeAbort.abort();
    await probe;
    server.handle(respond(200));
    expect((await cb(url())).status).toBe(200); // the freed slot admits the next probe
    expect(cb.state(url())).toBe("closed");
  });

  // Offline is a browser's state: these use the browser rule (`networkErrors: "verify"`), which
  // a page gets by default (test/network.test.ts); a server counts every network error.
  it("does not count network errors while offline", async () => {
    const cb = make({ failureThreshold: 1, networkErrors: "verify" });
    vi.stubGlobal("navigator", { onLine: false });
    server.handle(hangUp);
    await rejection(cb(url()));
    await rejection(cb(url()));
    expect(cb.state(url())).toBe("closed");
    vi.stubGlobal("navigator", { onLine: true });
    await cb(elsewhere.url()); // another origin answers: the network works
    await rejection(cb(url()));
    expect(cb.state(url())).toBe("open");
  });

  it("counts slow calls when slowCallMs is set, and still returns their response", async () => {
    const realClock = createCbFetch({ failureThreshold: 1, slowCallMs: 30 });
    server.handle((req, res) => setTimeout(() => respond(200, "late")(req, res), 60));
    const response = await realClock(url());
    expect(await response.text()).toBe("late");
    expect(realClock.state(url())).toBe("open");
  });

  it("isFailure overrides the rule", async () => {
    const cb = make({ failureThreshold: 1, isFailure: (r) => r.status === 404 });
    server.handle(respond(500));
    await cb(url());
    expect(cb.state(url())).toBe("closed");
    server.handle(respond(404));
    await cb(url());
    expect(cb.state(url())).toBe("open");
  });
});

describe("fetch semantics pass through", () => {
  it("sends bodies and headers unchanged and returns the body unread", async () => {
    const cb = make();
    server.handle((_req, res, body) => respond(201, `echo:${body}`)(_req, res));
    const response = await cb(url("/items?x=1"), {
      method: "POST",
      body: JSON.stringify({ a: 1 }),
      headers: { "content-type": "application/json", "x-trace": "abc" },
    });
    expect(response.bodyUsed).toBe(false);
    expect(response.status).toBe(201);
    expect(await response.text()).toBe('echo:{"a":1}');
    const last = server.received.at(-1);
    expect(last).toMatchObject({ method: "POST", url: "/items?x=1", body: '{"a":1}' });
    expect(last?.headers["x-trace"]).toBe("abc");
    expect(last?.headers["content-type"]).toBe("application/json");
  });

  it("accepts Request objects (body untouched until sent) and URL objects", async () => {
    const cb = make();
    server.handle((_req, res, body) => respond(200, `got:${body}`)(_req, res));
    const request = new Request(url("/req"), { method: "PUT", body: "payload" });
    expect(await (await cb(request)).text()).toBe("got:payload");
    expect(server.received.at(-1)).toMatchObject({ method: "PUT", url: "/req" });
    expect(await (await cb(new URL(url("/u?q=1")))).text()).toBe("got:");
    expect(server.received.at(-1)?.url).toBe("/u?q=1");
    expect(cb.snapshot().map((s) => s.key)).toEqual([server.origin]);
  });

  it("resolves relative URLs against location where there is one", async (context) => {
    const happyDOM = (globalThis as { happyDOM?: { setURL(url: string): void } }).happyDOM;
    if (happyDOM === undefined) return context.skip(); // plain Node has no location
    happyDOM.setURL(`${server.origin}/app/page`);
    const cb = make({ failureThreshold: 1 });
    server.handle(respond(200, "relative"));
    expect(await (await cb("/api/items?x=1")).text()).toBe("relative");
    expect(server.received.at(-1)?.url).toBe("/api/items?x=1");
    expect(cb.snapshot().map((s) => s.key)).toEqual([server.origin]);
    expect(cb.state("/api")).toBe("closed");
    server.handle(respond(503));
    await cb("./other");
    expect(server.received.at(-1)?.url).toBe("/app/other");
    expect(cb.state("/anything")).toBe("open");
  });

  it("streams a large response without buffering it", async () => {
    const cb = make();
    const big = "x".repeat(2_000_000);
    server.handle(respond(200, big));
    const response = await cb(url("/big"));
    expect(response.bodyUsed).toBe(false);
    expect((await response.text()).length).toBe(big.length);
  });

  it("rethrows the caller's own errors unchanged without counting them", async () => {
    const cb = make({ failureThreshold: 1 });
    // Each rejects exactly as raw fetch does (same error type), before any request.
    const same = async (input: string, init?: RequestInit) => {
      const hits = server.hits;
      const mine = await rejection(cb(input, init));
      const raw = await rejection(fetch(input, init));
      expect(mine).toBeInstanceOf(Error);
      expect((mine as Error).constructor).toBe((raw as Error).constructor);
      expect((mine as Error).name).toBe((raw as Error).name);
      expect(server.hits).toBe(hits);
    };
    await same(url().replace("http://", "http://u:p@"));
    expect(cb.snapshot()).toEqual([]);
    await same(url(), { method: "GET", body: "x" });
    await same(url(), { headers: { "bad header": "x" } });
    await same("http://[");
    expect(cb.state(url())).toBe("closed");
  });

  it("looks up globalThis.fetch at call time", async () => {
    const cb = createCbFetch();
    const stub = vi.fn(async () => new Response("stubbed"));
    vi.stubGlobal("fetch", stub);
    expect(await (await cb("https://api.example.com/x")).text()).toBe("stubbed");
    expect(stub).toHaveBeenCalledWith("https://api.example.com/x", undefined);
  });

  it("a fetch that throws synchronously still gives a rejected promise, counted", async () => {
    const boom = new Error("boom");
    const cb = make({
      failureThreshold: 1,
      fetch: (input) => {
        if (String(input).startsWith("https://api.example.com")) throw boom;
        return Promise.resolve(new Response("elsewhere"));
      },
    });
    await cb("https://elsewhere.example/"); // another origin answers: the network works
    const pending = cb("https://api.example.com/");
    expect(pending).toBeInstanceOf(Promise);
    await expect(pending).rejects.toBe(boom);
    expect(cb.state("https://api.example.com")).toBe("open");
  });

  it("the default cbFetch instance works", async () => {
    server.handle(respond(200, "default"));
    expect(await (await cbFetch(url("/d"))).text()).toBe("default");
    expect(cbFetch.state(url())).toBe("closed");
  });
});

describe("instance API", () => {
  it("state() is closed for unknown keys and creates nothing", () => {
    const cb = make();
    expect(cb.state("https://never.example/x")).toBe("closed");
    expect(cb.state("some-key")).toBe("closed");
    expect(cb.snapshot()).toEqual([]);
  });

  it("fires statechange, reject, failure and success events", async () => {
    const cb = make({ failureThreshold: 1, openMs: 10 });
    const seen: string[] = [];
    for (const type of ["statechange", "reject", "failure", "success"] as const) {
      cb.addEventListener(type, (e) =>
        seen.push(`${e.type}:${e.previousState ? `${e.previousState}->` : ""}${e.state}`),
      );
    }
    server.handle(respond(500));
    await cb(url());
    await rejection(cb(url()));
    clock.advance(10);
    server.handle(respond(200));
    await cb(url());
    expect(seen).toEqual([
      "statechange:closed->open",
      "failure:open",
      "reject:open",
      "statechange:open->half-open",
      "statechange:half-open->closed",
      "success:closed",
    ]);
  });

  it("events carry the breaker's real state, in order, and reads fire none", async () => {
    const cb = make({ failureThreshold: 1, openMs: 10, successThreshold: 2 });
    const seen: string[] = [];
    cb.addEventListener("success", (e) => seen.push(`success:${e.state}`));
    cb.addEventListener("statechange", (e) =>
      seen.push(`${e.previousState}->${e.state}@${(e.retryAt ?? clock.t) - clock.t}`),
    );
    cb.breaker(url()).forceOpen(0);
    expect(cb.state(url())).toBe("half-open"); // due: reads as half-open...
    expect(seen).toEqual(["closed->open@0"]); // ...without a transition of its own
    clock.advance(1);
    server.handle(respond(200));
    await cb(url());
    await cb(url());
    expect(seen).toEqual([
      "closed->open@0",
      "open->half-open@0",
      "success:half-open",
      "half-open->closed@0",
      "success:closed",
    ]);
  });

  it("keyOf gives separate breakers per key", async () => {
    const cb = make({
      failureThreshold: 1,
      keyOf: (request) => new URL(request.url).pathname.split("/")[1] ?? "",
    });
    server.handle(respond(500));
    await cb(url("/a/1"));
    server.handle(respond(200));
    await expect(rejection(cb(url("/a/2")))).resolves.toBeInstanceOf(CircuitOpenError);
    expect((await cb(url("/b/1"))).status).toBe(200);
    expect(cb.state("a")).toBe("open");
    expect(cb.state("b")).toBe("closed");
  });

  it("keeps at most maxBreakers, evicting the least recently used", () => {
    const cb = make({ maxBreakers: 3 });
    cb.breaker("https://a.example");
    cb.breaker("https://b.example");
    cb.breaker("https://c.example");
    cb.breaker("https://a.example"); // a is used again
    for (let i = 0; i < 1000; i++) cb.breaker(`https://attacker-${i}.example/x`);
    expect(cb.snapshot()).toHaveLength(3);
    const bounded = make({ maxBreakers: 3 });
    for (const key of ["https://a.example", "https://b.example", "https://c.example"]) {
      bounded.breaker(key);
    }
    bounded.breaker("https://a.example");
    bounded.breaker("https://d.example"); // evicts b, the least recently used
    expect(
      bounded
        .snapshot()
        .map((s) => s.key)
        .sort(),
    ).toEqual(["https://a.example", "https://c.example", "https://d.example"]);
  });

  it("fallback answers refused calls", async () => {
    const cb = make({
      fallback: (request, error) =>
        new Response(`cached ${new URL(request.url).pathname} (${error.name})`, { status: 200 }),
    });
    cb.breaker(url()).forceOpen(1000);
    const hits = server.hits;
    const response = await cb(url("/items"));
    expect(await response.text()).toBe("cached /items (CircuitOpenError)");
    expect(server.hits).toBe(hits);
  });

  it("fallbackOrigins reroutes idempotent requests to a healthy origin", async () => {
    const backup = await startServer(respond(200, "from backup"));
    try {
      const cb = make({ fallbackOrigins: { [server.origin]: [backup.origin] } });
      cb.breaker(url()).forceOpen(1000);
      const response = await cb(url("/items?id=2"));
      expect(await response.text()).toBe("from backup");
      expect(backup.received.at(-1)?.url).toBe("/items?id=2");
      await expect(
        rejection(cb(url("/items"), { method: "POST", body: "x" })),
      ).resolves.toBeInstanceOf(CircuitOpenError);
      expect(backup.hits).toBe(1);
    } finally {
      await backup.close();
    }
  });

  it("bulkhead: maxConcurrent in flight, maxQueue waiting, the rest BulkheadFullError", async () => {
    const cb = make({ maxConcurrent: 2, maxQueue: 1 });
    const responders: Array<() => void> = [];
    server.handle((req, res) => responders.push(() => respond(200)(req, res)));
    const hits = server.hits;
    const calls = Array.from({ length: 4 }, () => cb(url("/b")).catch((e: unknown) => e));
    const overflow = await calls[3];
    expect(overflow).toBeInstanceOf(BulkheadFullError);
    expect(overflow).toMatchObject({ key: server.origin, maxConcurrent: 2, maxQueue: 1 });
    await vi.waitFor(() => expect(server.hits).toBe(hits + 2));
    responders.shift()?.();
    await vi.waitFor(() => expect(server.hits).toBe(hits + 3));
    for (const respondNow of responders.splice(0)) respondNow();
    const results = await Promise.all(calls.slice(0, 3));
    expect(results.every((r) => r instanceof Response && r.status === 200)).toBe(true);
  });

  it("close() resolves and the instance is disposable", async () => {
    const cb = make();
    await expect(cb.close()).resolves.toBeUndefined();
    expect(typeof cb[Symbol.asyncDispose]).toBe("function");
    expect(typeof cb[Symbol.dispose]).toBe("function");
    await expect(cb.ready).resolves.toBeUndefined();
  });
});

describe("exactly fetch (issue 13)", () => {
  // Waits until the server holds `n` more requests than `before`.
  const arrived = (before: number, n = 1) => vi.waitFor(() => expect(server.hits).toBe(before + n));

  it("with timeoutMs, a Request used as init sends its method, body and headers", async () => {
    const cb = make({ timeoutMs: 5000 });
    const init = new Request(url("/as-init"), {
      method: "POST",
      body: "payload",
      headers: { authorization: "Bearer t" },
    });
    expect((await cb(url("/as-init"), init)).status).toBe(200);
    expect(server.received.at(-1)).toMatchObject({
      method: "POST",
      body: "payload",
      headers: { authorization: "Bearer t" },
    });
  });

  it("with timeoutMs, init fields inherited from a prototype are sent", async () => {
    const cb = make({ timeoutMs: 5000 });
    const defaults = { method: "PUT", body: "inherited", headers: { authorization: "Bearer i" } };
    const init = Object.create(defaults) as RequestInit;
    expect((await cb(url("/inherited"), init)).status).toBe(200);
    expect(server.received.at(-1)).toMatchObject({
      method: "PUT",
      body: "inherited",
      headers: { authorization: "Bearer i" },
    });
  });

  it("with timeoutMs, the caller's signal still aborts, also where AbortSignal.any is missing", async () => {
    const any = Object.getOwnPropertyDescriptor(AbortSignal, "any");
    Object.defineProperty(AbortSignal, "any", { value: undefined, configurable: true });
    try {
      const cb = make({ failureThreshold: 1, timeoutMs: 5000 });
      server.handle(hang);
      const controller = new AbortController();
      const hits = server.hits;
      const pending = cb(url(), { signal: controller.signal });
      expect(pending).toBeInstanceOf(Promise);
      await arrived(hits);
      controller.abort();
      expect(await rejection(pending)).toMatchObject({ name: "AbortError" });
      expect(cb.breaker(url()).stats).toMatchObject({ failures: 0, ignored: 1 });
    } finally {
      if (any) Object.defineProperty(AbortSignal, "any", any);
    }
  });

  it("offline, cbfetch's own timeout does not count either", async () => {
    const cb = make({ failureThreshold: 1, timeoutMs: 30, networkErrors: "verify" });
    vi.stubGlobal("navigator", { onLine: false });
    server.handle(hang);
    expect(await rejection(cb(url()))).toMatchObject({ name: "TimeoutError" });
    expect(cb.state(url())).toBe("closed");
    expect(cb.breaker(url()).stats).toMatchObject({ failures: 0, ignored: 1 });
  });

  it("always returns a promise, also for a pass-through URL whose fetch throws synchronously", () => {
    const boom = new TypeError("sync");
    const cb = make({
      fetch: () => {
        throw boom;
      },
    });
    let pending: Promise<Response> | undefined;
    expect(() => {
      pending = cb("data:text/plain,hi");
    }).not.toThrow();
    return expect(pending).rejects.toBe(boom);
  });

  it("a Retry-After longer than the current open time extends it, exactly", async () => {
    const cb = make({ failureThreshold: 5 });
    let answer: (() => void) | undefined;
    server.handle((req, res) => {
      answer = () => respond(503, "busy", { "retry-after": "60" })(req, res);
    });
    const hits = server.hits;
    const pending = cb(url());
    await arrived(hits);
    cb.breaker(url()).forceOpen(1000);
    answer?.();
    expect((await pending).status).toBe(503);
    expect(cb.breaker(url()).retryAt).toBe(clock.t + 60_000);
    clock.advance(1000);
    expect(await rejection(cb(url()))).toMatchObject({ retryAfterMs: 59_000 });
  });

  it("events match the counters: an expired probe fires failure probe-timeout, stale outcomes fire nothing", async () => {
    const cb = make({ failureThreshold: 1, probeTimeoutMs: 1000 });
    const seen: string[] = [];
    for (const type of ["failure", "success"] as const) {
      cb.addEventListener(type, (e) => seen.push(`${type}:${e.kind ?? ""}`));
    }
    cb.breaker(url()).forceOpen(10);
    clock.advance(10);
    server.handle(hang);
    const hits = server.hits;
    const probe = rejection(cb(url())); // hangs past probeTimeoutMs
    await arrived(hits);
    clock.advance(1000);
    expect(await rejection(cb(url()))).toBeInstanceOf(CircuitOpenError);
    expect(seen).toEqual(["failure:probe-timeout"]);
    server.dropConnections();
    await probe; // its late network error is stale: not counted, no event

    cb.breaker(url()).forceClose();
    let answer: (() => void) | undefined;
    server.handle((req, res) => {
      answer = () => respond(200)(req, res);
    });
    const before = server.hits;
    const stale = cb(url());
    await arrived(before);
    cb.breaker(url()).forceOpen(); // the call in flight is now stale
    answer?.();
    expect((await stale).status).toBe(200);
    expect(seen).toEqual(["failure:probe-timeout"]);
    const stats = cb.breaker(url()).stats;
    // Two calls admitted: the probe (its expiry counted) and the stale one (ignored).
    expect(stats).toMatchObject({ failures: 1, successes: 0, ignored: 1 });
  });
});
