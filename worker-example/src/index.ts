// A Worker that proxies /api/* to an upstream origin through a circuit breaker whose state
// lives in a Durable Object: when the upstream fails, every isolate (and every cold start)
// answers 503 with Retry-After instead of waiting on it.
import { CircuitOpenError } from "cbfetch";
import { withCircuitBreaker } from "cbfetch/cloudflare";
import { CircuitBreakerObject } from "cbfetch/cloudflare/object";

export { CircuitBreakerObject };

export interface Env {
  /** Where /api/* goes, e.g. "https://api.example.com". */
  UPSTREAM: string;
  /** "on" turns on the /__breakers route (a development aid; `npm run dev` sets it). */
  BREAKERS_ROUTE?: string;
  CIRCUIT_BREAKER: DurableObjectNamespace<CircuitBreakerObject>;
}

export default withCircuitBreaker<Env>(async (request, env, _ctx, cbFetch) => {
  const url = new URL(request.url);
  if (url.pathname === "/__breakers" && env.BREAKERS_ROUTE === "on") {
    // This isolate's breakers (keys are upstream origins): for development only.
    return Response.json(cbFetch.snapshot());
  }
  if (url.pathname.startsWith("/api/")) {
    const target = new URL(url.pathname.slice("/api".length) + url.search, env.UPSTREAM);
    try {
      return await cbFetch(new Request(target, request));
    } catch (error) {
      // Rethrown, a CircuitOpenError becomes 503 + Retry-After + `cbfetch-circuit: open`.
      if (error instanceof CircuitOpenError) throw error;
      // CB_TIMEOUT_MS ran out (counted as a failure), or the upstream could not be reached.
      if (error instanceof Error && error.name === "TimeoutError") {
        return new Response("upstream timed out\n", { status: 504 });
      }
      return new Response("upstream unreachable\n", { status: 502 });
    }
  }
  return new Response("cbfetch worker example: try /api/…\n", { status: 404 });
});
