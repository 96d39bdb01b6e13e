import type { Clock } from "../breaker/types.js";
import type { isRefusal } from "../errors.js";
import type { Timeout } from "../guards/timeout.js";
import type { isCallersMistake, refusedRedirect } from "../outcome/mistakes.js";
import type { retryAfterMs } from "../outcome/status.js";
import type { FetchInput, initWith, isRequest, signalOf, urlOf } from "../request.js";
import { budgetsOf } from "./budget.js";
import type { ResolvedRetryOptions, RetryReason } from "./types.js";

type Call = (input: FetchInput, init?: RequestInit) => Promise<Response>;

/**
 * What the retry loop reads of its instance's core (the core's own object, typed here by what
 * this part needs of it, so it imports nothing of the wrapper).
 */
export interface RetryCore {
  readonly config: {
    readonly retry?: ResolvedRetryOptions | undefined;
    readonly totalTimeoutMs: number | undefined;
    /** At most this many keys get a budget. */
    readonly maxBreakers: number;
    readonly breaker: {
      readonly clock: Clock;
      readonly random: () => number;
      readonly halfOpenMaxProbes: number;
    };
  };
  /** `timeoutMs`'s deadline, for `totalTimeoutMs` (missing: attempts go unbounded). */
  readonly parts: { readonly timeout?: { readonly Timeout: typeof Timeout } | undefined };
  /** Where a fired deadline's signal goes: the core then counts that abort as a timeout. */
  readonly deadlines: WeakSet<AbortSignal>;
  /** Inits of retries: the core gives a refused one no fallback. */
  readonly retries: WeakSet<object>;
  readonly events: { emit(type: "retry", init: RetryEventInit): void };
  readonly registry: { get(key: string): { readonly breaker: RetriedBreaker } };
  /**
   * The core's own helpers, handed over: a part that imported them would split them into a
   * chunk of their own, one more for every app to load.
   */
  readonly kit: {
    isRefusal: typeof isRefusal;
    isCallersMistake: typeof isCallersMistake;
    refusedRedirect: typeof refusedRedirect;
    retryAfterMs: typeof retryAfterMs;
    initWith: typeof initWith;
    isRequest: typeof isRequest;
    signalOf: typeof signalOf;
    urlOf: typeof urlOf;
  };
  /** One attempt: an ordinary call through the breaker. */
  call: Call;
  /** The key guarding a request, or `undefined` when it passes through. */
  keyFor(url: string, input: FetchInput, init: RequestInit | undefined): string | undefined;
  /** Where the instance's calls go once retries are in. */
  retrying: Call | undefined;
}

/** What the loop reads of a key's breaker: whether it would refuse a retry, and when not. */
interface RetriedBreaker {
  readonly state: string;
  readonly retryAt: number | undefined;
  readonly stats: { probesInFlight: number };
}

/** A `retry` event's fields. */
interface RetryEventInit {
  key: string;
  state: "closed" | "open" | "half-open";
  attempt: number;
  delayMs: number;
  reason: RetryReason;
}

const IDEMPOTENT = ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"];
/** How early a timer may fire before a wait's end on the breaker's clock. */
const DUE_MARGIN_MS = 20;
const STATUSES = [408, 429, 500, 502, 503, 504];

/** The last real outcome of an attempt: a failing response, or an error. */
type Outcome = { response: Response } | { error: unknown };

/**
 * `createCbFetch`'s `retry` and `totalTimeoutMs`: retries of idempotent requests, within a
 * budget per key. The core loads this module only when one of them is set. Returns the
 * instance's call: every attempt is an ordinary call through the breaker.
 */
/** Hooks retries into a fetch instance (which loads this part for `retry` or `totalTimeoutMs`). */
export function install(core: RetryCore, instance: object): void {
  core.retrying = retrier(core, instance);
}

export function retrier(core: RetryCore, instance: object): Call {
  const { config, deadlines, retries, registry } = core;
  const retry = config.retry!;
  const { totalTimeoutMs } = config;
  const { clock, random, halfOpenMaxProbes } = config.breaker;
  const cb = core.call;
  // Attempts are bounded by `totalTimeoutMs` with `timeoutMs`'s code, which the core loads first.
  const Bound = totalTimeoutMs === undefined ? undefined : core.parts.timeout?.Timeout;
  const { isRefusal, isCallersMistake, refusedRedirect, retryAfterMs } = core.kit;
  const { initWith, isRequest, signalOf, urlOf } = core.kit;
  const methods = retry.methods?.map((method) => method.toUpperCase()) ?? IDEMPOTENT;
  const statuses = retry.statusCodes ?? STATUSES;
  const budgets = budgetsOf(instance);
  budgets.options = retry.budget;
  budgets.clock = clock;
  budgets.maxKeys = config.maxBreakers;

  /** Whether the breaker would refuse a call now (checked so a refused retry gets no fallback). */
  function refuses(key: string): boolean {
    const breaker = registry.get(key).breaker;
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
    let last: Outcome | undefined;
    for (let attempt = 0; ; attempt++) {
      // The caller's Request is read by the last attempt only; earlier ones send a copy.
      const sent =
        attempt < limit && isRequest(input) && input.body !== null ? input.clone() : input;
      // An attempt it aborts is a timeout, like one `timeoutMs` aborts.
      const bound = Bound && new Bound(key, Math.ceil(deadline - clock.now()), signal, deadlines);
      let sentInit = bound ? initWith(init, bound.fields(sent, init)) : init;
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
      const state = registry.get(key).breaker.state as RetryEventInit["state"];
      core.events.emit("retry", { key, state, attempt: attempt + 1, delayMs, reason });
      try {
        await sleep(delayMs, signal);
        // A Retry-After waited exactly: timers may fire a moment before the breaker's clock
        // says the open time is over, so wait that moment too (the retry is its probe).
        const due = (registry.get(key).breaker.retryAt ?? 0) - clock.now();
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
      key = core.keyFor(urlOf(input), input, init);
    } catch {}
    // Not guarded, or the caller's own mistake (cb rethrows it): no retry, not counted.
    if (key === undefined) return cb(input, init);
    if (!budgets.counted.has(input as object)) budgets.for(key).first();
    const request = isRequest(input) ? input : undefined;
    const limit = retry.limit > 0 && replayable(request, init, methods) ? retry.limit : 0;
    if (limit === 0 && totalTimeoutMs === undefined) return cb(input, init);
    return run(key, limit, input, init);
  };
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
function replayable(
  request: Request | undefined,
  init: RequestInit | undefined,
  methods: readonly string[],
) {
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
