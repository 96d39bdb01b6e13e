import {
  BREAKER_OPTION_NAMES,
  checkFunction,
  checkKnownKeys,
  checkNumber,
  checkObject,
  describe,
  type ResolvedBreakerOptions,
  resolveBreakerOptions,
} from "../breaker/options.js";
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
  readonly maxBreakers: number;
  readonly maxConcurrent: number | undefined;
  readonly maxQueue: number;
  readonly fallback: CbFetchOptions["fallback"];
  readonly fallbackOrigins: ReadonlyMap<string, readonly string[]> | undefined;
}

const FETCH_OPTION_NAMES = [
  ...BREAKER_OPTION_NAMES,
  "fetch",
  "keyOf",
  "isFailure",
  "timeoutMs",
  "respectRetryAfter",
  "maxBreakers",
  "maxConcurrent",
  "maxQueue",
  "fallback",
  "fallbackOrigins",
];

/** Validates `createCbFetch` options; throws a TypeError or RangeError naming the bad one. */
export function resolveCbFetchOptions(options: CbFetchOptions): ResolvedCbFetchOptions {
  checkKnownKeys("createCbFetch", checkObject("options", options), FETCH_OPTION_NAMES);
  const positive = { minExclusive: true };
  const fn = <T>(name: keyof CbFetchOptions, value: T) =>
    value === undefined ? undefined : checkFunction(name, value);
  const respectRetryAfter = options.respectRetryAfter ?? true;
  if (typeof respectRetryAfter !== "boolean") {
    throw new TypeError(
      `cbfetch: option "respectRetryAfter" must be a boolean, got ${describe(respectRetryAfter)}`,
    );
  }
  return {
    breaker: resolveBreakerOptions(options),
    fetch: fn("fetch", options.fetch),
    keyOf: fn("keyOf", options.keyOf),
    isFailure: fn("isFailure", options.isFailure) ?? isFailureStatus,
    timeoutMs:
      options.timeoutMs === undefined
        ? undefined
        : checkNumber("timeoutMs", options.timeoutMs, positive),
    respectRetryAfter,
    maxBreakers: checkNumber("maxBreakers", options.maxBreakers ?? 1000, { min: 1, integer: true }),
    maxConcurrent:
      options.maxConcurrent === undefined
        ? undefined
        : checkNumber("maxConcurrent", options.maxConcurrent, { min: 1, integer: true }),
    maxQueue: checkNumber("maxQueue", options.maxQueue ?? 0, { integer: true }),
    fallback: fn("fallback", options.fallback),
    fallbackOrigins:
      options.fallbackOrigins === undefined
        ? undefined
        : resolveFallbackOrigins(options.fallbackOrigins),
  };
}

/** Checks that every key and alternate is an http(s) origin, and normalizes them. */
function resolveFallbackOrigins(value: unknown): Map<string, readonly string[]> {
  const table = checkObject("fallbackOrigins", value);
  const result = new Map<string, readonly string[]>();
  for (const [from, alternates] of Object.entries(table)) {
    const name = `fallbackOrigins[${JSON.stringify(from)}]`;
    if (!Array.isArray(alternates)) {
      throw new TypeError(
        `cbfetch: option "${name}" must be an array of origins, got ${describe(alternates)}`,
      );
    }
    result.set(
      normalizeOrigin(name, from),
      alternates.map((origin) => normalizeOrigin(name, origin)),
    );
  }
  return result;
}

function normalizeOrigin(name: string, value: unknown): string {
  let url: URL | undefined;
  try {
    url = typeof value === "string" ? new URL(value) : undefined;
  } catch {}
  if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw new TypeError(
      `cbfetch: option "${name}" must hold http(s) origins, got ${describe(value)}`,
    );
  }
  return url.origin;
}
