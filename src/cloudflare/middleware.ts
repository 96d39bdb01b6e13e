import { CircuitOpenError } from "../errors.js";
import { createCbFetch } from "../fetch/cb-fetch.js";
import type { CbFetch } from "../fetch/types.js";
import { optionsFromEnv } from "./env.js";
import { durableObjectStore } from "./store.js";
import type {
  CircuitBreakerOptions,
  DurableObjectNamespaceLike,
  ExecutionContextLike,
} from "./types.js";

/** A module Worker's `fetch` handler, given the breaker-aware fetch as a fourth argument. */
export type BreakerHandler<Env> = (
  request: Request,
  env: Env,
  ctx: ExecutionContextLike,
  fetch: CbFetch,
) => Response | Promise<Response>;

// One instance per isolate and configuration, in global scope: a warm isolate keeps its
// breakers between requests, so the closed state costs no Durable Object call.
const instances = new WeakMap<object, CbFetch>();

/**
 * The breaker-aware fetch of this isolate for `options`, created on first use from the
 * request's env (the Durable Object binding, `CB_` vars).
 */
export function isolateFetch(
  request: Request,
  env: object,
  options: CircuitBreakerOptions,
): CbFetch {
  let instance = instances.get(options);
  if (instance === undefined) {
    const { binding = "CIRCUIT_BREAKER", envPrefix = "CB_", scope, colo, ...rest } = options;
    const namespace = (env as Record<string, unknown>)[binding] as
      DurableObjectNamespaceLike | undefined;
    const requestColo = (request as { cf?: { colo?: unknown } }).cf?.colo;
    instance = createCbFetch({
      ...(envPrefix === false ? {} : optionsFromEnv(env, envPrefix)),
      ...rest,
      store:
        rest.store ??
        (typeof namespace?.idFromName === "function"
          ? durableObjectStore(namespace, {
              scope,
              colo: colo ?? (typeof requestColo === "string" ? requestColo : undefined),
            })
          : undefined),
    });
    instances.set(options, instance);
  }
  return instance;
}

/** `503 Service Unavailable` with `Retry-After` (whole seconds, at least 1). */
export function openCircuitResponse(error: CircuitOpenError): Response {
  return new Response(`${error.message}\n`, {
    status: 503,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      "retry-after": String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))),
    },
  });
}

/**
 * Wraps a module Worker's `fetch` handler: it gets a breaker-aware fetch, and an open upstream
 * (a `CircuitOpenError` it lets through) becomes `503` with `Retry-After`. Pending state
 * changes are written to the Durable Object with `ctx.waitUntil`, after the response.
 */
export function withCircuitBreaker<Env extends object>(
  handler: BreakerHandler<Env>,
  options: CircuitBreakerOptions = {},
): { fetch(request: Request, env: Env, ctx: ExecutionContextLike): Promise<Response> } {
  return {
    async fetch(request, env, ctx) {
      const fetch = isolateFetch(request, env, options);
      try {
        return await handler(request, env, ctx, fetch);
      } catch (error) {
        if (error instanceof CircuitOpenError) return openCircuitResponse(error);
        throw error;
      } finally {
        ctx.waitUntil(fetch.flush());
      }
    },
  };
}

/** The slice of a Hono `Context` the middleware uses. */
export interface HonoContextLike {
  req: { raw: Request };
  env: object;
  executionCtx: ExecutionContextLike;
  set(key: "cbFetch", value: CbFetch): void;
  res: Response;
  error?: unknown;
}

/**
 * Hono middleware: `c.get("cbFetch")` is the breaker-aware fetch, and a `CircuitOpenError`
 * from a handler becomes `503` with `Retry-After`. (Hono is an optional peer dependency.)
 */
export function circuitBreaker(options: CircuitBreakerOptions = {}) {
  return async (c: HonoContextLike, next: () => Promise<void>): Promise<void> => {
    const fetch = isolateFetch(c.req.raw, c.env, options);
    c.set("cbFetch", fetch);
    try {
      await next();
    } catch (error) {
      if (!(error instanceof CircuitOpenError)) throw error;
      c.res = openCircuitResponse(error);
    } finally {
      c.executionCtx.waitUntil(fetch.flush());
    }
    // Hono catches a handler's error itself and keeps it on the context.
    if (c.error instanceof CircuitOpenError) c.res = openCircuitResponse(c.error);
  };
}
