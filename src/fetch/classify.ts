/**
 * The default failure rule: 500, 502, 503, 504, 408 and 429 count against the origin; every
 * other status (4xx included) and opaque responses (status 0) do not.
 */
export function isFailureStatus(response: Response): boolean {
  switch (response.status) {
    case 500:
    case 502:
    case 503:
    case 504:
    case 408:
    case 429:
      return true;
    default:
      return false;
  }
}

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const DELTA_SECONDS = /^\d+$/;
// IMF-fixdate, RFC 850 and asctime all start with a day name.
const HTTP_DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? /;

/**
 * Reads `Retry-After` (delta-seconds or HTTP-date) as a delay in ms from now, or `undefined`
 * for a missing, malformed, zero or past value. `wallNow` is `Date.now()`, which HTTP-dates
 * are compared with.
 */
export function retryAfterMs(value: string | null, wallNow: number): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  let delay: number;
  if (DELTA_SECONDS.test(text)) delay = Number(text) * 1000;
  else if (HTTP_DATE.test(text)) delay = Date.parse(text) - wallNow;
  else return undefined;
  return delay > 0 ? delay : undefined;
}

/** The request method, upper-cased, from `init` or a `Request`. */
export function methodOf(input: RequestInfo | URL, init: RequestInit | undefined): string {
  const method = init?.method ?? (input as { method?: unknown }).method;
  return typeof method === "string" ? method.toUpperCase() : "GET";
}

/**
 * Whether a rejected fetch was the caller's own doing (its abort, a used body, a bad `init`, a
 * bad header, a body on a GET) rather than a network error. Checked only after a rejection, by
 * building a body-less Request with the same fields: the hot path pays nothing, and the body
 * is never touched. An `init` that throws when read is the caller's too.
 */
export function isCallersMistake(
  url: string,
  input: RequestInfo | URL,
  init: RequestInit | undefined,
): boolean {
  try {
    if (signalOf(input, init)?.aborted) return true;
    const base = isRequest(input) ? input : undefined;
    if (base?.bodyUsed || (init as Partial<Request> | undefined)?.bodyUsed === true) return true;
    if (init == null) return false;
    if (typeof init !== "object") return true; // fetch takes an object or nothing
    const signal = init.signal as { aborted?: unknown } | null | undefined;
    if (signal != null && typeof signal.aborted !== "boolean") return true;
    const method = methodOf(input, init);
    if (init.body != null && (method === "GET" || method === "HEAD")) return true;
    if (isStream(init.body) && (init as { duplex?: unknown }).duplex === undefined) return true;
    // Some Headers implementations defer this check to the network layer.
    let badHeader = false;
    new Headers(init.headers).forEach((value, name) => {
      badHeader ||= !HEADER_NAME.test(name) || /[\0\r\n]/.test(value);
    });
    if (badHeader) return true;
    // Never `new Request(request, init)`: that would take and disturb the request's body.
    const bodiless = new Request(url, { method: base?.method, headers: base?.headers });
    new Request(bodiless, initWith(init, { body: undefined, signal: undefined }));
    return false;
  } catch {
    return true;
  }
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

/** The caller's signal: `init`'s, or the `Request`'s. */
export function signalOf(
  input: RequestInfo | URL,
  init: RequestInit | undefined,
): AbortSignal | undefined {
  return init?.signal ?? (isRequest(input) ? input.signal : undefined) ?? undefined;
}

/** Whether `value` is a `Request` (or looks like one: fetch reads them by their fields). */
export function isRequest(value: unknown): value is Request {
  return typeof value === "object" && typeof (value as { url?: unknown } | null)?.url === "string";
}

function isStream(body: unknown): boolean {
  return typeof ReadableStream !== "undefined" && body instanceof ReadableStream;
}
