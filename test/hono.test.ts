import { Hono } from "hono";
import { afterEach, describe, expect, it, vi } from "vitest";
import { circuitBreaker } from "../src/hono/index.js";
import { CircuitOpenError, memoryStore } from "../src/index.js";
import { seeded } from "../bench/overload-model.mjs";
import { ManualClock } from "./helpers/clock.js";
import { respond, useServer } from "./helpers/server.js";

// The Hono middleware the way Hono apps are tested: app.request(), in plain Node, with no
// ExecutionContext and no Durable Object (state per isolate), against a real local server.
const server = useServer();
afterEach(() => vi.restoreAllMocks());
let apps = 0;

/** An app whose /items proxies the server; each app its own breakers (its own envPrefix). */
function app(onError?: Parameters<Hono["onError"]>[0]) {
  const hono = new Hono();
  // No generics: c.var.cbFetch is typed by the middleware.
  hono.use(
    circuitBreaker({ failureThreshold: 2, openMs: 60_000, jitter: 0, envPrefix: `APP${++apps}_` }),
  );
  hono.get("/items", (c) => c.var.cbFetch(`${server.origin}/items`));
  if (onError) hono.onError(onError);
  return hono;
}

describe("cbfetch/hono", () => {
  it("works under app.request() with no ExecutionContext", async () => {
    const res = await app().request("/items");
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("status 200");
  });

  it("a fast-fail is a 503 with Retry-After, not logged as an application error", async () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    const hono = app();
    server.handle(respond(503));
    for (let i = 0; i < 2; i++) expect((await hono.request("/items")).status).toBe(503);
    const hits = server.hits;
    const res = await hono.request("/items");
    expect(res.status).toBe(503);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(59);
    expect(res.headers.get("cbfetch-circuit")).toBe("open");
    expect(await res.text()).not.toContain(server.origin);
    expect(server.hits).toBe(hits);
    expect(error).not.toHaveBeenCalled();
    // The transition is logged as one structured line.
    expect(log).toHaveBeenCalledTimes(1);
    expect(JSON.parse(String(log.mock.calls[0]?.[0]))).toMatchObject({
      key: server.origin,
      from: "closed",
      to: "open",
    });
  });

  it("a throttled call is a 503 with Retry-After and cbfetch-circuit: throttled, unlogged", async () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    const hono = new Hono();
    // A clock that stands still: the throttle's window holds every call, however slow the machine.
    const clock = new ManualClock();
    hono.use(circuitBreaker({ throttle: true, clock, random: seeded(1), envPrefix: "THROTTLED_" }));
    hono.get("/items", (c) => c.var.cbFetch(`${server.origin}/items`));
    let n = 0;
    server.handle((req, res) => respond(n++ % 3 === 0 ? 200 : 503)(req, res));
    let throttled: Response | undefined;
    for (let i = 0; i < 200 && throttled === undefined; i++) {
      const hits = server.hits;
      const res = await hono.request("/items");
      if (res.headers.get("cbfetch-circuit") !== null) {
        throttled = res;
        expect(server.hits).toBe(hits); // nothing was sent
      }
    }
    expect(throttled?.status).toBe(503);
    expect(throttled?.headers.get("cbfetch-circuit")).toBe("throttled");
    expect(throttled?.headers.get("retry-after")).toBe("1"); // the 1 s window
    expect(await throttled?.text()).toBe(
      "Service Unavailable: cbfetch refused (throttled), no request was sent\n",
    );
    expect(error).not.toHaveBeenCalled();
  });

  it("leaves the app's own onError alone: it sees the CircuitOpenError and its answer stands", async () => {
    vi.spyOn(console, "log").mockImplementation(() => {});
    const seen: unknown[] = [];
    const hono = app((err, c) => {
      seen.push(err);
      return c.text("custom", 502);
    });
    server.handle(respond(503));
    for (let i = 0; i < 2; i++) await hono.request("/items");
    const res = await hono.request("/items");
    expect(res.status).toBe(502);
    expect(await res.text()).toBe("custom");
    expect(seen.at(-1)).toBeInstanceOf(CircuitOpenError);
  });

  it("two middlewares made by one factory keep their own breakers", async () => {
    vi.spyOn(console, "log").mockImplementation(() => {});
    // The same source text, different captures: one tenant's outage is not the other's.
    const perTenant = (tenant: string) =>
      circuitBreaker({
        failureThreshold: 3,
        envPrefix: false,
        keyOf: (request) => `${tenant}:${new URL(request.url).origin}`,
      });
    const hono = new Hono();
    hono.use("/a/*", perTenant("a"));
    hono.use("/b/*", perTenant("b"));
    hono.get("/:tenant/items", (c) => c.var.cbFetch(`${server.origin}/items`));
    server.handle(respond(503));
    for (let i = 0; i < 3; i++) expect((await hono.request("/a/items")).status).toBe(503);
    expect((await hono.request("/a/items")).headers.get("cbfetch-circuit")).toBe("open");
    const hits = server.hits;
    const b = await hono.request("/b/items");
    expect(b.headers.get("cbfetch-circuit")).toBeNull(); // tenant b's first call goes out
    expect(server.hits).toBe(hits + 1);
  });

  it("options built per request reach one state through a name", async () => {
    vi.spyOn(console, "log").mockImplementation(() => {});
    const hono = new Hono();
    // A common Hono shape: the middleware (and its store) made on every request.
    hono.use("*", (c, next) =>
      circuitBreaker({
        name: "api",
        store: memoryStore(),
        failureThreshold: 2,
        envPrefix: false,
      })(c, next),
    );
    hono.get("/items", (c) => c.var.cbFetch(`${server.origin}/items`));
    server.handle(respond(503));
    for (let i = 0; i < 2; i++) expect((await hono.request("/items")).status).toBe(503);
    const hits = server.hits;
    for (let i = 0; i < 10; i++) {
      expect((await hono.request("/items")).headers.get("cbfetch-circuit")).toBe("open");
    }
    expect(server.hits).toBe(hits);
  });

  it("a bad name throws where the middleware is made, naming the option", () => {
    expect(() => circuitBreaker({ name: "" })).toThrow(/option "name"/);
    expect(() => circuitBreaker({ name: 42 as unknown as string })).toThrow(TypeError);
  });

  it("a middleware built per request without a name: one warning that says what to do", async () => {
    vi.spyOn(console, "log").mockImplementation(() => {});
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const hono = new Hono();
    hono.use("*", (c, next) =>
      circuitBreaker({ store: memoryStore(), failureThreshold: 2, envPrefix: false })(c, next),
    );
    hono.get("/items", (c) => c.var.cbFetch(`${server.origin}/items`));
    for (let i = 0; i < 100; i++) expect((await hono.request("/items")).status).toBe(200);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]?.[0])).toMatch(/per request.*`name`/s);
  });
});
