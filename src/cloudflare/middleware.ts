import { badOption } from "../breaker/options.js";
import { RefusalError } from "../errors.js";
import { create } from "../fetch/instance.js";
import { IMPORTS } from "../fetch/lazy.js";
import type { CircuitEvent } from "../fetch/events.js";
import type { CbFetch } from "../fetch/types.js";
import { optionsFromEnv } from "./env.js";
import { durableObjectStore } from "./store.js";
import type {
  CircuitBreakerOptions,
  DurableObjectNamespaceLike,
  ExecutionContextLike,
  TransitionLine,
} from "./types.js";

/** A module Worker's `fetch` handler, given the breaker-aware fetch as a fourth argument. */
export type BreakerHandler<Env> = (
  request: Request,
  env: Env,
  ctx: ExecutionContextLike,
  fetch: CbFetch,
) => Response | Promise<Response>;

/** Most instances one isolate keeps (one per middleware made, or per `name`). */
const MAX_INSTANCES = 64;
// The instances of this isolate, in global scope, least recently used first: a warm isolate
// keeps its breakers between requests, so the closed state costs no Durable Object call.
const instances = new Map<object | string, CbFetch>();
let warned = false;

/**
 * The breaker-aware fetch of this isolate for the middleware `made` (each middleware made has
 * its own), or for `options.name` (every middleware of that name shares one, made from the
 * options of the first): created on first use, with the request's env (the Durable Object
 * binding, `CB_` vars). Never by the options' text: middlewares that differ only in what
 * their functions capture (one per tenant) must not share breakers.
 */
export function isolateFetch(
  made: object,
  request: Request,
  env: object,
  options: CircuitBreakerOptions,
): CbFetch {
  const identity = options.name ?? made;
  const instance = instances.get(identity) ?? createInstance(request, env, options);
  // The most recently used goes last.
  instances.delete(identity);
  if (instances.size >= MAX_INSTANCES) evictLeastRecentlyUsed();
  instances.set(identity, instance);
  return instance;
}

/**
 * The identity of a middleware being made: a token of its own, unless `options.name` (checked
 * here, so a bad one throws where the middleware is made) names shared breakers.
 */
export function identityOf(options: CircuitBreakerOptions): object {
  const { name } = options;
  if (name !== undefined && (typeof name !== "string" || name === "")) {
    badOption("name", "a non-empty string", name);
  }
  return {};
}

function createInstance(request: Request, env: object, options: CircuitBreakerOptions): CbFetch {
  const {
    binding = "CIRCUIT_BREAKER",
    envPrefix = "CB_",
    scope,
    colo,
    locationHint,
    log = logLine,
    ...rest
  } = options;
  delete rest.name; // the breakers' identity, no option of createCbFetch
  const namespace = (env as Record<string, unknown>)[binding] as
    DurableObjectNamespaceLike | undefined;
  const requestColo = (request as { cf?: { colo?: unknown } }).cf?.colo;
  // Without the cross-tab channel's code: Workers have no tabs.
  const instance = create(
    {
      ...(envPrefix === false ? {} : optionsFromEnv(env, envPrefix)),
      ...rest,
      store:
        rest.store ??
        (typeof namespace?.idFromName === "function"
          ? durableObjectStore(namespace, {
              scope,
              colo: colo ?? (typeof requestColo === "string" ? requestColo : undefined),
              locationHint,
            })
          : undefined),
    },
    IMPORTS,
  );
  if (log !== false) {
    instance.addEventListener("statechange", (event: CircuitEvent) =>
      log({ key: event.key, from: event.previousState, to: event.state, retryAt: event.retryAt }),
    );
  }
  return instance;
}

/**
 * Drops the least recently used instance (its breakers with it). Most likely a middleware is
 * made per request (each one a new instance, whose breakers never see a second call): said
 * once, with what to do (the README's "Hono" section has the pattern).
 */
function evictLeastRecentlyUsed(): void {
  const [oldest] = instances.keys();
  instances.delete(oldest as object | string);
  if (!warned) {
    warned = true;
    console.warn(
      `cbfetch: over ${MAX_INSTANCES} breaker middlewares, so breakers were dropped. Made ` +
        "per request? Make it once, or give it a `name`.",
    );
  }
}

/** The default transition log: one JSON line (Workers Logs and `wrangler tail` parse it). */
function logLine(line: TransitionLine): void {
  console.log(JSON.stringify({ message: "cbfetch circuit transition", ...line }));
}

/**
 * `503 Service Unavailable` for a refused call (circuit open, throttled, bulkhead full):
 * `Retry-After` (whole seconds, at least 1) and `cbfetch-circuit: open`, `throttled` or `full`,
 * so a client (and your logs) can tell it from an upstream's own 503. The body names no
 * upstream.
 */
export function openCircuitResponse(error: RefusalError): Response {
  const kind = { ThrottledError: "throttled", BulkheadFullError: "full" }[error.name] ?? "open";
  return new Response(`Service Unavailable: cbfetch refused (${kind}), no request was sent\n`, {
    status: 503,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      "retry-after": String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))),
      "cbfetch-circuit": kind,
    },
  });
}

/**
 * Wraps a module Worker's `fetch` handler: it gets a breaker-aware fetch, and a refused call it
 * lets through (`CircuitOpenError`, `ThrottledError`, `BulkheadFullError`) becomes `503` with
 * `Retry-After`. State changes are
 * reported to the Durable Object in the background (kept alive with `waitUntil`). Each
 * middleware made has its own breakers per isolate; one made per request (inside a handler)
 * needs a `name` to find its state again.
 */
export function withCircuitBreaker<Env extends object>(
  handler: BreakerHandler<Env>,
  options: CircuitBreakerOptions = {},
): { fetch(request: Request, env: Env, ctx: ExecutionContextLike): Promise<Response> } {
  const made = identityOf(options);
  return {
    async fetch(request, env, ctx) {
      const fetch = isolateFetch(made, request, env, options);
      try {
        return await handler(request, env, ctx, fetch);
      } catch (error) {
        if (error instanceof RefusalError) return openCircuitResponse(error);
        throw error;
      } finally {
        // Reports are already kept alive where `CircuitBreakerObject` is loaded; this covers a
        // Worker that binds the object of another script. It never forces a store call.
        keepAlive(ctx, fetch);
      }
    },
  };
}

/** Hands the instance's pending writes to `ctx.waitUntil`, where there is a `ctx`. */
export function keepAlive(ctx: ExecutionContextLike | undefined, fetch: CbFetch): void {
  try {
    ctx?.waitUntil(fetch.flush());
  } catch {
    // No ExecutionContext (a test calling the handler directly): nothing to extend.
  }
}
