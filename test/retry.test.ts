import { describe, expect, it } from "vitest";
import { CircuitOpenError, createCbFetch, type CbFetchOptions } from "../src/index.js";
import type { CircuitEvent } from "../src/fetch/events.js";
import { hang, hangUp, rejection, respond, type Handler, useServer } from "./helpers/server.js";

// DESIGN §8 against a real server on 127.0.0.1 whose answers are scripted per request.
const server = useServer();
/** Another origin that answers: the network works, so network errors count (DESIGN §2). */
const elsewhere = useServer();

/** Answers the n-th request (from 0) with `script[n]`, and the last entry after that. */
function script(...handlers: Handler[]): Handler {
  let n = 0;
  return (req, res, body) =>
    (handlers[Math.min(n++, handlers.length - 1)] as Handler)(req, res, body);
}

/** Requests the server got during `run`. */
async function hitsDuring(run: () => Promise<unknown>): Promise<number> {
  const before = server.hits;
  await run();
  return server.hits - before;
}

/** A retrying instance that waits ~nothing (delayMs 1, random 0) and never trips. */
function fast(retry: CbFetchOptions["retry"] = 2, options: CbFetchOptions = {}) {
  return createCbFetch({ failureThreshold: 1000, random: () => 0, retry, ...options });
}

const ok = respond(200, "ok");

describe("retry: what is retried", () => {
  it("is off by default: one attempt, as fetch", async () => {
    server.handle(respond(503));
    const cb = createCbFetch({ failureThreshold: 1000 });
    expect(await hitsDuring(() => cb(server.url()))).toBe(1);
  });

  it("retries 408, 429, 500, 502, 503, 504 up to `limit` and returns the first success", async () => {
    for (const status of [408, 429, 500, 502, 503, 504]) {
      server.handle(script(respond(status), respond(status), ok));
      const cb = fast(2);
      let response: Response | undefined;
      expect(await hitsDuring(async () => (response = await cb(server.url())))).toBe(3);
      expect(response?.status).toBe(200);
      expect(await response?.text()).toBe("ok");
    }
  });

  it("returns the last failing response once `limit` retries are spent, its body intact", async () => {
    server.handle(respond(502, "bad gateway"));
    const cb = fast({ limit: 3, delayMs: 1 });
    let response: Response | undefined;
    expect(await hitsDuring(async () => (response = await cb(server.url())))).toBe(4);
    expect(response?.status).toBe(502);
    expect(await response?.text()).toBe("bad gateway");
  });

  it("does not retry other statuses (404, 501) or a success", async () => {
    for (const status of [200, 404, 501]) {
      server.handle(respond(status));
      expect(await hitsDuring(() => fast(2)(server.url()))).toBe(1);
    }
  });

  it("follows `statusCodes` when given", async () => {
    server.handle(script(respond(404), ok));
    const cb = fast({ statusCodes: [404] });
    expect(await hitsDuring(() => cb(server.url()))).toBe(2);
    server.handle(respond(503));
    expect(await hitsDuring(() => cb(server.url()))).toBe(1);
  });

  it("retries network errors, and rethrows the last one", async () => {
    server.handle(script(hangUp, ok));
    const cb = fast(2);
    expect((await cb(server.url())).status).toBe(200);
    server.handle(hangUp);
    let error: unknown;
    expect(await hitsDuring(async () => (error = await rejection(cb(server.url()))))).toBe(3);
    expect(error).toBeInstanceOf(TypeError);
  });

  it("retries cbfetch's own timeoutMs", async () => {
    server.handle(script(hang, ok));
    const cb = fast(1, { timeoutMs: 50 });
    const reasons: unknown[] = [];
    cb.addEventListener("retry", (e) => reasons.push(e.reason));
    expect((await cb(server.url())).status).toBe(200);
    expect(reasons).toEqual(["timeout"]);
  });

  it("never retries the caller's abort or the caller's mistakes", async () => {
    server.handle(hang);
    const cb = fast(2);
    const controller = new AbortController();
    const pending = cb(server.url(), { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    expect(await rejection(pending)).toMatchObject({ name: "AbortError" });
    server.dropConnections();
    server.handle(respond(503));
    // A GET with a body and a header with a newline: fetch's TypeErrors, before any request.
    expect(await hitsDuring(() => rejection(cb(server.url(), { method: "GET", body: "x" })))).toBe(
      0,
    );
    expect(
      await hitsDuring(() => rejection(cb(server.url(), { headers: { "x-bad": "a\nb" } }))),
    ).toBe(0);
    expect(cb.snapshot()[0]?.retries).toBe(0);
  });
});

describe("retry: idempotency", () => {
  it("retries GET, HEAD, OPTIONS, PUT and DELETE, not POST or PATCH", async () => {
    server.handle(respond(503));
    const cb = fast({ limit: 1, budget: false });
    for (const method of ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "POST", "PATCH"]) {
      const hits = await hitsDuring(() => cb(server.url(), { method }));
      expect([method, hits]).toEqual([method, method === "POST" || method === "PATCH" ? 1 : 2]);
    }
  });

  it("retries POST and PATCH that carry an Idempotency-Key, body and all", async () => {
    server.handle(script(respond(503), ok));
    const cb = fast(1);
    const headers = { "Idempotency-Key": "k-1" };
    expect((await cb(server.url(), { method: "POST", headers, body: "payload" })).status).toBe(200);
    expect(server.received.slice(-2).map((r) => [r.method, r.body])).toEqual([
      ["POST", "payload"],
      ["POST", "payload"],
    ]);
    server.handle(script(respond(503), ok));
    const request = new Request(server.url(), { method: "PATCH", headers, body: "patch" });
    expect(await hitsDuring(() => cb(request))).toBe(2);
    expect(server.received.at(-1)?.body).toBe("patch");
  });

  it("never retries a ReadableStream body", async () => {
    server.handle(respond(503));
    const cb = fast(2);
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("stream"));
        controller.close();
      },
    });
    const init = { method: "PUT", body, duplex: "half" } as RequestInit;
    expect(await hitsDuring(() => cb(server.url(), init))).toBe(1);
  });

  it("replays a Request from copies and reads the caller's own body only when needed", async () => {
    const cb = fast(2);
    server.handle(ok);
    const once = new Request(server.url(), { method: "PUT", body: "data" });
    await cb(once);
    expect(once.bodyUsed).toBe(false); // the first attempt sent a copy and succeeded

    server.handle(script(respond(503), respond(503), ok));
    const thrice = new Request(server.url(), { method: "PUT", body: "data" });
    expect((await cb(thrice)).status).toBe(200);
    expect(thrice.bodyUsed).toBe(true); // the last possible attempt sends the original
    expect(server.received.slice(-3).map((r) => r.body)).toEqual(["data", "data", "data"]);

    // With retry off, the Request is passed through as is (never cloned).
    const plain = createCbFetch();
    server.handle(ok);
    const passed = new Request(server.url(), { method: "PUT", body: "data" });
    await plain(passed);
    expect(passed.bodyUsed).toBe(true);
  });
});

