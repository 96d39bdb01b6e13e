/** Anything `fetch` takes as its first argument. */
export type FetchInput = RequestInfo | URL;

/** Whether `value` is a `Request` (or looks like one: fetch reads them by their fields). */
export function isRequest(value: unknown): value is Request {
  return typeof value === "object" && typeof (value as { url?: unknown } | null)?.url === "string";
}

/** The URL string of anything `fetch` accepts: a string, a `Request`, a `URL` or any stringifier. */
export function urlOf(input: FetchInput): string {
  if (typeof input === "string") return input;
  const url = (input as { url?: unknown }).url;
  return typeof url === "string" ? url : String(input);
}

/** The caller's signal: `init`'s, or the `Request`'s. */
export function signalOf(
  input: FetchInput,
  init: RequestInit | undefined,
): AbortSignal | undefined {
  return init?.signal ?? (isRequest(input) ? input.signal : undefined) ?? undefined;
}

/** The request method, upper-cased, from `init` or a `Request`. */
export function methodOf(input: FetchInput, init: RequestInit | undefined): string {
  const method = init?.method ?? (input as { method?: unknown }).method;
  return typeof method === "string" ? method.toUpperCase() : "GET";
}

/**
 * `init` with some fields replaced, as fetch will read it: every field `init` has, own or
 * inherited (`Object.create(defaults)`), and the getters of a `Request` used as init, which
 * run on the Request itself (a copy of own fields would lose them). A body is passed on, never
 * read. The proxy's target is a fresh object: proxy invariants then never bind, even for a
 * frozen `init`. fetch reads its init field by field, which is all the proxy answers.
 */
export function initWith(init: RequestInit | null | undefined, fields: RequestInit): RequestInit {
  if (init == null || typeof init !== "object") return init ?? fields; // fetch rejects a non-object
  return new Proxy(fields, {
    get: (own, name) => (Object.hasOwn(own, name) ? own : init)[name as keyof RequestInit],
  });
}
