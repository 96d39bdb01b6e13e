import {
  BREAKER_OPTION_NAMES,
  badOption,
  checkGroup,
  checkKnownKeys,
  checkNumbers,
  checkObject,
  checkType,
  MAX_TIMER_MS,
  type NumberRule,
  type ResolvedBreakerOptions,
  resolveBreakerOptions,
} from "../breaker/options.js";
import type { BreakerStore } from "../shared/store.js";
import { isFailureStatus } from "./classify.js";
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
  /** Whether a key's first call waits for something: stored state, or the bulkhead's code. */
  readonly preload: boolean;
  readonly loadTimeoutMs: number;
  readonly syncWaitMs: number;
  /** Set when `retry` or `totalTimeoutMs` is: the retry module loads. */
  readonly retry: ResolvedRetryOptions | undefined;
  readonly totalTimeoutMs: number | undefined;
}

/** `retry` validated; `methods` and `statusCodes` are `undefined` for the defaults. */
export interface ResolvedRetryOptions {
  readonly limit: number;
  readonly methods: readonly string[] | undefined;
  readonly statusCodes: readonly number[] | undefined;
  readonly delayMs: number;
  readonly maxDelayMs: number;
  readonly maxRetryAfterMs: number;
  /** `false`: no budget. */
  readonly budget: { ratio: number; minRetries: number; windowMs: number } | false;
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
/** `retry`'s numbers (DESIGN §8); waits are timers. */
const RETRY_NUMBERS: Record<string, NumberRule> = {
  limit: [2, 0, "integer"],
  delayMs: [300, 0, "at least", MAX_TIMER_MS],
  maxDelayMs: [10_000, 0, "at least", MAX_TIMER_MS],
  maxRetryAfterMs: [60_000, 0, "at least", MAX_TIMER_MS],
};
const RETRY_LISTS = { methods: "string", statusCodes: "number" };
const BUDGET_NUMBERS: Record<string, NumberRule> = {
  ratio: [0.2, 0],
  minRetries: [3, 0, "integer"],
  windowMs: [10_000, 0, "above"],
};
const FUNCTIONS = ["fetch", "keyOf", "isFailure", "fallback"] as const;

const OPTION_NAMES = [
  ...BREAKER_OPTION_NAMES,
  ...Object.keys(FETCH_NUMBERS),
  ...FUNCTIONS,
  "respectRetryAfter",
  "networkErrors",
  "networkCheck",
  "fallbackOrigins",
  "store",
  "sync",
  "retry",
];

/** Validates `createCbFetch` options; throws a TypeError or RangeError naming the bad one. */
export function resolveCbFetchOptions(options: CbFetchOptions): ResolvedCbFetchOptions {
  checkKnownKeys("createCbFetch", checkObject("options", options), OPTION_NAMES);
  for (const name of FUNCTIONS) checkType(name, options[name], "function");
  const { fallbackOrigins, respectRetryAfter = true, store } = options;
  const sync = resolveSync(options.sync);
  const persisted = store !== undefined || sync !== undefined;
  return {
    ...(checkNumbers(FETCH_NUMBERS, options) as unknown as ResolvedCbFetchOptions),
    breaker: resolveBreakerOptions(options),
    fetch: options.fetch,
    keyOf: options.keyOf,
    isFailure: options.isFailure ?? isFailureStatus,
    respectRetryAfter: checkType("respectRetryAfter", respectRetryAfter, "boolean"),
    ...resolveNetwork(options.networkErrors, options.networkCheck),
    fallback: options.fallback,
    fallbackOrigins: fallbackOrigins && resolveFallbackOrigins(fallbackOrigins),
    store: store && checkStore(store),
    retry:
      options.retry === undefined && options.totalTimeoutMs === undefined
        ? undefined
        : resolveRetry(options.retry ?? 0),
    sync,
    persisted,
    preload: persisted || options.maxConcurrent !== undefined,
  };
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
  let url: URL | undefined;
  if (check === undefined) {
    url = page === undefined ? undefined : new URL("/", page);
  } else if (check !== false) {
    try {
      url = new URL(check as string, page);
    } catch {}
    if (typeof check !== "string" || !/^https?:$/.test(url?.protocol ?? "")) {
      badOption("networkCheck", "an http(s) URL or false", check);
    }
  }
  return {
    networkErrors: (errors ?? (inBrowser() ? "verify" : "count")) as "count" | "verify",
    networkCheck: url && /^https?:$/.test(url.protocol) ? url.href : undefined,
  };
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
 * Defaults of the lists are filled in by the retry module, which also upper-cases `methods`.
 */
function resolveRetry(value: unknown): ResolvedRetryOptions {
  const retry = checkGroup(
    "retry",
    typeof value === "number" ? { limit: value } : value,
    RETRY_NUMBERS,
    Object.keys(RETRY_LISTS).concat("budget"),
  );
  for (const [name, type] of Object.entries(RETRY_LISTS)) {
    const list = retry[name];
    if (list !== undefined && !(Array.isArray(list) && list.every((v) => typeof v === type)))
      badOption(`retry.${name}`, `an array of ${type}s`, list);
  }
  if (retry.budget !== false)
    retry.budget = checkGroup("retry.budget", retry.budget ?? {}, BUDGET_NUMBERS);
  return retry as unknown as ResolvedRetryOptions;
}

function checkStore(store: unknown): BreakerStore {
  const methods = checkObject("store", store);
  for (const name of ["load", "save"]) {
    if (typeof methods[name] !== "function")
      badOption(`store.${name}`, "a function", methods[name]);
  }
  return store as BreakerStore;
}

/** Checks that every key and alternate is an http(s) origin, and normalizes them. */
function resolveFallbackOrigins(value: unknown): Map<string, readonly string[]> {
  const result = new Map<string, readonly string[]>();
  for (const [from, alternates] of Object.entries(checkObject("fallbackOrigins", value))) {
    const name = `fallbackOrigins[${JSON.stringify(from)}]`;
    if (!Array.isArray(alternates)) badOption(name, "an array", alternates);
    result.set(
      toOrigin(name, from),
      alternates.map((origin) => toOrigin(name, origin)),
    );
  }
  return result;
}

function toOrigin(name: string, value: unknown): string {
  let url: URL | undefined;
  try {
    url = new URL(value as string);
  } catch {}
  if (typeof value !== "string" || !/^https?:$/.test(url?.protocol ?? "")) {
    badOption(name, "http(s) origins", value);
  }
  return (url as URL).origin;
}
