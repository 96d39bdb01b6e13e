import type { Breaker, Permit } from "../breaker/breaker.js";

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);

/**
 * `fallbackOrigins`: sends a refused idempotent request (same path and query) to the first
 * alternate origin whose breaker admits it, through `attempt(breaker, permit, altUrl)`;
 * `undefined` when none can take it. `createCbFetch` loads this module only when
 * `fallbackOrigins` is set. (It imports nothing, so no code is shared with the core's chunk.)
 */
export function routeToAlternate(
  alternates: readonly string[],
  method: string,
  url: string,
  breakerOf: (origin: string) => Breaker,
  attempt: (breaker: Breaker, permit: Permit, altUrl: string) => Promise<Response>,
): Promise<Response> | undefined {
  if (!IDEMPOTENT.has(method)) return undefined;
  for (const origin of alternates) {
    const breaker = breakerOf(origin);
    const permit = breaker.allow();
    if (permit === undefined) continue;
    const target = new URL(url, globalThis.location?.href);
    return attempt(breaker, permit, origin + target.pathname + target.search);
  }
  return undefined;
}
