import { initWith } from "../fetch/init-with.js";
import { isCallersMistake, refusedRedirect } from "../fetch/mistakes.js";
import { budgetsOf } from "./budget.js";
import type { CircuitEvents } from "../fetch/events.js";
import type { ResolvedCbFetchOptions } from "../fetch/options.js";
import type { CbFetch, CircuitEventInit, RetryReason } from "../fetch/types.js";

type FetchInput = RequestInfo | URL;
type Call = (input: FetchInput, init?: RequestInit) => Promise<Response>;

/** What the retry loop takes from the core (passed in: importing it would split the core). */
export interface RetryKit {
  /** The key guarding a request, or `undefined` when it passes through. */
  keyFor(url: string, input: FetchInput, init: RequestInit | undefined): string | undefined;
  urlOf(input: FetchInput): string;
  retryAfterMs(value: string | null, wallNow: number): number | undefined;
  /** Where a fired deadline's signal goes: the core then counts that abort as a timeout. */
  deadlines: WeakSet<AbortSignal>;
  /** Inits of retries: the core gives a refused one no fallback. */
  retries: WeakSet<object>;
}

const IDEMPOTENT = ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"];
/** How early a timer may fire before a wait's end on the breaker's clock. */
const DUE_MARGIN_MS = 20;
const STATUSES = [408, 429, 500, 502, 503, 504];

/** The last real outcome of an attempt: a failing response, or an error. */
type Outcome = { response: Response } | { error: unknown };

/**
 * `createCbFetch`'s `retry` and `totalTimeoutMs` (DESIGN §8). The core loads this module with
 * `import()` only when one of them is set, and hands it what it needs from the core as
 * arguments (importing the core's modules would split the core into more chunks, which costs
 * bytes); it imports only other modules the core loads on demand.
 * Returns the instance's call: every attempt is an ordinary call of `cb`, through the breaker.
 */
export function retrier(
  config: ResolvedCbFetchOptions,
  cb: Call,
  instance: CbFetch,
  kit: RetryKit,
): Call {
  const { keyFor, urlOf, retryAfterMs, deadlines, retries } = kit;
  const retry = config.retry!;
  const { totalTimeoutMs } = config;
  const { clock, random, halfOpenMaxProbes } = config.breaker;
  const methods = retry.methods?.map((method) => method.toUpperCase()) ?? IDEMPOTENT;
  const statuses = retry.statusCodes ?? STATUSES;
  // `totalTimeoutMs` bounds each attempt with `timeoutMs`'s code, loaded only when it is set (if
  // it cannot load, attempts go unbounded; waits are still bounded).
  const timeouts =
    totalTimeoutMs === undefined ? undefined : import("../fetch/timeout.js").catch(() => {});
  const budgets = budgetsOf(instance);
  budgets.options = retry.budget;
  budgets.clock = clock;
  budgets.maxKeys = config.maxBreakers;

  /** Whether the breaker would refuse a call now (checked so a refused retry gets no fallback). */
  function refuses(key: string): boolean {
    const breaker = instance.breaker(key);
    const state = breaker.state;
    return (
      state === "open" ||
      (state === "half-open" && breaker.stats.probesInFlight >= halfOpenMaxProbes)
    );
  }

  async function run(key: string, limit: number, input: FetchInput, init?: RequestInit) {
    const url = urlOf(input);
    const signal = signalOf(input, init);
    const deadline = totalTimeoutMs === undefined ? Infinity : clock.now() + totalTimeoutMs;
    const budget = budgets.for(key);
    const Bound = (await timeouts)?.Timeout;
    let last: Outcome | undefined;
    for (let attempt = 0; ; attempt++) {
      // The caller's Request is read by the last attempt only; earlier ones send a copy.
      const sent =
        attempt < limit && isRequest(input) && input.body !== null ? input.clone() : input;
      // An attempt it aborts is a timeout, like one `timeoutMs` aborts.
      const bound = Bound && new Bound(key, Math.ceil(deadline - clock.now()), signal, deadlines);
      let sentInit = bound ? bound.init(sent, init) : init;
      if (attempt > 0) retries.add((sentInit = initWith(sentInit, {})));
      let outcome: Outcome;
      try {
        const response = await cb(sent, sentInit);
        bound?.settle(response);
        outcome = { response };
      } catch (error) {
        bound?.settle();
        outcome = { error };
      }
      // A retry the breaker (or the bulkhead) refused: the last real outcome, untouched.
      if (last !== undefined && "error" in outcome && isRefusal(outcome.error)) return settle(last);
      // Any other outcome replaces the last one: free the last failing response's connection.
      if (last !== undefined && "response" in last) cancel(last.response);
      last = outcome;
      let reason: RetryReason = "status";
      if ("response" in outcome) {
        if (!statuses.includes(outcome.response.status)) return outcome.response;
      } else {
        const { error } = outcome;
        // The total bound, the caller's abort or mistake, a refused redirect, a refusal: never
        // retried (none of them is the origin failing).
        if (
          bound?.fired ||
          !isRetriable(error) ||
          isCallersMistake(url, sent, init) ||
          refusedRedirect(sent, init)
        ) {
          throw error;
        }
        reason = (error as Error).name === "TimeoutError" ? "timeout" : "error";
      }
      const delayMs = attempt < limit ? delayOf(outcome, attempt) : undefined;
      // No retry left, a Retry-After too long, no time left, or no budget: this outcome, at once.
      if (delayMs === undefined || clock.now() + delayMs >= deadline || !budget.take())
        return settle(outcome);
      const event: CircuitEventInit = {
        key,
        state: instance.state(key),
        attempt: attempt + 1,
        delayMs,
        reason,
      };
      (instance.events as CircuitEvents).emit("retry", event);
      try {
        await sleep(delayMs, signal);
        // A Retry-After waited exactly: timers may fire a moment before the breaker's clock
        // says the open time is over, so wait that moment too (the retry is its probe).
        const due = (instance.breaker(key).retryAt ?? 0) - clock.now();
        if (due > 0 && due <= DUE_MARGIN_MS) await sleep(due, signal);
      } catch (abort) {
        if ("response" in outcome) cancel(outcome.response);
        throw abort;
      }
      // An open circuit: no call (and so no fallback), the last real outcome.
      if (refuses(key)) return settle(outcome);
    }
  }

  /** How long to wait before retry `attempt` (from 0); `undefined`: do not retry. */
  function delayOf(outcome: Outcome, attempt: number): number | undefined {
    if ("response" in outcome) {
      const { status, headers } = outcome.response;
      if (status === 429 || status === 503) {
        const wait = retryAfterMs(headers.get("retry-after"), Date.now());
        if (wait !== undefined) return wait <= retry.maxRetryAfterMs ? wait : undefined;
      }
    }
    return random() * Math.min(retry.maxDelayMs, retry.delayMs * 2 ** attempt);
  }

  return (input, init) => {
    let key: string | undefined;
    try {
      key = keyFor(urlOf(input), input, init);
    } catch {}
    // Not guarded, or the caller's own mistake (cb rethrows it): no retry, not counted.
    if (key === undefined) return cb(input, init);
    if (!budgets.counted.has(input as object)) budgets.for(key).first();
    const limit = retry.limit > 0 && replayable(input, init, methods) ? retry.limit : 0;
    if (limit === 0 && totalTimeoutMs === undefined) return cb(input, init);
    return run(key, limit, input, init);
  };
}

