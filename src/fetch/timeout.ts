import { initWith } from "./init-with.js";

/**
 * cbfetch's own `timeoutMs`: aborts with a `TimeoutError`, or when the caller's signal aborts.
 * It listens to the caller's signal itself until the response headers arrive, rather than
 * `AbortSignal.any`: Node's keeps memory per call for as long as a long-lived caller signal
 * lives, and Safari before 17.4 has none. `createCbFetch` loads this module only when
 * `timeoutMs` is set.
 */
export class Timeout {
  /** `init` with this timeout's signal (every other field as the caller gave it). */
  init(init: RequestInit | undefined): RequestInit {
    return initWith(init, { signal: this.signal });
  }

  declare readonly signal: AbortSignal;
  fired = false;
  declare readonly clear: () => void;

  constructor(key: string, ms: number, callerSignal: AbortSignal | undefined) {
    const controller = new AbortController();
    const follow = () => controller.abort(callerSignal?.reason);
    this.signal = controller.signal;
    // Not an AbortSignal: this throws, and the call rejects as fetch would.
    if (callerSignal?.aborted) follow();
    else callerSignal?.addEventListener("abort", follow);
    const timer = setTimeout(() => {
      this.fired = true;
      controller.abort(
        new DOMException(`cbfetch: no response from ${key} within ${ms} ms`, "TimeoutError"),
      );
    }, ms);
    this.clear = () => {
      clearTimeout(timer);
      callerSignal?.removeEventListener("abort", follow);
    };
  }
}
