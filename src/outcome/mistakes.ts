import { type FetchInput, initWith, isRequest } from "../request.js";

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A stream body as it was when the call began (see {@link streamBefore}). */
export interface StreamMark {
  /** Locked, or its `Request`'s body already used: fetch rejects it unsent. */
  readonly unusable: boolean;
  /** Set a few microtasks after the call: fetch had its chance to reject the body unsent by then. */
  sent: boolean;
}

/**
 * Microtask hops before a stream mark is `sent`: fetch rejects an unusable body within one (Node,
 * Bun, Deno and browsers, measured), while a network error needs I/O, so a later task.
 */
const HOPS = 8;

const UNUSABLE: StreamMark = { unusable: true, sent: false };

/**
 * Called just before fetch, for a call with a stream body (a `ReadableStream` in `init`, or a
 * `Request`'s body): the state after a rejection cannot tell the caller's used stream from one
 * fetch took and lost to a network error, so it is noted before. A locked stream, or a used
 * `Request` body, is unusable. fetch rejects a disturbed stream within the call's own task, while
 * a network error comes in a later one: a `sent` flag set a few microtasks after the call tells
 * the two apart (a timer could fire after a fast network error). Only for `init` streams: a
 * `Request` body fetch took is `bodyUsed` afterwards, an unusable one was so before.
 * `undefined` for every other call: nothing to note.
 */
export function streamBefore(
  input: FetchInput,
  init: RequestInit | undefined,
): StreamMark | undefined {
  const fromInit = init?.body !== undefined;
  const owner = (fromInit ? init : isRequest(input) ? input : undefined) as
    Partial<Request> | undefined;
  const body = owner?.body as { locked?: unknown; getReader?: unknown } | null | undefined;
  if (typeof body?.getReader !== "function") return undefined;
  if (body.locked === true || owner?.bodyUsed === true) return UNUSABLE;
  if (!fromInit) return undefined;
  const mark = { unusable: false, sent: false };
  void (async () => {
    for (let hop = 0; hop < HOPS; hop++) await undefined;
    mark.sent = true;
  })();
  return mark;
}

/**
 * Whether a rejected fetch was the caller's own doing rather than a network error: its abort,
 * an unusable body (see {@link streamBefore}), a bad `init` (not an object, a bad signal,
 * `window`, `mode: "navigate"`, a forbidden method, a bad header, a body on a GET, a stream
 * without `duplex`), or an `init` that throws when read. Checked only after a rejection, by
 * building a body-less Request with the same fields: the hot path pays nothing, and the body is
 * never touched.
 */
export function isCallersMistake(
  url: string,
  input: FetchInput,
  init: RequestInit | undefined,
  stream?: StreamMark,
): boolean {
  try {
    if ((init?.signal ?? (isRequest(input) ? input.signal : undefined))?.aborted) return true;
    if (stream !== undefined && (stream.unusable || !stream.sent)) return true;
    if (init == null) return false;
    if (typeof init !== "object") return true; // fetch takes an object or nothing
    const base = isRequest(input) ? input : undefined;
    const signal = init.signal as { aborted?: unknown } | null | undefined;
    if (signal != null && typeof signal.aborted !== "boolean") return true;
    const method = String(init.method ?? base?.method ?? "GET").toUpperCase();
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
 * Whether a rejection may be a redirect fetch refused: with `redirect: "error"`, fetch rejects
 * a healthy 3xx with the same `TypeError` as a network error (in a browser nothing tells them
 * apart), so such a rejection is not held against the origin.
 */
export function refusedRedirect(input: FetchInput, init: RequestInit | undefined): boolean {
  try {
    return (init?.redirect ?? (isRequest(input) ? input.redirect : undefined)) === "error";
  } catch {
    return true; // an init that throws: the caller's
  }
}

function isStream(body: unknown): boolean {
  return typeof (body as { getReader?: unknown } | null)?.getReader === "function";
}
