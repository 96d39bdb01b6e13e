/**
 * `cbfetch/sw`: one circuit breaker per origin for every request of a site, in its Service
 * Worker: the app's fetches, and its images, scripts, styles, fonts and third-party widgets,
 * from every tab. Nothing here uses `import()` (disallowed in Service Workers), bundled or not.
 *
 * @packageDocumentation
 */
import { type RefusalError, refusalOf } from "../errors.js";
import { create } from "../fetch/instance.js";
import type { CbFetch, CbFetchOptions } from "../fetch/types.js";
import { SW_PARTS } from "./parts.js";
import { refused } from "./refused.js";

export { createCbFetch } from "./all.js";
export { type WorkboxPlugin, workboxPlugin } from "./workbox.js";

/** The part of a `FetchEvent` the handler uses (typed here: the DOM library has no FetchEvent). */
export interface FetchEventLike {
  readonly request: Request;
  respondWith(response: Response | Promise<Response>): void;
  waitUntil(work: Promise<unknown>): void;
}

/**
 * The options of `createCbFetch` that {@link handleFetch} bundles the code of, so that a
 * worker using only these stays small. For the others (`keyOf`, `maxConcurrent`, `throttle`,
 * `retry`, …), hand it an instance: `handleFetch({ cbFetch: createCbFetch({ … }) })`.
 */
export type ServiceWorkerBreakerOptions = Omit<CbFetchOptions, (typeof NOT_BUNDLED)[number]>;

/** Options of {@link handleFetch}. */
export interface ServiceWorkerOptions extends Omit<ServiceWorkerBreakerOptions, "sync"> {
  /**
   * The instance to answer with, made by `createCbFetch` of `cbfetch/sw` (every option; give
   * it `sync: true` to join the pages). Its options then go there, not here.
   * @default one made of these options
   */
  cbFetch?: CbFetch;
  /**
   * Which http(s) requests the breakers guard (the others, and every other scheme, go on as
   * if there were no Service Worker).
   * @default every one but the Service Worker's own script
   */
  match?: (request: Request) => boolean;
  /**
   * What a refused request gets instead of the synthesized 503: a `Response`, or `undefined`
   * for the default answer. Not called for a request the breaker let through.
   */
  fallback?: (
    request: Request,
    error: RefusalError,
  ) => Response | undefined | Promise<Response | undefined>;
  /**
   * A page in Cache Storage (`caches.match`) that a navigation gets when its origin's circuit
   * refuses it or the network fails it. Without it (or while it is not cached), a refused
   * navigation goes to the network as if there were no Service Worker, uncounted: a user's
   * navigation never gets a bare 503.
   * @default undefined
   */
  offlinePage?: string;
  /**
   * How long an origin's first request after the worker started waits for its stored state.
   * @default 1000 (not `createCbFetch`'s 200: a cold worker opens IndexedDB first)
   */
  loadTimeoutMs?: number;
  /**
   * Share breaker state with the site's pages over the BroadcastChannel `cbfetch:<name>`
   * (`true` means `"default"`, as a page's `createCbFetch({ sync: true })`).
   * @default true
   */
  sync?: boolean | string;
}

/** A Service Worker's `fetch` listener, with the breaker-aware fetch it answers with. */
export type FetchHandler = ((event: FetchEventLike) => void) & {
  /** The instance behind it: its state, snapshot, events (`statechange`, …) and manual API. */
  readonly cbFetch: CbFetch;
};

/**
 * How long an origin's first request after a cold start waits for its stored state (the
 * core's default is 200 ms): opening IndexedDB in a worker just started takes longer than in a
 * page, over 200 ms on a busy machine (measured here), and every request of the site waits on
 * this worker's answer, so a slow store must not let an outage's requests through.
 */
const LOAD_TIMEOUT_MS = 1000;

/** Options whose code `handleFetch` leaves out (an instance given as `cbFetch` has it). */
const NOT_BUNDLED = [
  "fallback",
  "fallbackOrigins",
  "retry",
  "totalTimeoutMs",
  "keyOf",
  "maxConcurrent",
  "maxQueue",
  "throttle",
] as const;

