import type { Breaker } from "../breaker/breaker.js";
import type { Clock } from "../breaker/types.js";

/** What the watch reads of its instance's core. */
export interface NetworkCore {
  readonly config: {
    /** The URL checked when no other origin has answered; `undefined`: none. */
    readonly networkCheck: string | undefined;
    readonly breaker: { readonly clock: Clock };
  };
  /** The instance's events: refused calls (`reject`) are watched while the network is down. */
  readonly events: EventTarget;
  readonly judge: { answers(): number; watch: NetworkWatch | undefined };
  readonly kit: { originOf(url: string): string | undefined };
  /** Every breaker of the instance. */
  breakers(): Iterable<Breaker>;
  /** The fetch that does the work. */
  fetch(): typeof fetch;
}

/** The browser judge's active half: the network check, and noticing the network's return. */
export interface NetworkWatch {
  /**
   * Checks the second place for a network error of `key`: a promise of whether it answered,
   * shared by the errors meanwhile; `false` when no check may be made now.
   */
  check(key: string): false | Promise<boolean>;
  /** Answers of the check so far: they count as another origin's. */
  readonly checked: number;
  /** A network failure of `breaker` counted: if it opened the circuit, watch for the network. */
  counted(breaker: Breaker): void;
  /** The network was judged down with `answers` seen: watch for its return. */
  down(answers: number): void;
  /** Stops listening (the instance is closed). */
  close(): void;
}

/** A check that has not answered by then counts as failed: the user's network. */
const CHECK_TIMEOUT_MS = 5_000;
/** After a failed check, the next one waits this long, doubling up to {@link CHECK_MAX_GAP_MS}. */
const CHECK_GAP_MS = 1_000;
const CHECK_MAX_GAP_MS = 60_000;

/**
 * The browser judge's active half, a part a page loads as soon as its instance is made (never
 * on a server): the check of a second place when no other origin has answered, at most one per
 * suspicion (shared by the errors meanwhile, backed off after a failure, none while another
 * runs); and the network's return (an `online` event, or an answer from any origin, including
 * the check's), which makes the circuits a network failure opened half-open at once.
 */
export function watchNetwork(core: NetworkCore): NetworkWatch {
  let checked = 0;
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

  /** The network is back: the circuits a network failure opened, still in that open, are due. */
  function networkBack(): void {
    unwatch?.();
    unlisten?.();
    unwatch = unlisten = undefined;
    for (const breaker of core.breakers()) {
      // Due now, exactly (its backoff kept): the next call is its probe. Not an open decided
      // since (a status failure, a Retry-After, another tab's): that one stands.
      const retryAt = opened.get(breaker.key);
      if (opened.has(breaker.key) && breaker.state === "open" && breaker.retryAt === retryAt) {
        breaker.forceOpen(0);
      }
    }
    opened.clear();
  }

  return {
    get checked() {
      return checked;
    },

    check(key) {
      const url = core.config.networkCheck;
      if (url === undefined || core.kit.originOf(url) === key) return false;
      if (checking !== undefined) return checking;
      const now = core.config.breaker.clock.now();
      if (now < nextCheckAt) return false;
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), CHECK_TIMEOUT_MS);
      const answered = (works: boolean) => {
        clearTimeout(timer);
        checking = undefined;
        if (works) {
          checked++;
          gap = 0;
          if (unwatch !== undefined) networkBack();
        } else {
          gap = Math.min(Math.max(gap * 2, CHECK_GAP_MS), CHECK_MAX_GAP_MS);
          nextCheckAt = now + gap;
        }
        return works;
      };
      try {
        checking = core
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
    },

    counted(breaker) {
      queueMicrotask(() => {
        if (breaker.state !== "open") return;
        opened.set(breaker.key, breaker.retryAt);
        // The browser may say the network is back without the judge ever seeing it down (the
        // page was idle, or only made refused calls): listen for that while it is open.
        if (unlisten === undefined && !closed) {
          const target = globalThis as Partial<EventTarget>;
          target.addEventListener?.("online", networkBack);
          unlisten = () => target.removeEventListener?.("online", networkBack);
        }
      });
    },

    down(answers) {
      if (unwatch !== undefined || closed) return;
      // An answer from any origin shows up at the next refused call of a network-opened
      // circuit: seen then (the refused calls' events), so healthy calls pay nothing for this.
      const refused = (event: Event) => {
        if (opened.has((event as Event & { key: string }).key) && core.judge.answers() > answers) {
          networkBack();
        }
      };
      core.events.addEventListener("reject", refused);
      unwatch = () => core.events.removeEventListener("reject", refused);
    },

    close() {
      closed = true;
      unwatch?.();
      unlisten?.();
      unwatch = unlisten = undefined;
    },
  };
}

/** Hooks the watch into a fetch instance's judge (a page's instance loads this part at once). */
export function install(core: NetworkCore): void {
  core.judge.watch = watchNetwork(core);
}
