import type { Breaker, Permit } from "../breaker/breaker.js";
import type { Registry } from "./registry.js";

type FetchInput = RequestInfo | URL;

const IDEMPOTENT = ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"];

/**
 * `fallbackOrigins`: sends a refused idempotent request to the first alternate origin whose
 * breaker admits it (same path and query), or answers `undefined`. `createCbFetch` loads this
 * module with `import()` only when `fallbackOrigins` is set, and passes what it needs.
 */
export function route(
  alternates: readonly string[],
  registry: Registry,
  attempt: (
    breaker: Breaker,
    permit: Permit,
    url: string,
    input: FetchInput,
    init: RequestInit | undefined,
  ) => Promise<Response>,
  url: string,
  input: FetchInput,
  init: RequestInit | undefined,
): Promise<Response> | undefined {
  const request = typeof input === "object" && "url" in input ? input : undefined;
  const method = init?.method ?? request?.method;
  if (!IDEMPOTENT.includes(typeof method === "string" ? method.toUpperCase() : "GET")) return;
  for (const origin of alternates) {
    const breaker = registry.get(origin).breaker;
    const permit = breaker.allow();
    if (permit === undefined) continue;
    const target = new URL(url, globalThis.location?.href);
    const altUrl = origin + target.pathname + target.search;
    return attempt(breaker, permit, altUrl, request ? new Request(altUrl, request) : altUrl, init);
  }
}
