// Loaded with import() on a key's first rejected fetch, so the core does not carry it; it
// imports nothing from the core's modules, so no code is shared with the core's chunk.
import { initWith } from "./init-with.js";

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** What the judge needs of its instance (the instance itself). */
export interface Instance {
  snapshot(): Array<{ key: string; state: string; successes: number; failures: number }>;
  breaker(key: string): {
    readonly state: string;
    readonly retryAt: number | undefined;
    forceOpen(ms?: number): void;
  };
  addEventListener(type: "reject", listener: (event: { key: string }) => void): void;
  removeEventListener(type: "reject", listener: (event: { key: string }) => void): void;
}

interface NetworkMemo {
  /** Network failures this judge let count (they are in the breakers' failure counts). */
  counted: number;
  /** The last network error of the two most recent keys: the answers seen by then. */
  marks: Array<{ key: string; answers: number }>;
  /** Keys whose circuit a network failure opened, with that open's `retryAt`. */
  opened: Map<string, number | undefined>;
  /** Set while the network is judged down: stops watching answers for its return. */
  unwatch: (() => void) | undefined;
  /** Set while such a circuit may still be open: stops listening for `online`. */
  unlisten: (() => void) | undefined;
}

const memos = new WeakMap<Instance, Partial<NetworkMemo>>();

/**
 * Whether a rejected fetch counts against its origin. The caller's own doing (its abort, a
 * used body, a bad `init`) never does. A network error, or cbfetch's own timeout, proves
 * nothing about the origin: it counts only when some other origin has answered since the last
 * network error of another origin (or ever, before any), that is when the network works;
 * otherwise it is the user's network (offline, a dead uplink, a captive portal): not counted,
 * so not stored or sent. A circuit a network failure opened goes half-open as soon as the
 * network shows it is back: an `online` event, or an answer from any origin.
 */
export function countsAgainstOrigin(
  url: string,
  input: RequestInfo | URL,
  init: RequestInit | undefined,
  timedOut: boolean,
  key: string,
  instance: Instance,
): boolean {
  if (!timedOut && isCallersMistake(url, input, init)) return false;
  let memo = memos.get(instance);
  if (memo === undefined) memos.set(instance, (memo = {}));
  const marks = (memo.marks ??= []);
  let answers = -(memo.counted ?? 0);
  let others = 0;
  for (const row of instance.snapshot()) {
    answers += row.successes + row.failures;
    if (row.key !== key) others += row.successes + row.failures;
  }
  const other = marks.find((mark) => mark.key !== key);
  const works =
    globalThis.navigator?.onLine !== false &&
    (other === undefined ? others > 0 : answers > other.answers);
  memo.marks = [{ key, answers }, ...(other ? [other] : [])];
  if (!works) {
    watchForNetwork(instance, memo, answers);
    return false;
  }
  memo.counted = (memo.counted ?? 0) + 1;
  // Once the core has counted it: did it open the circuit?
  queueMicrotask(() => {
    const breaker = instance.breaker(key);
    if (breaker.state !== "open") return;
    (memo.opened ??= new Map()).set(key, breaker.retryAt);
    // The browser may say the network is back without this judge ever seeing it down (no call
    // failed meanwhile, or only refused ones): listen for that while such a circuit is open.
    if (memo.unlisten === undefined) {
      const target = globalThis as Partial<EventTarget>;
      const online = () => networkBack(instance, memo);
      target.addEventListener?.("online", online);
      memo.unlisten = () => target.removeEventListener?.("online", online);
    }
  });
  return true;
}

/**
 * The network was judged down when `answers` responses had come: when it is back (an `online`
 * event, or any answer since), the circuits a network failure opened go half-open at once.
 */
function watchForNetwork(instance: Instance, memo: Partial<NetworkMemo>, answers: number): void {
  if (memo.unwatch !== undefined) return;
  // An answer from any origin shows up at the next refused call of such a circuit: seen then
  // (the refused calls' events), so healthy calls pay nothing for this watch. (`online` is
  // listened for as soon as a network failure opens a circuit.)
  const refused = ({ key }: { key: string }) => {
    if (memo.opened?.has(key) && answersOf(instance, memo) > answers) networkBack(instance, memo);
  };
  instance.addEventListener("reject", refused);
  memo.unwatch = () => instance.removeEventListener("reject", refused);
}

/** The network is back: the circuits a network failure opened, still in that open, are due. */
function networkBack(instance: Instance, memo: Partial<NetworkMemo>): void {
  memo.unwatch?.();
  memo.unlisten?.();
  memo.unwatch = memo.unlisten = undefined;
  for (const [key, retryAt] of memo.opened ?? []) {
    // Due now, exactly (its backoff kept): the next call is its probe. Not an open decided
    // since (a status failure, a Retry-After, another tab's): that one stands.
    const breaker = instance.breaker(key);
    if (breaker.state === "open" && breaker.retryAt === retryAt) breaker.forceOpen(0);
  }
  memo.opened?.clear();
}

/** Responses from every origin so far: successes and failures, but the network failures. */
function answersOf(instance: Instance, memo: Partial<NetworkMemo>): number {
  let answers = -(memo.counted ?? 0);
  for (const row of instance.snapshot()) answers += row.successes + row.failures;
  return answers;
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

const isRequest = (value: unknown): value is Request =>
  typeof value === "object" && typeof (value as { url?: unknown } | null)?.url === "string";

function isStream(body: unknown): boolean {
  return typeof ReadableStream !== "undefined" && body instanceof ReadableStream;
}