describe("retry: waits", () => {
  it("waits full jitter: random × min(maxDelayMs, delayMs · 2^n)", async () => {
    server.handle(respond(503));
    const draws = [0.5, 1, 1];
    const cb = createCbFetch({
      failureThreshold: 1000,
      random: () => draws.shift() ?? 0,
      retry: { limit: 3, delayMs: 10, maxDelayMs: 30 },
    });
    const delays: unknown[] = [];
    cb.addEventListener("retry", (e) => delays.push(e.delayMs));
    await cb(server.url());
    expect(delays).toEqual([5, 20, 30]); // 0.5 × 10, 1 × 20, 1 × min(30, 40)
  });

  it("waits a Retry-After exactly when it is within maxRetryAfterMs", async () => {
    server.handle(script(respond(429, "slow down", { "retry-after": "1" }), ok));
    const cb = fast(2, { respectRetryAfter: false });
    const delays: unknown[] = [];
    cb.addEventListener("retry", (e) => delays.push(e.delayMs));
    const started = performance.now();
    expect((await cb(server.url())).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(990);
    expect(delays).toEqual([1000]);
  });

  it("returns a response at once when its Retry-After is longer than maxRetryAfterMs", async () => {
    server.handle(respond(503, "later", { "retry-after": "120" }));
    const cb = fast({ maxRetryAfterMs: 60_000 });
    const started = performance.now();
    let response: Response | undefined;
    expect(await hitsDuring(async () => (response = await cb(server.url())))).toBe(1);
    expect(response?.status).toBe(503);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it("after a 503 with Retry-After, the retry after exactly that long is the breaker's probe", async () => {
    server.handle(script(respond(503, "busy", { "retry-after": "1" }), ok));
    const cb = createCbFetch({ retry: 1, jitter: 0 });
    expect((await cb(server.url())).status).toBe(200);
    expect(cb.state(server.url())).toBe("closed");
  });

  it("ends a wait at once when the caller aborts", async () => {
    server.handle(respond(503));
    const cb = createCbFetch({ failureThreshold: 1000, random: () => 1, retry: { delayMs: 5000 } });
    const controller = new AbortController();
    cb.addEventListener("retry", () => setTimeout(() => controller.abort(), 10));
    const started = performance.now();
    const error = await rejection(cb(server.url(), { signal: controller.signal }));
    expect(error).toMatchObject({ name: "AbortError" });
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it("totalTimeoutMs bounds attempts and waits together", async () => {
    // A hung attempt is aborted when the total is up, with a TimeoutError: cbfetch's own
    // deadline, so a timeout that counts (issue 23: it used to pass as the caller's abort).
    server.handle(hang);
    const cb = fast(2, { totalTimeoutMs: 100 });
    const started = performance.now();
    const error = await rejection(cb(server.url()));
    expect(error).toMatchObject({ name: "TimeoutError" });
    expect(performance.now() - started).toBeLessThan(1000);
    expect(cb.snapshot()[0]).toMatchObject({ failures: 1, ignored: 0 });
    server.dropConnections();

    // A wait that would pass the total is not started: the failure comes back at once.
    server.handle(respond(503));
    const slow = createCbFetch({
      failureThreshold: 1000,
      random: () => 1,
      retry: { delayMs: 1000 },
      totalTimeoutMs: 500,
    });
    const began = performance.now();
    expect(await hitsDuring(() => slow(server.url()))).toBe(1);
    expect(performance.now() - began).toBeLessThan(400);
  });

  it("totalTimeoutMs alone bounds a single attempt", async () => {
    server.handle(hang);
    const cb = createCbFetch({ totalTimeoutMs: 50 });
    expect(await rejection(cb(server.url()))).toMatchObject({ name: "TimeoutError" });
  });
});

describe("retry: the breaker", () => {
  it("each retry is a call through the breaker: the retries trip it", async () => {
    server.handle(respond(503));
    const cb = createCbFetch({ failureThreshold: 3, random: () => 0, retry: 5 });
    let response: Response | undefined;
    expect(await hitsDuring(async () => (response = await cb(server.url())))).toBe(3);
    expect(cb.state(server.url())).toBe("open");
    // The loop ended with the last real outcome, not a CircuitOpenError.
    expect(response?.status).toBe(503);
    expect(await rejection(cb(server.url()))).toBeInstanceOf(CircuitOpenError);
  });

  it("a retry the breaker refuses ends the loop with the last network error", async () => {
    server.handle(hangUp);
    const cb = createCbFetch({ failureThreshold: 2, random: () => 0, retry: 5 });
    await cb(elsewhere.url());
    let error: unknown;
    expect(await hitsDuring(async () => (error = await rejection(cb(server.url()))))).toBe(2);
    expect(error).toBeInstanceOf(TypeError);
  });

  it("a refused retry gets no fallback: the caller sees the origin's answer", async () => {
    server.handle(respond(503, "origin"));
    let fallbacks = 0;
    const cb = createCbFetch({
      failureThreshold: 1,
      random: () => 0,
      retry: 2,
      fallback: () => (fallbacks++, new Response("fallback")),
    });
    expect(await (await cb(server.url())).text()).toBe("origin");
    expect(fallbacks).toBe(0);
  });

  it("a refused first attempt is the caller's CircuitOpenError, as without retry", async () => {
    const cb = fast(2);
    cb.breaker(server.url()).forceOpen(60_000);
    expect(await hitsDuring(() => rejection(cb(server.url())))).toBe(0);
    expect(await rejection(cb(server.url()))).toBeInstanceOf(CircuitOpenError);
  });
});

describe("retry: the budget", () => {
  it("100 logical requests with limit 2 against a dead origin make at most 123 attempts", async () => {
    server.handle(respond(503));
    const cb = fast({ limit: 2, delayMs: 1 });
    const hits = await hitsDuring(async () => {
      for (let i = 0; i < 100; i++) await cb(server.url());
    });
    expect(hits).toBe(123); // 100 first attempts + 3 + 20 % of 100 retries
    expect(cb.snapshot()[0]?.retries).toBe(23);
  });

  it("without the budget, every request makes its limit", async () => {
    server.handle(respond(503));
    const cb = fast({ limit: 2, delayMs: 1, budget: false });
    const hits = await hitsDuring(async () => {
      for (let i = 0; i < 20; i++) await cb(server.url());
    });
    expect(hits).toBe(60);
  });

  it("slides: retries come back as the window moves on (injected clock)", async () => {
    server.handle(respond(503));
    let now = 1_000_000;
    const cb = fast(
      { limit: 1, delayMs: 1, budget: { minRetries: 1, ratio: 0, windowMs: 1000 } },
      { clock: { now: () => now } },
    );
    expect(await hitsDuring(() => cb(server.url()))).toBe(2);
    expect(await hitsDuring(() => cb(server.url()))).toBe(1); // the 1 retry of this window is spent
    now += 1000;
    expect(await hitsDuring(() => cb(server.url()))).toBe(2);
  });

  it("is per key: one origin's retries do not spend another's", async () => {
    server.handle(respond(503));
    const cb = fast({ limit: 1, delayMs: 1, budget: { minRetries: 1, ratio: 0 } });
    const other = server.url().replace("127.0.0.1", "localhost");
    expect(await hitsDuring(() => cb(server.url()))).toBe(2);
    expect(await hitsDuring(() => cb(server.url()))).toBe(1);
    expect(await hitsDuring(() => cb(other))).toBe(2);
  });
});

describe("retry: events, stats, options", () => {
  it("fires a retry event per retry and counts retries in snapshot()", async () => {
    server.handle(script(respond(503), hangUp, ok));
    const cb = fast(2);
    const seen: Array<Partial<CircuitEvent>> = [];
    cb.addEventListener("retry", (e) => {
      seen.push({ key: e.key, attempt: e.attempt, delayMs: e.delayMs, reason: e.reason });
    });
    await cb(server.url());
    expect(seen).toEqual([
      { key: server.origin, attempt: 1, delayMs: 0, reason: "status" },
      { key: server.origin, attempt: 2, delayMs: 0, reason: "error" },
    ]);
    expect(cb.snapshot()).toEqual([expect.objectContaining({ key: server.origin, retries: 2 })]);
  });

  it("refuses invalid retry options at creation, naming the option and the value", () => {
    const bad: Array<[unknown, RegExp]> = [
      [-1, /"retry.limit" must be an integer >= 0, got -1/],
      [1.5, /"retry.limit".*got 1.5/],
      ["2", /"retry" must be an object, got "2"/],
      [{ limit: 2, delay: 5 }, /unknown option "delay" in retry/],
      [{ delayMs: -5 }, /"retry.delayMs".*got -5/],
      [{ maxDelayMs: Infinity }, /"retry.maxDelayMs".*got Infinity/],
      [{ maxRetryAfterMs: 2 ** 31 }, /"retry.maxRetryAfterMs".*got 2147483648/],
      [{ methods: "GET" }, /"retry.methods" must be an array of strings, got "GET"/],
      [{ statusCodes: [503, "504"] }, /"retry.statusCodes" must be an array of numbers/],
      [{ budget: true }, /"retry.budget" must be an object, got true/],
      [{ budget: { ratio: -0.1 } }, /"retry.budget.ratio".*got -0.1/],
      [{ budget: { windowMs: 0 } }, /"retry.budget.windowMs" must be a number > 0, got 0/],
      [{ budget: { tokens: 1 } }, /unknown option "tokens" in retry.budget/],
    ];
    for (const [retry, message] of bad) {
      expect(() => createCbFetch({ retry } as CbFetchOptions)).toThrow(message);
    }
    expect(() => createCbFetch({ totalTimeoutMs: 0 })).toThrow(/"totalTimeoutMs".*got 0/);
    expect(() => createCbFetch({ retry: { methods: ["get"], budget: false } })).not.toThrow();
  });
});
