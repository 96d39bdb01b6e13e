import { isRequest } from "./classify.js";
import { initWith } from "./init-with.js";

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

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
    if ((init?.signal ?? (isRequest(input) ? input.signal : undefined))?.aborted) return true;
    const base = isRequest(input) ? input : undefined;
    if (base?.bodyUsed || (init as Partial<Request> | undefined)?.bodyUsed === true) return true;
    if (init == null) return false;
    if (typeof init !== "object") return true; // fetch takes an object or nothing
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

function isStream(body: unknown): boolean {
  return typeof ReadableStream !== "undefined" && body instanceof ReadableStream;
}
