/**
 * Per caller signal, the deadlines that follow it: one listener per signal however many calls
 * share it (a page-wide signal, say), so no listener piles up and Node never warns of a leak.
 */
const followers = new WeakMap<AbortSignal, Set<AbortController>>();

/** Makes `controller` abort when `signal` does; returns what stops that. */
function follow(signal: AbortSignal, controller: AbortController): () => void {
  let group = followers.get(signal);
  if (group === undefined) {
    const members = (group = new Set());
    // Not an AbortSignal: this throws, and the call rejects as fetch would.
    signal.addEventListener("abort", () => {
      for (const member of members) member.abort(signal.reason);
      members.clear();
    });
    followers.set(signal, group);
  }
  group.add(controller);
  const members = group;
  return () => members.delete(controller);
}

/**
 * Stops following once the response body is collected (the response holds the body, and a
 * caller may keep only the body), as undici's own fetch does for its listener.
 */
const collected =
  typeof FinalizationRegistry === "function"
    ? new FinalizationRegistry<() => void>((unfollow) => unfollow())
    : undefined;

/**
 * cbfetch's own deadline for one attempt (`timeoutMs`, or what is left of `totalTimeoutMs`):
 * aborts with a `TimeoutError`, and follows the caller's signal, so the caller's abort still
 * reaches fetch and the response body. It follows the caller's signal itself rather than with
 * `AbortSignal.any` (Node's keeps memory per call for as long as a long-lived caller signal
 * lives, and Safari before 17.4 has none). `createCbFetch` loads this module only when
 * `timeoutMs` is set; the retry loop, when `totalTimeoutMs` is.
 */
export class Timeout {
  declare readonly signal: AbortSignal;
  /** Whether the deadline fired (rather than the caller aborting). */
  fired = false;
  /** The call ended: stops the deadline; the caller's signal is followed while `response`'s body lives. */
  declare readonly settle: (response?: Response) => void;

  /**
   * `deadlines`: where a fired deadline's signal is noted, so the core can tell cbfetch's own
   * timeout from the caller's abort whichever way the signal reached it.
   */
  constructor(
    key: string,
    ms: number,
    callerSignal: AbortSignal | undefined,
    deadlines: WeakSet<AbortSignal>,
  ) {
    const controller = new AbortController();
    const signal = (this.signal = controller.signal);
    let unfollow = () => {};
    if (callerSignal?.aborted) controller.abort(callerSignal.reason);
    else if (callerSignal != null) unfollow = follow(callerSignal, controller);
    const timer = setTimeout(() => {
      this.fired = true;
      deadlines.add(signal);
      controller.abort(
        new DOMException(`cbfetch: no response from ${key} within ${ms} ms`, "TimeoutError"),
      );
    }, ms);
    this.settle = (response) => {
      clearTimeout(timer);
      // The caller may still abort while the body downloads: keep following its signal.
      const body = response?.body;
      if (!body || collected === undefined) unfollow();
      else collected.register(body, unfollow);
    };
  }

  /**
   * The fields to put into the call's init (the core does, over the caller's own): this
   * deadline's signal, and a `Request`'s referrer and referrer policy, which fetch resets for a
   * `Request` given any init of its own.
   */
  fields(input: RequestInfo | URL, init: RequestInit | undefined): RequestInit {
    const fields: RequestInit = { signal: this.signal };
    const request = input as Partial<Request>;
    if (typeof request.referrer === "string" && !hasField(init, "referrer")) {
      fields.referrer = request.referrer;
    }
    if (typeof request.referrerPolicy === "string" && !hasField(init, "referrerPolicy")) {
      fields.referrerPolicy = request.referrerPolicy;
    }
    return fields;
  }
}

function hasField(init: RequestInit | undefined, name: keyof RequestInit): boolean {
  return typeof init === "object" && init !== null && (init as RequestInit)[name] !== undefined;
}
