// The worker-example, as run by test/workers.test.ts inside workerd (Miniflare), plus a few
// test-only routes: a count of Durable Object calls made by this isolate, a Hono app using
// the Hono middleware, and a route whose Durable Object binding is broken.
import { Hono } from "hono";
import { withCircuitBreaker } from "cbfetch/cloudflare";
import { circuitBreaker } from "cbfetch/hono";
import { CircuitBreakerObject as BaseObject } from "cbfetch/cloudflare/object";
import example from "../../worker-example/src/index.js";

/** The example's object, plus a way for the test to plant garbage in its storage. */
export class CircuitBreakerObject extends BaseObject<Env> {
  // The tests shorten the idle time after which the object deletes its storage.
  protected override idleMs = Number(this.env.TEST_IDLE_MS ?? 3_600_000);
  async putRaw(key: string, value: unknown): Promise<void> {
    await this.ctx.storage.put(`record:${key}`, value);
  }
  /** How many keys the object stores (0 once its alarm has deleted them). */
  async rows(): Promise<number> {
    return (await this.ctx.storage.list({ prefix: "record:" })).size;
  }
}

interface Namespace {
  idFromName(name: string): unknown;
  get(id: unknown, options?: unknown): Record<string, unknown>;
}
interface Env {
  UPSTREAM: string;
  CIRCUIT_BREAKER: Namespace;
  TEST_IDLE_MS?: string;
}
interface Ctx {
  waitUntil(promise: Promise<unknown>): void;
  passThroughOnException(): void;
}

let doCalls = 0;
let counted: Namespace | undefined;
/**
 * The namespace, counting the stubs it hands out: the store takes a fresh stub for each RPC
 * call it makes, so this counts Durable Object calls.
 */
function counting(namespace: Namespace): Namespace {
  return {
    idFromName: (name) => namespace.idFromName(name),
    get(id) {
      doCalls++;
      return namespace.get(id);
    },
  };
}
const unreachable: Namespace = {
  idFromName: (name) => name,
  get() {
    throw new Error("Durable Object unreachable");
  },
};

const hono = new Hono<{ Bindings: Env }>();
hono.use("*", circuitBreaker({ envPrefix: "CB_" }));
hono.get("/hono/api/*", (c) =>
  c.var.cbFetch(new URL(c.req.path.slice("/hono/api".length), c.env.UPSTREAM)),
);

// One Durable Object per key and location: the key's object is named "<colo>|<origin>".
const perColo = withCircuitBreaker<Env>(
  async (_request, env, _ctx, cbFetch) => cbFetch(new URL("/colo", env.UPSTREAM)),
  { scope: "colo", colo: "TST" },
);

const broken = withCircuitBreaker<Env>(async (_request, env, _ctx, cbFetch) =>
  cbFetch(new URL("/broken", env.UPSTREAM)),
);

// Calls made in waitUntil work, after the response: their changes must still be reported.
const background = withCircuitBreaker<Env>(
  async (_request, env, ctx, cbFetch) => {
    ctx.waitUntil(
      (async () => {
        for (let i = 0; i < 3; i++) {
          await cbFetch(new URL("/background", env.UPSTREAM)).catch(() => {});
        }
      })(),
    );
    return new Response("accepted", { status: 202 });
  },
  { keyOf: () => "background" },
);

/** The namespace, with the first report call of each isolate hanging forever. */
let hungReports = 0;
function hangingFirstReport(namespace: Namespace): Namespace {
  return {
    idFromName: (name) => namespace.idFromName(name),
    get(id) {
      const stub = namespace.get(id);
      return new Proxy(stub, {
        get(target, property) {
          if (property === "report" && hungReports++ === 0) return () => new Promise(() => {});
          return target[property as string];
        },
      });
    },
  };
}
const hung = withCircuitBreaker<Env>(
  async (request, env, _ctx, cbFetch) =>
    cbFetch(new URL(new URL(request.url).pathname, env.UPSTREAM)),
  { keyOf: () => "hung" },
);

// An object binding that always throws, counting the calls made to it.
let failingCalls = 0;
const failingNamespace: Namespace = {
  idFromName: (name) => name,
  get() {
    failingCalls++;
    throw new Error("Durable Object overloaded");
  },
};
const failing = withCircuitBreaker<Env>(
  async (request, env, _ctx, cbFetch) =>
    cbFetch(new URL(new URL(request.url).pathname, env.UPSTREAM)),
  { keyOf: () => "failing" },
);

// The location hints the store passes when it gets a stub.
const hints: unknown[] = [];
const hinted = withCircuitBreaker<Env>(
  async (_request, env, _ctx, cbFetch) => cbFetch(new URL("/hinted", env.UPSTREAM)),
  { keyOf: () => "hinted", locationHint: "weur" },
);

export default {
  async fetch(request: Request, env: Env, ctx: Ctx): Promise<Response> {
    const url = new URL(request.url);
    counted ??= counting(env.CIRCUIT_BREAKER);
    if (url.pathname === "/__test/do-calls") return Response.json({ calls: doCalls });
    if (url.pathname.startsWith("/hono/")) {
      return hono.fetch(request, { ...env, CIRCUIT_BREAKER: counted }, ctx as never);
    }
    if (url.pathname === "/__test/colo") return perColo.fetch(request, env, ctx);
    if (url.pathname === "/__test/broken") {
      return broken.fetch(request, { ...env, CIRCUIT_BREAKER: unreachable }, ctx);
    }
    if (url.pathname === "/__test/background") return background.fetch(request, env, ctx);
    if (url.pathname.startsWith("/__test/failing")) {
      if (url.searchParams.has("calls")) return Response.json({ calls: failingCalls });
      return failing.fetch(request, { ...env, CIRCUIT_BREAKER: failingNamespace }, ctx);
    }
    if (url.pathname === "/__test/per-request") {
      // A Worker that builds its middleware inside the handler, on every request.
      const perRequest = withCircuitBreaker<Env>(
        async (_request, e, _ctx, cbFetch) => cbFetch(new URL("/per-request", e.UPSTREAM)),
        { keyOf: () => "per-request", failureThreshold: 3 },
      );
      return perRequest.fetch(request, { ...env, CIRCUIT_BREAKER: counted }, ctx);
    }
    if (url.pathname === "/__test/hinted") {
      const recording: Namespace = {
        idFromName: (name) => env.CIRCUIT_BREAKER.idFromName(name),
        get(id, options?: unknown) {
          hints.push(options);
          return env.CIRCUIT_BREAKER.get(id);
        },
      };
      await hinted.fetch(request, { ...env, CIRCUIT_BREAKER: recording }, ctx);
      return Response.json(hints);
    }
    if (url.pathname.startsWith("/__test/hung")) {
      return hung.fetch(
        request,
        { ...env, CIRCUIT_BREAKER: hangingFirstReport(env.CIRCUIT_BREAKER) },
        ctx,
      );
    }
    return example.fetch(request, { ...env, CIRCUIT_BREAKER: counted } as never, ctx);
  },
};
