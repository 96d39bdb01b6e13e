import { Breaker, type TransitionListener } from "../breaker/breaker.js";
import type { ResolvedBreakerOptions } from "../breaker/options.js";
import { originOf } from "./key.js";

/** One key's breaker, its optional bulkhead, and what the registry and the store track. */
export interface Entry {
  readonly breaker: Breaker;
  /** Set before the key's first call when `maxConcurrent` is (the `bulkhead` part's). */
  bulkhead: Queue | undefined;
  /** Used since the last eviction sweep. */
  used: boolean;
  /** What the shared-state module keeps for this key (its merged record); never read here. */
  shared: unknown;
  /** False until the store's state for this key was looked for (always true without a store). */
  loaded: boolean;
  /** The pending look-up, while there is one. */
  hydrating: Promise<void> | undefined;
}

/** A key's bulkhead, as a call uses it (see `guards/bulkhead.ts`). */
export interface Queue {
  readonly maxConcurrent: number;
  readonly maxQueue: number;
  /** Runs `call` once a slot is free, or answers with `full()` when no queue place is. */
  run(
    signal: AbortSignal | undefined,
    call: () => Promise<Response>,
    full: () => Promise<Response>,
  ): Promise<Response>;
}

export interface RegistryOptions {
  readonly breaker: ResolvedBreakerOptions;
  readonly maxBreakers: number;
  /** Whether a key's first call waits for something: stored state, or the bulkhead's code. */
  readonly preload: boolean;
}

/**
 * The breakers of one instance, at most `maxBreakers`. Eviction is CLOCK (second chance), an
 * O(1) approximation of least-recently-used: a hit only sets a bit, instead of moving the
 * entry on every call.
 */
export class Registry {
  readonly #entries = new Map<string, Entry>();
  // The entry of the last origin looked up by URL: most apps talk to one or two origins, and
  // a prefix check on the URL is far cheaper than parsing out and hashing a fresh key.
  #last: Entry | undefined;
  #lastUrl = "";

  readonly #options: RegistryOptions;
  readonly #listener: TransitionListener;

  constructor(options: RegistryOptions, listener: TransitionListener) {
    this.#options = options;
    this.#listener = listener;
  }

  /** The entry for `key`, created (evicting if full) when new. */
  get(key: string): Entry {
    const entry = this.#entries.get(key);
    if (entry !== undefined) {
      entry.used = true;
      return entry;
    }
    if (this.#entries.size >= this.#options.maxBreakers) this.#evictOne();
    const created: Entry = {
      breaker: new Breaker(this.#options.breaker, key, this.#listener),
      bulkhead: undefined,
      used: false,
      shared: undefined,
      loaded: !this.#options.preload,
      hydrating: undefined,
    };
    this.#entries.set(key, created);
    return created;
  }

  /**
   * The entry for a URL's origin, or `undefined` when the URL has no origin to guard. A URL
   * whose text up to its first `/`, `?` or `#` after `://` (or its end) is a known key has that
   * origin: a serialized origin parses back to itself, and the delimiter ends its host and port.
   * So only an origin's first call pays for the URL parser; the last origin found is checked
   * first, by a prefix test.
   */
  forUrl(url: string): Entry | undefined {
    const last = this.#last;
    if (last !== undefined) {
      // The URL that found this entry, again (polling), is one comparison. Only the slower
      // paths below store it: a store per call costs more than it saves when paths vary.
      if (url === this.#lastUrl) {
        last.used = true;
        return last;
      }
      const { key } = last.breaker;
      // `lastIndexOf(key, 0) === 0` is a prefix test; `startsWith` is slower in Node 20.
      if (isDelimiter(url.charCodeAt(key.length)) && url.lastIndexOf(key, 0) === 0) {
        last.used = true;
        return last;
      }
    }
    let entry = this.#entries.get(url.slice(0, originEnd(url)));
    if (entry !== undefined) entry.used = true;
    else {
      const key = originOf(url);
      if (key === undefined) return undefined;
      entry = this.get(key);
    }
    this.#lastUrl = url;
    return (this.#last = entry);
  }

  /** The entry for `key` if it exists; does not count as a use. */
  peek(key: string): Entry | undefined {
    return this.#entries.get(key);
  }

  values(): IterableIterator<Entry> {
    return this.#entries.values();
  }

  get size(): number {
    return this.#entries.size;
  }

  #evictOne(): void {
    // Entries used since the last sweep get a second chance at the back of the line; Map
    // iteration visits them again, now unmarked, so this always ends.
    for (const [key, entry] of this.#entries) {
      this.#entries.delete(key);
      if (!entry.used) {
        if (entry === this.#last) {
          this.#last = undefined;
          this.#lastUrl = "";
        }
        return;
      }
      entry.used = false;
      this.#entries.set(key, entry);
    }
  }
}

/** Whether `code` ends an origin in a URL: `/`, `?`, `#`, or the end of the string. */
const isDelimiter = (code: number) =>
  code === 47 /* / */ || code === 63 /* ? */ || code === 35 /* # */ || Number.isNaN(code);

/**
 * Where a URL's would-be origin ends: its first `/`, `?` or `#` after `://`, or its end; 0 when
 * it has no `://` (a relative URL, or another scheme: nothing to look up).
 */
function originEnd(url: string): number {
  const start = url.indexOf("://");
  if (start <= 0) return 0;
  let end = start + 3;
  while (end < url.length && !isDelimiter(url.charCodeAt(end))) end++;
  return end;
}
