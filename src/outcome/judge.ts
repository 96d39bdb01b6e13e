import type { Breaker } from "../breaker/breaker.js";
import type { FetchInput } from "../request.js";
import { isCallersMistake, refusedRedirect, type StreamMark } from "./mistakes.js";
import type { NetworkWatch } from "./network.js";

/** Decides how rejected fetches count, for one instance. */
export interface Judge {
  /**
   * Whether a rejected fetch counts against its origin: `true`, `false`, or, while the network
   * is being checked, a promise of that. The caller's rejection never waits for it.
   */
  counts: Verdict;
  /** Answers seen so far, from every origin (for the network's return). */
  answers(): number;
  /** The browser rule's active half, once the `network` part is in (see network.ts). */
  watch: NetworkWatch | undefined;
  /** Stops listening for the network's return (the instance is closed). */
  close(): void;
}

type Verdict = (
  breaker: Breaker,
  url: string,
  input: FetchInput,
  init: RequestInit | undefined,
  timedOut: boolean,
  stream: StreamMark | undefined,
) => boolean | Promise<boolean>;

/**
 * "Is it me or them?" A rejected fetch that the caller caused (its abort, a used body, a bad
 * `init`) never counts. Otherwise, on a server runtime (Node, Bun, Deno, workerd) there is no
 * user's network between cbfetch and the origin: a refused connection, a reset or cbfetch's
 * own timeout counts. In a browser a network error proves nothing about the origin, while an
 * answer of any status proves the network works: a network error counts only when some other
 * origin has answered since the last network error of another origin; when none has, one
 * check of a second place (the page's own origin, by default) decides, at most one per
 * suspicion. A circuit a network failure opened goes half-open as soon as the network shows
 * it is back: an `online` event, or an answer from any origin.
 */
export function createJudge(
  networkErrors: "count" | "verify",
  breakers: () => Iterable<Breaker>,
): Judge {
  if (networkErrors === "count") {
    return {
      counts: (_breaker, url, input, init, timedOut, stream) =>
        timedOut || !callersOwn(url, input, init, stream),
      answers: () => 0,
      watch: undefined,
      close() {},
    };
  }
  return browserJudge(breakers);
}

/** The caller's own doing, or a refused redirect: never held against the origin. */
function callersOwn(
  url: string,
  input: FetchInput,
  init: RequestInit | undefined,
  stream: StreamMark | undefined,
): boolean {
  return isCallersMistake(url, input, init, stream) || refusedRedirect(input, init);
}

/** The last network error of a key: the answers seen by then. */
interface Mark {
  key: string;
  answers: number;
}

/**
 * The browser's rule, passive half: a network error counts when another origin has answered
 * since the last network error elsewhere (or ever, before any); offline, never. The active half
 * (the check, the network's return) is the `network` part, `watch` once it is in: until then
 * (or where it cannot load, in a Service Worker without `cbfetch/sw`) an error with no such
 * evidence does not count.
 */
function browserJudge(breakers: () => Iterable<Breaker>): Judge {
  // Network failures this judge let count, per breaker: they are in its failure count, but
  // they are no answers.
  const counted = new WeakMap<Breaker, number>();
  const answersOf = (breaker: Breaker) => {
    const { successes, failures } = breaker.stats;
    return successes + failures - (counted.get(breaker) ?? 0);
  };
  /** The last network error of the two most recent keys. */
  let marks: Mark[] = [];

  /** Every answer so far (the check's included), and those of `breaker` itself. */
  const tally = (breaker: Breaker) => {
    let total = judge.watch?.checked ?? 0;
    let own = 0;
    for (const each of breakers()) {
      const answers = answersOf(each);
      total += answers;
      if (each === breaker) own = answers;
    }
    return { total, own };
  };

  /** A network failure of `breaker` counts. */
  const count = (breaker: Breaker): true => {
    counted.set(breaker, (counted.get(breaker) ?? 0) + 1);
    judge.watch?.counted(breaker);
    return true;
  };

  const judge: Judge = {
    watch: undefined,
    counts(breaker, url, input, init, timedOut, stream) {
      if (!timedOut && callersOwn(url, input, init, stream)) return false;
      const { total, own } = tally(breaker);
      const watch = judge.watch;
      if (globalThis.navigator?.onLine === false) {
        watch?.down(total);
        return false; // offline: the user's Wi-Fi, not the origin
      }
      const key = breaker.key;
      const other = marks.find((mark) => mark.key !== key);
      marks = other ? [{ key, answers: total }, other] : [{ key, answers: total }];
      // Another origin answered since the last network error elsewhere (or ever, before any).
      if (other ? total > other.answers : total > own) return count(breaker);
      const judged = (works: boolean) => (works ? count(breaker) : (watch?.down(total), false));
      const verdict = watch?.check(key) ?? false;
      return verdict === false ? judged(false) : verdict.then(judged);
    },
    answers() {
      let total = 0;
      for (const each of breakers()) total += answersOf(each);
      return total;
    },
    close() {
      judge.watch?.close();
    },
  };
  return judge;
}
