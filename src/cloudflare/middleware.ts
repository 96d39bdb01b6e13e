import { CircuitOpenError } from "../errors.js";
import { create } from "../fetch/create.js";
import { IMPORTS } from "../fetch/parts.js";
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

/** Most instances one isolate keeps (each configuration is one; see {@link isolateFetch}). */
const MAX_INSTANCES = 16;
// One instance per isolate and configuration, in global scope: a warm isolate keeps its
// breakers between requests, so the closed state costs no Durable Object call.
const instances = new Map<string, CbFetch>();

/**
 * Options as a cache key, by value: `circuitBreaker({ … })` written inside a handler finds
 * the instance of the previous request. Functions count by their source text, since a
 * handler makes new ones on every request (a function that differs only in what it captures
 * shares the first one's instance: define such functions once, outside the handler). A
 * store, a clock or any other object with methods counts by identity.
 */
function configurationKey(options: CircuitBreakerOptions): string {
  return JSON.stringify(options, (name, value: unknown) => {
    if (typeof value === "function") return `function ${String(value)}`;
    if (name === "" || !isObject(value) || isData(value)) return value;
    let id = objectIds.get(value);
    if (id === undefined) objectIds.set(value, (id = ++lastObjectId));
    return `object #${id}`;
  });
}
const isObject = (value: unknown): value is object => typeof value === "object" && value !== null;
/** Plain data (`failureRate`, `fallbackOrigins`), as opposed to a store or a clock. */
const isData = (value: object): boolean =>
  (Array.isArray(value) || Object.getPrototypeOf(value) === Object.prototype) &&
  Object.values(value).every((field) => typeof field !== "function");
const objectIds = new WeakMap<object, number>();
let lastObjectId = 0;

/**
 * The breaker-aware fetch of this isolate for `options`, created on first use from the
 * request's env (the Durable Object binding, `CB_` vars).
 */
export function isolateFetch(
  request: Request,
  env: object,
  options: CircuitBreakerOptions,
): CbFetch {
  const key = configurationKey(options);
  let instance = instances.get(key);
  if (instance === undefined) {
    const {
      binding = "CIRCUIT_BREAKER",
      envPrefix = "CB_",
      scope,
      colo,
      locationHint,
      log = logLine,
      ...rest
    } = options;
    const namespace = (env as Record<string, unknown>)[binding] as
      DurableObjectNamespaceLike | undefined;
    const requestColo = (request as { cf?: { colo?: unknown } }).cf?.colo;
    // Without the cross-tab channel's code: Workers have no tabs.
    // Without the cross-tab channel's code: Workers have no tabs.
    instance = create(
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
    if (instances.size >= MAX_INSTANCES) instances.delete(instances.keys().next().value as string);
    instances.set(key, instance);
  }
  return instance;
}

/** The default transition log: one JSON line (Workers Logs and `wrangler tail` parse it). */
function logLine(line: TransitionLine): void {
  console.log(JSON.stringify({ message: "cbfetch circuit transition", ...line }));
}

/**
 * `503 Service Unavailable` for a fast-fail: `Retry-After` (whole seconds, at least 1) and
 * `cbfetch-circuit: open`, so a client (and your logs) can tell it from an upstream's own 503.
 * The body names no upstream.
 */
export function openCircuitResponse(error: CircuitOpenError): Response {
  return new Response("Service Unavailable: circuit open, no request was sent\n", {
    status: 503,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      "retry-after": String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))),
      "cbfetch-circuit": "open",
    },
  });
}

/**
 * Wraps a module Worker's `fetch` handler: it gets a breaker-aware fetch, and an open upstream
 * (a `CircuitOpenError` it lets through) becomes `503` with `Retry-After`. State changes are
 * reported to the Durable Object in the background (kept alive with `waitUntil`).
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
