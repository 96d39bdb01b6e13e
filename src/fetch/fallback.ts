import type { Breaker, Permit } from "../breaker/breaker.js";
import type { BulkheadFullError, CircuitOpenError } from "../errors.js";
import type { ResolvedCbFetchOptions } from "./options.js";
import type { Registry } from "./registry.js";

type FetchInput = RequestInfo | URL;

/** Sends a call through a breaker that admitted it (`createCbFetch`'s own attempt). */
export type Attempt = (
  breaker: Breaker,
  permit: Permit,
  url: string,
  input: FetchInput,
  init: RequestInit | undefined,
) => Promise<Response>;

/** What a refused call gets instead of its error; `undefined`: the error. */
export type Answer = (
  key: string,
  url: string,
  input: FetchInput,
  init: RequestInit | undefined,
  error: CircuitOpenError | BulkheadFullError,
) => Response | Promise<Response> | undefined;

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);

/**
 * The answer to refused calls: an idempotent request goes to the same path on the first of
 * `fallbackOrigins` whose breaker admits it, otherwise `fallback` answers. `createCbFetch`
 * loads this module only when one of the two is set, and passes it the helpers it shares with
 * the core (importing them here would split them into a chunk of their own).
 */
export function fallbackAnswer(
  config: ResolvedCbFetchOptions,
  registry: Registry,
  attempt: Attempt,
  isRequest: (value: unknown) => value is Request,
  methodOf: (input: FetchInput, init: RequestInit | undefined) => string,
): Answer {
  return (key, url, input, init, error) => {
    const alternates = config.fallbackOrigins?.get(key);
    if (alternates !== undefined && IDEMPOTENT.has(methodOf(input, init))) {
      for (const origin of alternates) {
        const breaker = registry.get(origin).breaker;
        const permit = breaker.allow();
        if (permit === undefined) continue;
        const target = new URL(url, globalThis.location?.href);
        const altUrl = origin + target.pathname + target.search;
        const altInput = isRequest(input) ? new Request(altUrl, input) : altUrl;
        return attempt(breaker, permit, altUrl, altInput, init);
      }
    }
    if (config.fallback === undefined) return undefined;
    const request = isRequest(input)
      ? input
      : new Request(new URL(url, globalThis.location?.href), init);
    return config.fallback(request, error);
  };
}
