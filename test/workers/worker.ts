// The worker-example, as run by test/workers.test.ts inside workerd (Miniflare), plus a few
// test-only routes: a count of Durable Object calls made by this isolate, a way to wait for
// the waitUntil work of earlier requests, a clock the tests move, a Hono app using the Hono
// middleware, and routes whose Durable Object binding hangs, fails or is broken.
import { Hono } from "hono";
import { withCircuitBreaker } from "cbfetch/cloudflare";
import { circuitBreaker } from "cbfetch/hono";
import { CircuitBreakerObject as BaseObject } from "cbfetch/cloudflare/object";
import example from "../../worker-example/src/index.js";

// Time as the tests move it: every `Date.now()` of this isolate is ahead by `offset`. The
// breakers' clock follows `Date.now()` when it runs ahead, and the Durable Object runs in this
// isolate too, so both see the same time (the tests never wait for an open time to pass).
let offset = 0;
const realNow = Date.now.bind(Date);
Date.now = () => realNow() + offset;

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
  /** When the object's alarm is set for (epoch ms), or null. */
  async alarmAt(): Promise<number | null> {
    const storage = this.ctx.storage as unknown as { getAlarm(): Promise<number | null> };
    return storage.getAlarm();
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

/** `stub`, with each of its RPC calls counted by `count`. */
function countingStub(stub: Record<string, unknown>, count: () => void): Record<string, unknown> {
  return new Proxy(stub, {
    get(target, property) {
      const value = target[property as string];
      if (typeof property !== "string" || property === "then" || typeof value !== "function") {
        return value;
      }
      return (...args: unknown[]) => {
        count();
        // Not value.apply(): on an RPC stub, `apply` would be a remote property too.
        return Reflect.apply(value, target, args);
      };
    },
  });
}

let doCalls = 0;
let counted: Namespace | undefined;
/** The namespace, counting every RPC call made on the stubs it hands out. */
function counting(namespace: Namespace): Namespace {
  return {
    idFromName: (name) => namespace.idFromName(name),
    get: (id, options) => countingStub(namespace.get(id, options), () => doCalls++),
  };
}
const unreachable: Namespace = {
  idFromName: (name) => name,
  get() {
    throw new Error("Durable Object unreachable");
  },
};

/**
 * The namespace, with calls of `method` hanging: the first `times` of them. Like a real hung
 * RPC call, one keeps the request waiting on I/O (a long timer here): a promise that waits on
 * nothing would make workerd end the request at once ("will never generate a response").
 */
function hanging(namespace: Namespace, method: string, times = Infinity): Namespace {
  let hung = 0;
  return {
    idFromName: (name) => namespace.idFromName(name),
    get(id, options) {
      return new Proxy(namespace.get(id, options), {
        get(target, property) {
          if (property === method && hung < times) {
            return () => {
              hung++;
              return new Promise((resolve) => setTimeout(resolve, 3_600_000));
            };
          }
          return target[property as string];
        },
      });
    },
  };
}

// The waitUntil work of every request (the middleware hands it the instance's flush(): every
// write in flight), so a test can wait for it instead of sleeping.
const pendingWork = new Set<Promise<unknown>>();
function recording(ctx: Ctx): Ctx {
  return {
    waitUntil(promise) {
      pendingWork.add(promise);
      const done = () => pendingWork.delete(promise);
      promise.then(done, done);
      ctx.waitUntil(promise);
    },
    passThroughOnException: () => ctx.passThroughOnException(),
  };
}

const hono = new Hono<{ Bindings: Env }>();
hono.use("*", circuitBreaker({ envPrefix: "CB_" }));
hono.get("/hono/api/*", (c) =>
  c.var.cbFetch(new URL(c.req.path.slice("/hono/api".length), c.env.UPSTREAM)),
);

/** A middleware whose handler proxies the request's path after `prefix` to the upstream. */
const proxy = (prefix: string, options: Parameters<typeof withCircuitBreaker>[1]) =>
  withCircuitBreaker<Env>(
    async (request, env, _ctx, cbFetch) =>
      cbFetch(new URL(new URL(request.url).pathname.slice(prefix.length) || "/", env.UPSTREAM)),
    options,
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

// The first report of this route's isolate hangs forever.
let hungReport: Namespace | undefined;
const hung = proxy("/__test/hung", { keyOf: () => "hung" });

// Keys "once/<path>": the first report hangs, every later call answers.
let reportHangingOnce: Namespace | undefined;
const once = proxy("/__test/once", { keyOf: (request) => `once${new URL(request.url).pathname}` });

// Every probe lease call hangs.
let leaseHanging: Namespace | undefined;
const hungLease = proxy("/__test/hung-lease", { keyOf: () => "hung-lease", timeoutMs: 500 });

// An object binding that always throws, counting the calls made to it.
let failingCalls = 0;
const failingNamespace: Namespace = {
  idFromName: (name) => name,
  get() {
    failingCalls++;
    throw new Error("Durable Object overloaded");
  },
};
const failing = proxy("/__test/failing", { keyOf: () => "failing" });

// The location hints the store passes when it gets a stub.
const hints: unknown[] = [];
const hinted = withCircuitBreaker<Env>(
  async (_request, env, _ctx, cbFetch) => cbFetch(new URL("/hinted", env.UPSTREAM)),
  { keyOf: () => "hinted", locationHint: "weur" },
);

export default {
  async fetch(request: Request, env: Env, executionCtx: Ctx): Promise<Response> {
    const url = new URL(request.url);
    const ctx = recording(executionCtx);
    counted ??= counting(env.CIRCUIT_BREAKER);
    if (url.pathname === "/__test/do-calls") return Response.json({ calls: doCalls });
    if (url.pathname === "/__test/settle") {
      await Promise.allSettled([...pendingWork]);
      return new Response("settled");
    }
    if (url.pathname === "/__test/clock") {
      offset += Number(url.searchParams.get("advance") ?? 0);
      return Response.json({ now: Date.now(), offset });
    }
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
      // A Worker that builds its middleware inside the handler, on every request: its name
      // finds the state of the previous requests.
      const perRequest = withCircuitBreaker<Env>(
        async (_request, e, _ctx, cbFetch) => cbFetch(new URL("/per-request", e.UPSTREAM)),
        { name: "per-request", keyOf: () => "per-request", failureThreshold: 3 },
      );
      return perRequest.fetch(request, { ...env, CIRCUIT_BREAKER: counted }, ctx);
    }
    if (url.pathname === "/__test/hinted") {
      const recordingHints: Namespace = {
        idFromName: (name) => env.CIRCUIT_BREAKER.idFromName(name),
        get(id, options?: unknown) {
          hints.push(options);
          return env.CIRCUIT_BREAKER.get(id);
        },
      };
      await hinted.fetch(request, { ...env, CIRCUIT_BREAKER: recordingHints }, ctx);
      return Response.json(hints);
    }
    if (url.pathname.startsWith("/__test/hung-lease")) {
      leaseHanging ??= hanging(counted, "acquireProbe");
      return hungLease.fetch(request, { ...env, CIRCUIT_BREAKER: leaseHanging }, ctx);
    }
    if (url.pathname.startsWith("/__test/hung")) {
      hungReport ??= hanging(env.CIRCUIT_BREAKER, "report", 1);
      return hung.fetch(request, { ...env, CIRCUIT_BREAKER: hungReport }, ctx);
    }
    if (url.pathname.startsWith("/__test/once/")) {
      reportHangingOnce ??= hanging(env.CIRCUIT_BREAKER, "report", 1);
      return once.fetch(request, { ...env, CIRCUIT_BREAKER: reportHangingOnce }, ctx);
    }
    return example.fetch(request, { ...env, CIRCUIT_BREAKER: counted } as never, ctx);
  },
};
