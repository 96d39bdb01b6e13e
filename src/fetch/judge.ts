import type { Breaker } from "../breaker/breaker.js";
import type { Clock } from "../breaker/types.js";
import type { CircuitEvents } from "./events.js";
import { originOf } from "./key.js";
import { isCallersMistake, refusedRedirect, type StreamMark } from "./mistakes.js";

type FetchInput = RequestInfo | URL;

/** Decides how rejected fetches count, for one instance. */
export interface Judge {
  /**
   * Whether a rejected fetch counts against its origin: `true`, `false`, or, while the network
   * is being checked, a promise of that. The caller's rejection never waits for it.
   */
  counts: Verdict;
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

/** What the judge needs of its instance. */
export interface JudgeContext {
  /** `"count"`: every network error counts (servers); `"verify"`: the browser rule. */
  readonly networkErrors: "count" | "verify";
  /** The URL checked when no other origin has answered; `undefined`: none. */
  readonly networkCheck: string | undefined;
  readonly clock: Clock;
  readonly events: CircuitEvents;
  /** Every breaker of the instance. */
  breakers(): Iterable<Breaker>;
  /** The fetch that does the work. */
  fetch(): typeof fetch;
}

/** A check that has not answered by then counts as failed: the user's network. */
const CHECK_TIMEOUT_MS = 5_000;
/** After a failed check, the next one waits this long, doubling up to {@link CHECK_MAX_GAP_MS}. */
const CHECK_GAP_MS = 1_000;
const CHECK_MAX_GAP_MS = 60_000;

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
export function createJudge(context: JudgeContext): Judge {
  if (context.networkErrors === "count") {
    return {
      counts: (_breaker, url, input, init, timedOut, stream) =>
        timedOut || !callersOwn(url, input, init, stream),
      close() {},
    };
  }
  return browserJudge(context);
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

function browserJudge(context: JudgeContext): Judge {
  const { clock, events } = context;
  // Network failures this judge let count, per breaker: they are in its failure count, but
  // they are no answers.
  const counted = new WeakMap<Breaker, number>();
  const answersOf = (breaker: Breaker) => {
    const { successes, failures } = breaker.stats;
    return successes + failures - (counted.get(breaker) ?? 0);
  };
  /** The last network error of the two most recent keys. */
  let marks: Mark[] = [];
  /** Answers of the network check, which count as another origin's. */
  let checkAnswers = 0;
  let checking: Promise<boolean> | undefined;
  let nextCheckAt = 0;
  let gap = 0;
  /** Keys whose circuit a network failure opened, with that open's `retryAt`. */
  const opened = new Map<string, number | undefined>();
  /** Set while the network is judged down: stops watching answers for its return. */
  let unwatch: (() => void) | undefined;
  /** Set while a network-opened circuit may still be open: stops listening for `online`. */
  let unlisten: (() => void) | undefined;
  /** After the instance's `close()`: no listener is added any more. */
  let closed = false;

  /** Every answer so far (the check's included), and those of `breaker` itself. */
  const tally = (breaker: Breaker) => {
    let total = checkAnswers;
    let own = 0;
    for (const each of context.breakers()) {
      const answers = answersOf(each);
      total += answers;
      if (each === breaker) own = answers;
    }
    return { total, own };
  };

  /** The network was judged down with `answers` seen: watch for its return. */
  function down(answers: number): void {
    if (unwatch !== undefined || closed) return;
    // An answer from any origin shows up at the next refused call of a network-opened circuit:
    // seen then (the refused calls' events), so healthy calls pay nothing for this watch.
    const refused = (event: Event) => {
      const key = (event as Event & { key: string }).key;
      if (!opened.has(key)) return;
      let total = checkAnswers;
      for (const each of context.breakers()) total += answersOf(each);
      if (total > answers) networkBack();
    };
    events.addEventListener("reject", refused);
    unwatch = () => events.removeEventListener("reject", refused);
  }

  /** The network is back: the circuits a network failure opened, still in that open, are due. */
  function networkBack(): void {
    unwatch?.();
    unlisten?.();
    unwatch = unlisten = undefined;
    for (const [key, retryAt] of opened) {
      // Due now, exactly (its backoff kept): the next call is its probe. Not an open decided
      // since (a status failure, a Retry-After, another tab's): that one stands.
      for (const breaker of context.breakers()) {
        if (breaker.key === key && breaker.state === "open" && breaker.retryAt === retryAt) {
          breaker.forceOpen(0);
        }
      }
    }
    opened.clear();
  }

  /** A network failure of `breaker` counts: once counted, note whether it opened the circuit. */
  function count(breaker: Breaker): true {
    counted.set(breaker, (counted.get(breaker) ?? 0) + 1);
    queueMicrotask(() => {
      if (breaker.state !== "open") return;
      opened.set(breaker.key, breaker.retryAt);
      // The browser may say the network is back without this judge ever seeing it down (the
      // page was idle, or only made refused calls): listen for that while such a circuit is open.
      if (unlisten === undefined && !closed) {
        const target = globalThis as Partial<EventTarget>;
        target.addEventListener?.("online", networkBack);
        unlisten = () => target.removeEventListener?.("online", networkBack);
      }
    });
    return true;
  }

  /** Checks the second place: resolves true when it answers (any status). */
  function check(key: string): false | Promise<boolean> {
    const url = context.networkCheck;
    if (url === undefined || originOf(url) === key) return false;
    if (checking !== undefined) return checking;
    const now = clock.now();
    if (now < nextCheckAt) return false;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), CHECK_TIMEOUT_MS);
    const answered = (works: boolean) => {
      clearTimeout(timer);
      checking = undefined;
      if (works) {
        checkAnswers++;
        gap = 0;
        if (unwatch !== undefined) networkBack();
      } else {
        gap = Math.min(Math.max(gap * 2, CHECK_GAP_MS), CHECK_MAX_GAP_MS);
        nextCheckAt = now + gap;
      }
      return works;
    };
    try {
      checking = context
        .fetch()(url, {
          method: "HEAD",
          mode: "no-cors",
          cache: "no-store",
          credentials: "omit",
          redirect: "manual",
          signal: controller.signal,
        })
        .then(
          () => answered(true),
          () => answered(false),
        );
    } catch {
      return answered(false) as false; // a fetch that throws: no network to check with
    }
    return checking;
  }

  const counts: Verdict = (breaker, url, input, init, timedOut, stream) => {
    if (!timedOut && callersOwn(url, input, init, stream)) return false;
    const { total, own } = tally(breaker);
    if (globalThis.navigator?.onLine === false) {
      down(total);
      return false; // offline: the user's Wi-Fi, not the origin
    }
    const key = breaker.key;
    const other = marks.find((mark) => mark.key !== key);
    marks = other ? [{ key, answers: total }, other] : [{ key, answers: total }];
    // Another origin answered since the last network error elsewhere (or ever, before any).
    if (other ? total > other.answers : total > own) return count(breaker);
    const verdict = check(key);
    const judged = (works: boolean) => (works ? count(breaker) : (down(total), false));
    return verdict === false ? judged(false) : verdict.then(judged);
  };
  const close = () => {
    closed = true;
    unwatch?.();
    unlisten?.();
    unwatch = unlisten = undefined;
  };
  return { counts, close };
}
