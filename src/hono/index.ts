/**
 * `cbfetch/hono`: Hono middleware. `c.var.cbFetch` is a breaker-aware fetch (its state in a
 * Durable Object when the Worker binds one, see `cbfetch/cloudflare`), and a fast-fail a
 * handler lets through becomes `503` with `Retry-After`. Works on any runtime Hono runs on,
 * and under `app.request()` in tests (no ExecutionContext needed).
 *
 * @packageDocumentation
 */
import type { MiddlewareHandler } from "hono";
import {
  identityOf,
  isolateFetch,
  keepAlive,
  openCircuitResponse,
} from "../cloudflare/middleware.js";
import type { CircuitBreakerOptions } from "../cloudflare/types.js";
import { RefusalError } from "../errors.js";
import type { CbFetch } from "../fetch/types.js";

declare module "hono" {
  /** `c.var.cbFetch` / `c.get("cbFetch")`, typed in every app that imports `cbfetch/hono`. */
  interface ContextVariableMap {
    cbFetch: CbFetch;
  }
}

/** What {@link circuitBreaker} adds to a Hono app's context: `c.var.cbFetch`. */
export interface CircuitBreakerVariables {
  /** The breaker-aware fetch of this isolate and configuration. */
  cbFetch: CbFetch;
}

/**
 * Hono middleware: `c.var.cbFetch` (or `c.get("cbFetch")`) is the breaker-aware fetch. A
 * refusal a handler lets through (`CircuitOpenError`, `ThrottledError`, `BulkheadFullError`)
 * carries its own response (`getResponse()`, as
 * Hono's `HTTPException` does), so Hono's default error handler answers it with `503` and
 * `Retry-After` without logging it as an error; your own `onError` receives it and decides.
 * Each middleware made has its own breakers per isolate; one made per request (inside a
 * handler) needs a `name` to find its state again.
 *
 * @param options - as for `withCircuitBreaker` (`name`, `binding`, `envPrefix`, `scope`, …)
 * @returns a middleware for any app, as Hono's own are (`c.var.cbFetch` is typed by
 * `ContextVariableMap`), so it can also be called inside a handler: `circuitBreaker(…)(c, next)`
 */
export function circuitBreaker(options: CircuitBreakerOptions = {}): MiddlewareHandler {
  const made = identityOf(options);
  return async (c, next) => {
    const fetch = isolateFetch(made, c.req.raw, (c.env ?? {}) as object, options);
    c.set("cbFetch", withResponse(fetch));
    await next();
    let ctx: Parameters<typeof keepAlive>[0];
    try {
      ctx = c.executionCtx;
    } catch {
      // `app.request()` in tests: no ExecutionContext.
    }
    keepAlive(ctx, fetch);
  };
}

const wrapped = new WeakMap<CbFetch, CbFetch>();

/** `fetch`, whose refusals (open, throttled, full) carry the `503` to answer them with. */
function withResponse(fetch: CbFetch): CbFetch {
  let cb = wrapped.get(fetch);
  if (cb === undefined) {
    const call = (input: RequestInfo | URL, init?: RequestInit) =>
      fetch(input, init).catch((error: unknown) => {
        if (error instanceof RefusalError) {
          Object.defineProperty(error, "getResponse", { value: () => openCircuitResponse(error) });
        }
        throw error;
      });
    cb = Object.assign(call, fetch) as CbFetch;
    wrapped.set(fetch, cb);
  }
  return cb;
}
