// The worker-example, as run by test/workers.test.ts inside workerd (Miniflare), plus a few
// test-only routes: a count of Durable Object calls made by this isolate, a Hono app using
// the Hono middleware, and a route whose Durable Object binding is broken.
import { Hono } from "hono";
import {
  CircuitBreakerObject as BaseObject,
  circuitBreaker,
  withCircuitBreaker,
} from "cbfetch/cloudflare";
import type { CbFetch } from "cbfetch";
import example from "../../worker-example/src/index.js";

/** The example's object, plus a way for the test to plant garbage in its storage. */
export class CircuitBreakerObject extends BaseObject {
  async putRaw(value: unknown): Promise<void> {
    await this.ctx.storage.put("record", value);
  }
}

interface Namespace {
  idFromName(name: string): unknown;
  get(id: unknown): Record<string, unknown>;
}
interface Env {
  UPSTREAM: string;
  CIRCUIT_BREAKER: Namespace;
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

const hono = new Hono<{ Bindings: Env; Variables: { cbFetch: CbFetch } }>();
hono.use("*", circuitBreaker({ envPrefix: "CB_" }) as never);
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
    return example.fetch(request, { ...env, CIRCUIT_BREAKER: counted } as never, ctx);
  },
};
