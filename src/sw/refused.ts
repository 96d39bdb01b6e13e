import type { RefusalError } from "../errors.js";

/**
 * The synthesized answer to a refused request: `503`, no body, the headers of the Workers and
 * Hono middleware's refusal (`Retry-After` in whole seconds, at least 1; `cbfetch-circuit`) and
 * the key.
 */
export function refused(error: RefusalError): Response {
  const kind = { ThrottledError: "throttled", BulkheadFullError: "full" }[error.name] ?? "open";
  return new Response(null, {
    status: 503,
    headers: {
      "retry-after": String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))),
      "cbfetch-circuit": kind,
      "cbfetch-key": error.key,
    },
  });
}
