import { BREAKER_NUMBERS } from "../breaker/options.js";
import { FETCH_NUMBERS } from "../fetch/options.js";
import type { CbFetchOptions } from "../fetch/types.js";

/** Every numeric option; each can come from an env var (taken from the core's own tables). */
const NUMBERS = [...Object.keys(BREAKER_NUMBERS), "maxOpenMs", ...Object.keys(FETCH_NUMBERS)];
const BOOLEANS = ["respectRetryAfter"] as const;

const envName = (option: string) => option.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();

/**
 * Breaker options from Worker vars: `CB_FAILURE_THRESHOLD=3`, `CB_OPEN_MS=10000`,
 * `CB_RESPECT_RETRY_AFTER=false`, … (each numeric or boolean option, in SCREAMING_SNAKE_CASE
 * after `prefix`). Values are checked by `createCbFetch` like any option; a var with the
 * prefix that names no option, or a value that is not a number or boolean, throws a
 * TypeError naming the var.
 */
export function optionsFromEnv(env: object, prefix = "CB_"): CbFetchOptions {
  const options: Record<string, number | boolean> = {};
  const known = new Map<string, string>(
    [...NUMBERS, ...BOOLEANS].map((o) => [prefix + envName(o), o]),
  );
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(prefix)) continue;
    const option = known.get(name);
    if (option === undefined) throw new TypeError(`cbfetch: env var ${name} names no option`);
    const text = String(raw).trim();
    if ((BOOLEANS as readonly string[]).includes(option)) {
      if (text !== "true" && text !== "false") {
        throw new TypeError(
          `cbfetch: env var ${name} must be true or false, got ${JSON.stringify(text)}`,
        );
      }
      options[option] = text === "true";
    } else {
      const value = text === "" ? Number.NaN : Number(text);
      if (Number.isNaN(value)) {
        throw new TypeError(
          `cbfetch: env var ${name} must be a number, got ${JSON.stringify(text)}`,
        );
      }
      options[option] = value;
    }
  }
  return options as CbFetchOptions;
}
