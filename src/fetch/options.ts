import {
  BREAKER_NUMBERS,
  BREAKER_OTHERS,
  badOption,
  MAX_TIMER_MS,
  type NumberRule,
  type ResolvedBreakerOptions,
  readGroup,
  resolveBreakerOptions,
  type TypeRule,
} from "../breaker/options.js";
import { isFailureStatus } from "../outcome/status.js";
import type { ResolvedRetryOptions } from "../retry/types.js";
import type { BreakerStore } from "../shared/store.js";
import type { CbFetchOptions } from "./types.js";

/** {@link CbFetchOptions} validated, with defaults filled in. */
export interface ResolvedCbFetchOptions {
  readonly breaker: ResolvedBreakerOptions;
  readonly fetch: CbFetchOptions["fetch"];
  readonly keyOf: CbFetchOptions["keyOf"];
  readonly isFailure: (response: Response) => boolean;
  readonly timeoutMs: number | undefined;
  readonly respectRetryAfter: boolean;
  /** How network errors count: `"verify"` in a browser, `"count"` on a server (see judge.ts). */
  readonly networkErrors: "count" | "verify";
  /** The URL the browser rule checks; `undefined`: none. */
  readonly networkCheck: string | undefined;
  readonly maxBreakers: number;
  readonly maxConcurrent: number | undefined;
  readonly maxQueue: number;
  readonly fallback: CbFetchOptions["fallback"];
  readonly fallbackOrigins: ReadonlyMap<string, readonly string[]> | undefined;
  readonly store: BreakerStore | undefined;
  /** The channel name, or `undefined` when sync is off or impossible here. */
  readonly sync: string | undefined;
  /** Whether a store or sync is set. */
  readonly persisted: boolean;
  /** Whether a key's first call waits for something: stored state, or its bulkhead. */
  readonly preload: boolean;
  readonly loadTimeoutMs: number;
  readonly syncWaitMs: number;
  /** Set when `retry` or `totalTimeoutMs` is: the retry part loads. */
  readonly retry: ResolvedRetryOptions | undefined;
  readonly totalTimeoutMs: number | undefined;
}

/** Numeric options of `createCbFetch` beyond the breaker's; the `…TimeoutMs` ones are timers. */
export const FETCH_NUMBERS: Record<string, NumberRule> = {
  timeoutMs: [undefined, 0, "above", MAX_TIMER_MS],
  maxBreakers: [1000, 1, "integer"],
  maxConcurrent: [undefined, 1, "integer"],
  maxQueue: [0, 0, "integer"],
  loadTimeoutMs: [200, 0, "above", MAX_TIMER_MS],
  totalTimeoutMs: [undefined, 0, "above", MAX_TIMER_MS],
  // How long a new instance's first call waits for the other tabs' state (with `sync`).
  syncWaitMs: [50, 0, "at least", MAX_TIMER_MS],
};

/** The other options of `createCbFetch`; `any`: checked on their own below. */
const FETCH_OTHERS: Record<string, TypeRule> = {
  ...BREAKER_OTHERS,
  fetch: "function",
  keyOf: "function",
  isFailure: "function",
  fallback: "function",
  respectRetryAfter: "boolean",
  networkErrors: "any",
  networkCheck: "any",
  fallbackOrigins: "object",
  store: "object",
  sync: "any",
  retry: "any",
};

/** `retry`'s numbers; waits are timers. */
const RETRY_NUMBERS: Record<string, NumberRule> = {
  limit: [2, 0, "integer"],
  delayMs: [300, 0, "at least", MAX_TIMER_MS],
  maxDelayMs: [10_000, 0, "at least", MAX_TIMER_MS],
  maxRetryAfterMs: [60_000, 0, "at least", MAX_TIMER_MS],
};
const BUDGET_NUMBERS: Record<string, NumberRule> = {
  ratio: [0.2, 0],
  minRetries: [3, 0, "integer"],
  windowMs: [10_000, 0, "above"],
};

/** Validates `createCbFetch` options; throws a TypeError or RangeError naming the bad one. */
export function resolveCbFetchOptions(options: CbFetchOptions): ResolvedCbFetchOptions {
  const read = readGroup(
    "createCbFetch",
    options,
    { ...BREAKER_NUMBERS, ...FETCH_NUMBERS },
    FETCH_OTHERS,
  );
  const { fallbackOrigins, store, retry, totalTimeoutMs } = read as CbFetchOptions;
  const sync = resolveSync(read.sync);
  const persisted = store !== undefined || sync !== undefined;
  if (store) for (const name of ["load", "save"]) checkMethod(store, name, "store");
  return {
    ...(read as unknown as ResolvedCbFetchOptions),
    breaker: resolveBreakerOptions(read),
    isFailure: (read.isFailure as ResolvedCbFetchOptions["isFailure"]) ?? isFailureStatus,
    respectRetryAfter: read.respectRetryAfter !== false,
    ...resolveNetwork(read.networkErrors, read.networkCheck),
    fallbackOrigins: fallbackOrigins && resolveFallbackOrigins(fallbackOrigins),
    retry:
      retry === undefined && totalTimeoutMs === undefined ? undefined : resolveRetry(retry ?? 0),
    sync,
    persisted,
    preload: persisted || read.maxConcurrent !== undefined,
  };
}

