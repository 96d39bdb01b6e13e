/**
 * @vitest-environment happy-dom
 */
import { createElement } from "react";
import { createRoot } from "react-dom/client";
import useSWR, { SWRConfig, type SWRConfiguration } from "swr";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  BulkheadFullError,
  CircuitOpenError,
  createCbFetch,
  isRefusal,
  refusalOf,
} from "../../src/index.js";
import { respond, useServer } from "../helpers/server.js";
import { HITS_TO_TRIP, refusals } from "./kit.js";

// SWR 2, real, in a React 19 tree rendered by react-dom into happy-dom's document (SWR is a
// hook: its revalidation and onErrorRetry run only in a mounted component). The hook calls a
// real server on 127.0.0.1 through happy-dom's fetch. The code between "recipe" comments is the
// README's, as written there.
const server = useServer();

interface Seen {
  data: unknown;
  error: unknown;
  revalidate: () => Promise<unknown>;
}

const unmounts: Array<() => void> = [];
afterEach(() => unmounts.splice(0).forEach((unmount) => unmount()));

/**
 * Renders `useSWR(key)` under `config` (its own cache): every state the component rendered, and
 * a wait for one.
 */
function mount(key: string, config: SWRConfiguration) {
  const seen: Seen[] = [];
  let waiting: { until: (s: Seen) => boolean; resolve: () => void } | undefined;
  function Items() {
    const { data, error, mutate } = useSWR(key);
    const state = { data, error, revalidate: () => mutate() };
    seen.push(state);
    if (waiting?.until(state)) waiting.resolve();
    return null;
  }
  const root = createRoot(document.createElement("div"));
  root.render(
    createElement(
      SWRConfig,
      { value: { ...config, provider: () => new Map() } },
      createElement(Items),
    ),
  );
  unmounts.push(() => root.unmount());
  return {
    seen,
    last: () => seen.at(-1)!,
    /** Resolves at the first render (from now on) that `until` accepts. */
    next: (until: (s: Seen) => boolean) =>
      new Promise<void>((resolve) => (waiting = { until, resolve })),
  };
}

// cbfetch's retries wait up to 300 ms and 600 ms (full jitter): room for a loaded machine.
describe("SWR", { timeout: 20_000 }, () => {
  it("the recipe: SWR does not retry, cbfetch does; a refusal is the hook's error", async () => {
    const API = server.origin;
    // recipe: swr
    const cb = createCbFetch({ retry: 2 });
    const config: SWRConfiguration = {
      fetcher: async (url: string) => {
        const response = await cb(url);
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        return response.json();
      },
      // cbfetch's `retry` retried the failures; a refusal is asked again once the circuit lets a
      // call through (a full bulkhead's 0: not by itself).
      onErrorRetry: (error, _key, _config, revalidate, options) => {
        const wait = refusalOf(error)?.retryAfterMs;
        if (wait) setTimeout(() => revalidate(options), wait);
      },
    };
    // <SWRConfig value={config}> around the app
    // end recipe
    server.handle(respond(503));
    const before = server.hits;
    const view = mount(`${API}/items`, config);
    await view.next((s) => s.error !== undefined);
    await view.last().revalidate();
    expect(server.hits - before).toBe(HITS_TO_TRIP); // as under fetch
    expect(cb.state(API)).toBe("open");
    expect(isRefusal(view.last().error)).toBe(false); // the last 503

    const refused = refusals(cb);
    const shown = view.next((s) => s.error instanceof CircuitOpenError); // unwrapped
    for (let call = 0; call < 3; call++) await view.last().revalidate();
    await shown;
    expect(server.hits - before).toBe(HITS_TO_TRIP); // refused calls reach no server
    expect(refused.count).toBe(3); // one per revalidation: SWR retried none (not before 30 s)

    // The recipe's onErrorRetry itself, on fake timers: a refusal is asked again at its
    // retryAfterMs, a full bulkhead (0) and any other error not at all.
    vi.useFakeTimers();
    const asked: unknown[] = [];
    const retry = (error: unknown) =>
      config.onErrorRetry!(error as Error, "k", {} as never, (o) => void asked.push(o), {
        retryCount: 1,
        dedupe: true,
      });
    retry(new BulkheadFullError(API, 1, 0));
    retry(new Error("HTTP 503"));
    expect(vi.getTimerCount()).toBe(0);
    retry(new CircuitOpenError(API, "open", 1000, 0));
    vi.advanceTimersByTime(999);
    expect(asked).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(asked).toEqual([{ retryCount: 1, dedupe: true }]);
    vi.useRealTimers();
  });

  it("SWR's own onErrorRetry, as it comes, retries a refusal (errorRetryInterval shortened here)", async () => {
    const cb = createCbFetch({ failureThreshold: 1, openMs: 60_000 });
    server.handle(respond(503));
    await cb(server.url("/items"));
    const refused = refusals(cb);
    let errors = 0;
    const view = mount(server.url("/items"), {
      fetcher: (url: string) => cb(url),
      errorRetryInterval: 1,
      errorRetryCount: 3,
      onError: () => errors++,
    });
    await view.next(() => errors === 4);
    expect(refused.count).toBe(4); // the call and 3 retries of a refusal
  });

  it("with the recipe, a screen that showed the refusal comes back by itself: one request, the probe", async () => {
    // Open for 1 s: long enough to see the refusal first, also on a loaded machine.
    const cb = createCbFetch({ retry: 2, openMs: 1000, jitter: 0 });
    const config: SWRConfiguration = {
      fetcher: async (url: string) => {
        const response = await cb(url);
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        return response.json();
      },
      onErrorRetry: (error, _key, _config, revalidate, options) => {
        const wait = refusalOf(error)?.retryAfterMs;
        if (wait) setTimeout(() => revalidate(options), wait);
      },
    };
    server.handle(respond(503));
    const view = mount(server.url("/items"), config);
    await view.next((s) => s.error !== undefined);
    await view.last().revalidate();
    expect(cb.state(server.origin)).toBe("open");
    const refused = refusals(cb);
    await view.last().revalidate(); // refused: the screen shows the refusal…
    server.handle(respond(200, "[1,2]", { "content-type": "application/json" }));
    const before = server.hits;
    await view.next((s) => s.data !== undefined); // …and SWR asks again once a probe may go
    expect(view.last().data).toEqual([1, 2]);
    expect(server.hits - before).toBe(1);
    // One refusal; two if the timer fired a moment before the breaker's clock got to retryAt.
    expect(refused.count).toBeGreaterThanOrEqual(1);
    expect(refused.count).toBeLessThanOrEqual(2);
  });
});
