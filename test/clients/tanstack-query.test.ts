/**
 * @vitest-environment happy-dom
 */
import { QueryClient, QueryObserver, type QueryObserverResult } from "@tanstack/query-core";
import { describe, expect, it } from "vitest";
import {
  BulkheadFullError,
  CircuitOpenError,
  createCbFetch,
  isRefusal,
  refusalOf,
} from "../../src/index.js";
import { respond, useServer } from "../helpers/server.js";
import { HITS_TO_TRIP, refusals } from "./kit.js";

// TanStack Query's core (what useQuery runs in React, Vue, Solid, Svelte), real, in happy-dom:
// query-core schedules no timers where there is no `window`, as on a server. The queries call a
// real server on 127.0.0.1 through happy-dom's fetch. The code between "recipe" comments is the
// README's, as written there.
const server = useServer();

/** A mounted useQuery: every result it would render, and a wait for one. */
function mount<T>(observer: {
  subscribe(listener: (result: QueryObserverResult<T>) => void): () => void;
}) {
  const results: Array<QueryObserverResult<T>> = [];
  let waiting: { until: (r: QueryObserverResult<T>) => boolean; resolve: () => void } | undefined;
  const unsubscribe = observer.subscribe((result) => {
    results.push(result);
    if (waiting?.until(result)) waiting.resolve();
  });
  return {
    results,
    unsubscribe,
    /** Resolves at the first result (from now on) that `until` accepts. */
    next: (until: (r: QueryObserverResult<T>) => boolean) =>
      new Promise<void>((resolve) => (waiting = { until, resolve })),
  };
}

const settled = (r: QueryObserverResult<unknown>) => r.fetchStatus === "idle" && !r.isPending;

// cbfetch's retries wait up to 300 ms and 600 ms (full jitter): room for a loaded machine.
describe("TanStack Query", { timeout: 20_000 }, () => {
  it("the recipe: TanStack does not retry, cbfetch does; a refusal is the query's error", async () => {
    const API = server.origin;
    // recipe: tanstack-query
    const cb = createCbFetch({ retry: 2 });
    const queryClient = new QueryClient({
      defaultOptions: {
        queries: {
          retry: false, // cbfetch's `retry` retries, within its budget
          // Ask again once the circuit lets a call through (a full bulkhead's 0: not by itself).
          refetchInterval: (query) => refusalOf(query.state.error)?.retryAfterMs || false,
        },
      },
    });
    // end recipe
    // What useQuery({ queryKey, queryFn }) runs in a component.
    const items = new QueryObserver(queryClient, {
      queryKey: ["items"],
      queryFn: async () => {
        const response = await cb(`${API}/items`);
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        return (await response.json()) as number[];
      },
    });
    server.handle(respond(503));
    const before = server.hits;
    const view = mount(items);
    await view.next(settled);
    await items.refetch();
    expect(server.hits - before).toBe(HITS_TO_TRIP); // as under fetch
    expect(cb.state(API)).toBe("open");
    expect(isRefusal(items.getCurrentResult().error)).toBe(false); // the last 503

    const refused = refusals(cb);
    for (let call = 0; call < 3; call++) await items.refetch();
    expect(server.hits - before).toBe(HITS_TO_TRIP); // refused calls reach no server
    expect(refused.count).toBe(3); // one per refetch: TanStack retried none
    const { error } = items.getCurrentResult();
    expect(error).toBeInstanceOf(CircuitOpenError); // unwrapped
    // Asked again when the circuit allows it (30 s ± 20 %), not at once.
    const interval = queryClient.getDefaultOptions().queries!.refetchInterval as (
      query: unknown,
    ) => number | false;
    const query = queryClient.getQueryCache().find({ queryKey: ["items"] })!;
    expect(interval(query)).toBeGreaterThan(20_000);
    expect(interval({ state: { error: new BulkheadFullError(API, 1, 0) } })).toBe(false);
    expect(interval({ state: { error: new Error("HTTP 503") } })).toBe(false);
    view.unsubscribe();
    queryClient.clear();
  });

  it("with the recipe, a screen that showed the refusal comes back by itself: one request, the probe", async () => {
    const API = server.origin;
    // Open for 1 s: long enough to see the refusal first, also on a loaded machine.
    const cb = createCbFetch({ retry: 2, openMs: 1000, jitter: 0 });
    const queryClient = new QueryClient({
      defaultOptions: {
        queries: {
          retry: false,
          refetchInterval: (query) => refusalOf(query.state.error)?.retryAfterMs || false,
        },
      },
    });
    const items = new QueryObserver(queryClient, {
      queryKey: ["items"],
      queryFn: async () => {
        const response = await cb(`${API}/items`);
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        return (await response.json()) as number[];
      },
    });
    server.handle(respond(503));
    const view = mount(items);
    await view.next(settled);
    await items.refetch();
    expect(cb.state(API)).toBe("open");
    const refused = refusals(cb);
    const back = view.next((r) => r.data !== undefined);
    await items.refetch(); // refused: the screen shows the refusal…
    expect(isRefusal(items.getCurrentResult().error)).toBe(true);
    server.handle(respond(200, "[1,2]", { "content-type": "application/json" }));
    const before = server.hits;
    await back; // …and TanStack asks again when the circuit lets a probe through
    expect(items.getCurrentResult().data).toEqual([1, 2]);
    expect(server.hits - before).toBe(1);
    // One refusal; two if the interval's timer fired a moment before the breaker's clock got to
    // retryAt (the second asks again after the remaining fraction of a millisecond).
    expect(refused.count).toBeGreaterThanOrEqual(1);
    expect(refused.count).toBeLessThanOrEqual(2);
    view.unsubscribe();
    queryClient.clear();
  });

  it("TanStack's own retry, as it comes, retries a refusal 3 times (retryDelay shortened here)", async () => {
    const cb = createCbFetch({ failureThreshold: 1, openMs: 60_000 });
    const queryClient = new QueryClient({ defaultOptions: { queries: { retryDelay: 1 } } });
    server.handle(respond(503));
    await cb(server.url("/items"));
    const refused = refusals(cb);
    const queryFn = () => cb(server.url("/items"));
    await queryClient.prefetchQuery({ queryKey: ["items"], queryFn, retry: 3 });
    expect(refused.count).toBe(4);
    queryClient.clear();
  });

  it("keeping TanStack's retries: never for a refusal (they go through the breaker, not cbfetch's budget)", async () => {
    const cb = createCbFetch({ failureThreshold: 1, openMs: 60_000 });
    // recipe: tanstack-query-retry
    const queryClient = new QueryClient({
      defaultOptions: {
        queries: {
          retry: (failureCount, error) => !isRefusal(error) && failureCount < 3,
        },
      },
    });
    // end recipe
    server.handle(respond(503));
    await cb(server.url("/items"));
    const refused = refusals(cb);
    const queryFn = () => cb(server.url("/items"));
    await queryClient.prefetchQuery({ queryKey: ["items"], queryFn, retryDelay: 1 });
    expect(refused.count).toBe(1);
    expect(isRefusal(queryClient.getQueryState(["items"])?.error)).toBe(true);
    queryClient.clear();
  });
});
