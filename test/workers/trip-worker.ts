// A Worker in front of one upstream, as test/workers-trip.test.ts runs it in workerd: a
// network error from the upstream becomes a 502, a refused call the middleware's 503.
import { withCircuitBreaker } from "cbfetch/cloudflare";

interface Env {
  UPSTREAM: string;
}

export default withCircuitBreaker<Env>(
  async (request, env, _ctx, fetch) => {
    const path = new URL(request.url).pathname;
    try {
      return await fetch(env.UPSTREAM + path);
    } catch (error) {
      if ((error as Error).name === "CircuitOpenError") throw error; // the middleware's 503
      return new Response(`upstream unreachable: ${(error as Error).name}`, { status: 502 });
    }
  },
  { log: false, failureThreshold: 3, openMs: 60_000, jitter: 0 },
);