/**
 * A `fetch` listener for a module Service Worker: the requests `match` selects go through one
 * circuit breaker per origin (every tab's); the others are left alone.
 *
 * - A refused request gets `503` with `Retry-After` (seconds), `cbfetch-circuit: open` (or
 *   `throttled`, `full`) and `cbfetch-key: <origin>`, no body; or `fallback(request, error)`.
 *   A navigation gets `offlinePage` or goes through, never a bare 503.
 * - Opaque (`no-cors`) responses carry no status: only network errors and timeouts count for
 *   them. A network error while nothing answers at all is the user's network: it opens nothing.
 * - State is kept in `store` (pass `idbStore()` from `cbfetch/idb`): a Service Worker stopped
 *   when idle starts cold with its circuits as they were, and loads a key's state before the
 *   key's first request (at most `loadTimeoutMs`). Writes are kept alive by the event.
 * - `sync` (on by default) joins the pages' channel: a page's `createCbFetch({ sync: true })`
 *   and the Service Worker agree on every origin's state.
 * - A few options' code is left out to keep the worker small (`keyOf`, `maxConcurrent`,
 *   `throttle`, `retry`, `fallbackOrigins`): for those, give an instance (`cbFetch`).
 *
 * @example
 * ```ts
 * import { handleFetch } from "cbfetch/sw";
 * import { idbStore } from "cbfetch/idb";
 * self.addEventListener("fetch", handleFetch({ store: idbStore(), timeoutMs: 10_000 }));
 * ```
 * @throws TypeError or RangeError naming the option, when an option is invalid.
 */
export function handleFetch(options: ServiceWorkerOptions = {}): FetchHandler {
  const { match = ownRequests(), fallback, offlinePage, cbFetch, sync = true, ...rest } = options;
  const given = { ...rest, sync: options.sync };
  for (const name of cbFetch ? Object.keys(given) : NOT_BUNDLED) {
    if ((given as Record<string, unknown>)[name] !== undefined) {
      throw new TypeError(
        `cbfetch/sw: handleFetch option "${name}" goes to the instance: ` +
          `handleFetch({ cbFetch: createCbFetch({ ${name}, … }) })`,
      );
    }
  }
  for (const [name, value] of Object.entries({ match, fallback })) {
    if (value !== undefined && typeof value !== "function") {
      throw new TypeError(`cbfetch/sw: option "${name}" must be a function, got ${typeof value}`);
    }
  }
  if (offlinePage !== undefined && (typeof offlinePage !== "string" || offlinePage === "")) {
    throw new TypeError(
      `cbfetch/sw: option "offlinePage" must be a URL, got ${String(offlinePage)}`,
    );
  }
  const cb = cbFetch ?? create({ loadTimeoutMs: LOAD_TIMEOUT_MS, ...rest, sync }, SW_PARTS);

  /** The page a navigation gets instead of an error, if it is cached. */
  const offline = async () =>
    offlinePage === undefined ? undefined : globalThis.caches?.match(offlinePage);

  async function respond(request: Request): Promise<Response> {
    const navigation = request.mode === "navigate";
    try {
      return await cb(request);
    } catch (error) {
      // A refusal, also from an instance of another copy of cbfetch (`cbFetch`).
      const refusal = refusalOf(error);
      if (refusal === undefined) {
        // The network failed it (or the caller aborted): as without a Service Worker.
        return (navigation && (await offline())) || Response.error();
      }
      const answer = await fallback?.(request, refusal);
      if (answer) return answer;
      // A user's navigation never gets a bare 503: the offline page, or the network.
      if (navigation) return (await offline()) ?? fetch(request);
      return refused(refusal);
    }
  }

  const handler = (event: FetchEventLike) => {
    const { request } = event;
    if (!/^https?:/.test(request.url) || !match(request)) return;
    const answered = respond(request);
    event.respondWith(answered);
    // Keeps the worker alive until the state the request changed is stored.
    event.waitUntil(answered.then(cb.flush, cb.flush).catch(() => {}));
  };
  return Object.assign(handler, { cbFetch: cb });
}

/** The default `match`: every request but the Service Worker's own script. */
function ownRequests(): (request: Request) => boolean {
  const script = globalThis.location?.href;
  const own = script && new URL(script);
  return (request) => {
    if (!own) return true;
    const url = new URL(request.url);
    return url.origin !== own.origin || url.pathname !== own.pathname;
  };
}