/** Throws unless `object[name]` is a function. */
function checkMethod(object: object, name: string, where: string): void {
  const method = (object as Record<string, unknown>)[name];
  if (typeof method !== "function") badOption(`${where}.${name}`, "a function", method);
}

/**
 * Whether a user's own network sits between this code and the origins: a page, or a browser
 * worker (dedicated, shared or service). Decided by what is there, never by a user agent:
 * workerd's global scope is a `ServiceWorkerGlobalScope` but no `WorkerGlobalScope`, and Node,
 * Bun and Deno have neither a document nor a worker scope.
 */
function inBrowser(): boolean {
  const scope = (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope;
  return (
    typeof document === "object" || (typeof scope === "function" && globalThis instanceof scope)
  );
}

/** `networkErrors` and `networkCheck`, with the runtime's defaults; the check URL resolved. */
function resolveNetwork(errors: unknown, check: unknown) {
  if (errors !== undefined && errors !== "count" && errors !== "verify") {
    badOption("networkErrors", '"count" or "verify"', errors);
  }
  const page = globalThis.location?.href;
  return {
    networkErrors: (errors ?? (inBrowser() ? "verify" : "count")) as "count" | "verify",
    networkCheck:
      check === false
        ? undefined
        : check === undefined
          ? page && httpUrl("", "/", page)?.href
          : httpUrl("networkCheck", check, page)?.href,
  };
}

/**
 * `value` as an http(s) URL (resolved against `base`); throws naming `name` unless it is one
 * (with no `name`: `undefined` instead).
 */
function httpUrl(name: string, value: unknown, base?: string): URL | undefined {
  let url: URL | undefined;
  try {
    url = new URL(value as string, base);
  } catch {}
  if (typeof value === "string" && /^https?:$/.test(url?.protocol ?? "")) return url;
  if (name) badOption(name, "an http(s) URL", value);
  return undefined;
}

/** `sync` as a channel name; `undefined` when off, or where there is no BroadcastChannel. */
function resolveSync(value: unknown): string | undefined {
  if (value === undefined || value === false) return undefined;
  if (value !== true && (typeof value !== "string" || value === "")) {
    badOption("sync", "true, false or a non-empty channel name", value);
  }
  if (typeof BroadcastChannel !== "function") return undefined;
  return value === true ? "default" : value;
}

/**
 * `retry`: a limit, or an object of numbers, two lists and a budget (an object, or `false`).
 * Defaults of the lists are filled in by the retry part, which also upper-cases `methods`.
 */
function resolveRetry(value: unknown): ResolvedRetryOptions {
  const lists = { methods: "string", statusCodes: "number" };
  const retry = readGroup(
    "retry",
    typeof value === "number" ? { limit: value } : value,
    RETRY_NUMBERS,
    { methods: "any", statusCodes: "any", budget: "any" },
    "retry.",
  );
  for (const [name, type] of Object.entries(lists)) {
    const list = retry[name];
    if (list !== undefined && !(Array.isArray(list) && list.every((v) => typeof v === type)))
      badOption(`retry.${name}`, `an array of ${type}s`, list);
  }
  if (retry.budget !== false) {
    retry.budget = readGroup(
      "retry.budget",
      retry.budget ?? {},
      BUDGET_NUMBERS,
      {},
      "retry.budget.",
    );
  }
  return retry as unknown as ResolvedRetryOptions;
}

/** Checks that every key and alternate is an http(s) origin, and normalizes them. */
function resolveFallbackOrigins(value: unknown): Map<string, readonly string[]> {
  const result = new Map<string, readonly string[]>();
  for (const [from, alternates] of Object.entries(value as object)) {
    const name = `fallbackOrigins[${JSON.stringify(from)}]`;
    if (!Array.isArray(alternates)) badOption(name, "an array", alternates);
    const origin = (url: unknown) => (httpUrl(name, url) as URL).origin;
    result.set(origin(from), alternates.map(origin));
  }
  return result;
}
