import type { FetchInput } from "../request.js";
import type { Entry, Registry } from "./registry.js";

/**
 * The entry guarding a request under a `keyOf` option, or `undefined` to pass the request
 * through untouched (a URL fetch will reject). `createCbFetch` loads this module only when
 * `keyOf` is set.
 */
export function keyedEntry(
  keyOf: (request: Request) => string,
  registry: Registry,
  url: string,
  input: FetchInput,
  init: RequestInit | undefined,
): Entry | undefined {
  const request = requestForKey(url, input, init);
  if (request === undefined) return undefined;
  const key = keyOf(request);
  if (typeof key !== "string" || key === "") {
    throw new TypeError(`cbfetch: keyOf() must return a non-empty string, got ${String(key)}`);
  }
  return registry.get(key);
}

/**
 * A Request for `keyOf`: the caller's own Request when it is used as is (its body untouched),
 * otherwise a body-less copy of the URL, method and headers.
 */
function requestForKey(url: string, input: FetchInput, init: RequestInit | undefined) {
  const base = typeof input === "object" && "url" in input ? input : undefined;
  if (base !== undefined && init === undefined) return base;
  try {
    return new Request(new URL(url, globalThis.location?.href), {
      method: init?.method ?? base?.method,
      headers: init?.headers ?? base?.headers,
    });
  } catch {
    return undefined;
  }
}
