import type { Breaker } from "../breaker/breaker.js";
import { systemClock } from "../breaker/clock.js";
import type { Permit } from "../breaker/permit.js";
import type { RefusalError } from "../errors.js";
import type { CbFetch } from "../fetch/types.js";
import { originOf } from "../keys/key.js";
import { createJudge } from "../outcome/judge.js";
import { install } from "../outcome/network.js";
import { isFailureStatus, retryAfterMs } from "../outcome/status.js";
import { refused } from "./refused.js";

/** What each of a strategy's requests keeps between the plugin's callbacks (Workbox's `state`). */
interface PluginState {
  breaker?: Breaker;
  permit?: Permit;
  refusal?: RefusalError;
}

/** The Workbox plugin callbacks {@link workboxPlugin} implements (Workbox's own types match). */
export interface WorkboxPlugin {
  requestWillFetch(param: { request: Request; state?: PluginState }): Promise<Request>;
  fetchDidSucceed(param: { response: Response; state?: PluginState }): Promise<Response>;
  fetchDidFail(param: {
    error: Error;
    originalRequest: Request;
    request: Request;
    state?: PluginState;
  }): Promise<void>;
  handlerDidError(param: {
    request: Request;
    error: Error;
    state?: PluginState;
  }): Promise<Response | undefined>;
}

/**
 * A Workbox plugin that puts a strategy's network requests (`NetworkFirst`, `NetworkOnly`,
 * `StaleWhileRevalidate`, …) behind the breakers of `cbFetch` (e.g. `handleFetch(…).cbFetch`,
 * so the routes Workbox answers and those `handleFetch` answers share one state): a request
 * its origin's circuit refuses is not sent; the strategy then answers from its cache if it
 * can, else the refusal's `503` (a navigation goes to the network instead, never a bare 503).
 * Outcomes count as in `createCbFetch`: 5xx, 408 and 429 fail, an opaque response succeeds,
 * and a network error counts only when the network works (the browser rule: one check of the
 * site's own origin when nothing else answered). Options of the instance that act around a
 * call (`timeoutMs`, `isFailure`, `maxConcurrent`, `retry`) do not apply to Workbox's fetch.
 *
 * @example
 * ```ts
 * const onFetch = handleFetch({ store: idbStore() });
 * registerRoute(({ url }) => url.pathname.startsWith("/api/"),
 *   new NetworkFirst({ cacheName: "api", plugins: [workboxPlugin(onFetch.cbFetch)] }));
 * self.addEventListener("fetch", onFetch); // after Workbox's routes: the rest of the site
 * ```
 */
export function workboxPlugin(cbFetch: CbFetch): WorkboxPlugin {
  const clock = systemClock();
  const breakers = () => cbFetch.snapshot().map(({ key }) => cbFetch.breaker(key));
  const judge = createJudge("verify", breakers);
  const page = globalThis.location?.href;
  install({
    config: { networkCheck: page && new URL("/", page).href, breaker: { clock } },
    events: cbFetch.events,
    judge,
    kit: { originOf },
    breakers,
    fetch: () => globalThis.fetch,
  });

  return {
    async requestWillFetch({ request, state = {} }) {
      await cbFetch.ready;
      const breaker = cbFetch.breaker(request.url);
      const permit = breaker.allow();
      // Thrown here, Workbox sends nothing and ends in handlerDidError (below).
      if (permit === undefined) throw (state.refusal = breaker.openError());
      state.breaker = breaker;
      state.permit = permit;
      return request;
    },

    async fetchDidSucceed({ response, state = {} }) {
      const { permit } = state;
      state.permit = undefined;
      if (permit === undefined) return response;
      if (!isFailureStatus(response)) permit.success();
      else {
        const delay =
          response.status === 429 || response.status === 503
            ? retryAfterMs(response.headers.get("retry-after"), Date.now())
            : undefined;
        permit.failure("status", delay === undefined ? undefined : clock.now() + delay);
      }
      return response;
    },

    async fetchDidFail({ request, state = {} }) {
      const { permit, breaker } = state;
      state.permit = undefined;
      if (permit === undefined || breaker === undefined) return;
      const settle = (counts: boolean) => (counts ? permit.failure("error") : permit.release());
      const verdict = judge.counts(breaker, request.url, request, undefined, false, undefined);
      if (typeof verdict === "boolean") settle(verdict);
      else settle(await verdict);
    },

    async handlerDidError({ request, state = {} }) {
      const { refusal } = state;
      if (refusal === undefined) return undefined; // not ours: Workbox's error stands
      return request.mode === "navigate" ? fetch(request) : refused(refusal);
    },
  };
}
