import type { Breaker } from "../breaker/breaker.js";
import type { Permit } from "../breaker/permit.js";
import type { RefusalError } from "../errors.js";
import type { Entry } from "../keys/registry.js";

/** What a refused call gives the fallback (the core's `Call`). */
export interface RefusedCall {
  readonly url: string;
  /** The request's method, upper-cased. */
  readonly method: string;
  readonly core: {
    readonly config: {
      readonly fallback?:
        ((request: Request, error: never) => Response | Promise<Response>) | undefined;
      readonly fallbackOrigins: ReadonlyMap<string, readonly string[]> | undefined;
    };
    readonly registry: { get(key: string): Entry };
  };
  /** The caller's `Request`, or one made of the URL and init. */
  request(): Request;
  /** The same call to `url` (the same path on an alternate origin), through `breaker` on `permit`. */
  sendTo(url: string, breaker: Breaker, permit: Permit): Promise<Response>;
}

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);

/**
 * What a refused call gets instead of its error (`createCbFetch` loads this module only when
 * `fallback` or `fallbackOrigins` is set): an idempotent request goes to the same path on the
 * first of `fallbackOrigins` whose breaker admits it, otherwise `fallback` answers; `undefined`
 * when neither does (the call rejects with its error).
 */
export function answer(
  call: RefusedCall,
  error: RefusalError,
): Response | Promise<Response> | undefined {
  const { fallback, fallbackOrigins } = call.core.config;
  const alternates = fallbackOrigins?.get(error.key);
  if (alternates !== undefined && IDEMPOTENT.has(call.method)) {
    for (const origin of alternates) {
      const breaker = call.core.registry.get(origin).breaker;
      const permit = breaker.allow();
      if (permit === undefined) continue;
      const target = new URL(call.url, globalThis.location?.href);
      return call.sendTo(origin + target.pathname + target.search, breaker, permit);
    }
  }
  return fallback?.(call.request(), error as never);
}
