import {
  BREAKER_NUMBERS,
  checkNumber,
  type NumberRule,
  THROTTLE_NUMBERS,
} from "../breaker/options.js";
import { FETCH_NUMBERS } from "../fetch/options.js";
import type { CbFetchOptions } from "../fetch/types.js";

/**
 * Every numeric option, with its rule; each can come from an env var (the core's own tables).
 * `throttle`'s fields are `throttle_k`, … here (`CB_THROTTLE_K`, …).
 */
const NUMBERS: Record<string, NumberRule> = {
  ...BREAKER_NUMBERS,
  maxOpenMs: [undefined, 0, "above"],
  ...FETCH_NUMBERS,
};
for (const field in THROTTLE_NUMBERS) NUMBERS[`throttle_${field}`] = THROTTLE_NUMBERS[field]!;
const BOOLEANS = ["respectRetryAfter", "throttle"];
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)$/;

const envName = (option: string) => option.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
/** Variables already reported as likely typos (each once per isolate). */
const reported = new Set<string>();

/**
 * Breaker options from Worker vars: `CB_FAILURE_THRESHOLD=3`, `CB_OPEN_MS=10000`,
 * `CB_RESPECT_RETRY_AFTER=false`, … (each numeric or boolean option, in SCREAMING_SNAKE_CASE
 * after `prefix`). `CB_THROTTLE=true` turns the throttle on with its defaults, and
 * `CB_THROTTLE_K`, `CB_THROTTLE_WINDOW_MS`, `CB_THROTTLE_MIN_REQUESTS` set its fields (any of
 * them turns it on; `CB_THROTTLE=false` keeps it off). Numbers are decimal. A bad value throws
 * a `TypeError` or `RangeError` naming the variable and its value. A variable of the prefix
 * that names no option is left alone (your own `CB_API_TOKEN` is fine); one that looks like a
 * typo of an option's name is reported once with `console.warn`.
 */
export function optionsFromEnv(env: object, prefix = "CB_"): CbFetchOptions {
  const options: Record<string, number | boolean | Record<string, number>> = {};
  const throttle: Record<string, number> = {};
  const known = new Map<string, string>(
    [...Object.keys(NUMBERS), ...BOOLEANS].map((o) => [prefix + envName(o), o]),
  );
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(prefix)) continue;
    const option = known.get(name);
    if (option === undefined) {
      warnIfTypo(name, known.keys());
      continue;
    }
    const text = String(raw).trim();
    const bad = (expected: string, Type = TypeError): never => {
      throw new Type(`cbfetch: env var ${name} must be ${expected}, got ${JSON.stringify(text)}`);
    };
    if (BOOLEANS.includes(option)) {
      if (text !== "true" && text !== "false") bad("true or false");
      options[option] = text === "true";
      continue;
    }
    if (!DECIMAL.test(text)) bad("a decimal number");
    try {
      const value = checkNumber(option, Number(text), NUMBERS[option]!)!;
      // A throttle field turns it on (unless CB_THROTTLE=false).
      if (option.startsWith("throttle_")) throttle[option.slice(9)] = value;
      else options[option] = value;
    } catch (error) {
      bad(String((error as Error).message).replace(/^.* must be (.*), got .*$/, "$1"), RangeError);
    }
  }
  if (options.throttle !== false && Object.keys(throttle).length > 0) options.throttle = throttle;
  return options as CbFetchOptions;
}

function warnIfTypo(name: string, known: Iterable<string>): void {
  if (reported.has(name)) return;
  for (const option of known) {
    if (distance(name, option) <= 2 || option.startsWith(`${name}_`)) {
      if (reported.size < 100) reported.add(name);
      console.warn(`cbfetch: env var ${name} names no option; did you mean ${option}?`);
      return;
    }
  }
}

/** Levenshtein distance between two short strings. */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      next[j] = Math.min((row[j] ?? 0) + 1, (next[j - 1] ?? 0) + 1, (row[j - 1] ?? 0) + cost);
    }
    row = next;
  }
  return row[b.length] ?? 0;
}