/** A refusal by the breaker or the bulkhead (matched by name: their classes live in the core). */
function isRefusal(error: unknown): boolean {
  const name = (error as Error | undefined)?.name;
  return name === "CircuitOpenError" || name === "BulkheadFullError";
}

function cancel(response: Response): void {
  response.body?.cancel().catch(() => {});
}

function settle(outcome: Outcome): Response {
  if ("response" in outcome) return outcome.response;
  throw outcome.error;
}

/** A network error or cbfetch's own timeout: not a refusal, not a bug of the caller's. */
function isRetriable(error: unknown): boolean {
  return error instanceof TypeError || (error as Error | undefined)?.name === "TimeoutError";
}

/**
 * Whether a request may be sent again: an idempotent method (or an `Idempotency-Key` header),
 * and a body fetch copies (a string, bytes, a Blob, URLSearchParams, FormData) or a `Request`
 * body that can still be cloned. A stream, an async iterable or anything else is read once:
 * never retried, whatever its type.
 */
function replayable(input: FetchInput, init: RequestInit | undefined, methods: readonly string[]) {
  const request = isRequest(input) ? input : undefined;
  try {
    if (init?.body !== undefined) {
      if (!copied(init.body)) return false;
    } else if (request?.body != null && (request.bodyUsed || request.body.locked)) {
      return false;
    }
    const method = (init?.method ?? request?.method ?? "GET").toUpperCase();
    if (methods.includes(method)) return true;
    return new Headers(init?.headers ?? request?.headers).has("idempotency-key");
  } catch {
    return false; // a bad init or headers: the caller's mistake, which fetch reports
  }
}

/** A body fetch copies when it sends it, so it can send it again. */
function copied(body: unknown): boolean {
  return (
    body == null ||
    typeof body === "string" ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) ||
    ["Blob", "URLSearchParams", "FormData"].some((name) => {
      const type = (globalThis as Record<string, unknown>)[name];
      return typeof type === "function" && body instanceof type;
    })
  );
}

function isRequest(value: unknown): value is Request {
  return typeof value === "object" && typeof (value as { url?: unknown } | null)?.url === "string";
}

function signalOf(input: FetchInput, init: RequestInit | undefined): AbortSignal | undefined {
  return init?.signal ?? (isRequest(input) ? input.signal : undefined) ?? undefined;
}

/** Waits `ms`, or rejects with the signal's reason as soon as the caller aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
