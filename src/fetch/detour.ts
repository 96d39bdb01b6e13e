import type { Breaker } from "../breaker/breaker.js";
import type { Permit } from "../breaker/permit.js";
import { BulkheadFullError, type RefusalError } from "../errors.js";
import type { Entry } from "../keys/registry.js";
import { type FetchInput, isRequest, methodOf, signalOf } from "../request.js";
import { send } from "./send.js";
import type { Core } from "./core.js";

/**
 * A call off the healthy path: a key's first call (stored state, its bulkhead), the bulkhead's
 * queue, a half-open probe, a refusal (and what answers it instead: an alternate origin, the
 * fallback). It keeps the call's request, so no step hands it on.
 */
export class Detour {
  constructor(
    readonly core: Core,
    readonly input: FetchInput,
    readonly init: RequestInit | undefined,
    /** The request's URL, as given (resolved only to find its key). */
    readonly url: string,
  ) {}

  /** From a known key on: its first call waits for it, the bulkhead queues, the breaker decides. */
  run(entry: Entry): Promise<Response> {
    if (!entry.loaded) return this.afterLoad(entry);
    if (entry.bulkhead !== undefined) return this.queue(entry);
    return this.decide(entry);
  }

  /**
   * A key's first call waits (at most `loadTimeoutMs`) for its stored state and for the other
   * tabs' answer: a reload or a new tab during an outage must not probe the origin again.
   */
  private async afterLoad(entry: Entry): Promise<Response> {
    entry.hydrating ??= this.core.hydrate(entry);
    await entry.hydrating;
    entry.loaded = true;
    return entry.bulkhead === undefined ? this.decide(entry) : this.queue(entry);
  }

  /** With `maxConcurrent`: waits for a slot (or is refused), then the breaker decides. */
  private queue(entry: Entry): Promise<Response> {
    const bulkhead = entry.bulkhead!;
    return bulkhead.run(
      signalOf(this.input, this.init),
      () => this.decide(entry),
      () =>
        this.refuse(
          entry,
          new BulkheadFullError(entry.breaker.key, bulkhead.maxConcurrent, bulkhead.maxQueue),
        ),
    );
  }

  /** The breaker's decision: a closed-state call, a half-open probe, or a refusal. */
  decide(entry: Entry): Promise<Response> {
    const permit = entry.breaker.allow();
    if (permit === undefined) return this.refuse(entry, entry.breaker.openError());
    return this.decided(entry, permit);
  }

  /** Admitted on `permit`: sent, once a probe has its shared slot (other tabs, isolates). */
  decided(entry: Entry, permit: Permit): Promise<Response> {
    const shared = this.core.shared;
    if (permit.probe && shared?.probeGate !== undefined) return shared.probe(this, entry, permit);
    return this.send(entry.breaker, permit);
  }

  /** Sends the call through `breaker` on `permit`. */
  send(breaker: Breaker, permit: Permit): Promise<Response> {
    return send(this.core, breaker, permit, this.url, this.input, this.init);
  }

  /**
   * A refused call: an alternate origin or the `fallback` answers it, else it rejects with
   * `error`. A retry the breaker refuses gets neither: the retry loop ends with its last real
   * outcome instead.
   */
  async refuse(entry: Entry, error: RefusalError): Promise<Response> {
    const { core } = this;
    const { breaker } = entry;
    core.events.emit("reject", {
      key: breaker.key,
      state: breaker.state,
      retryAt: (error as { retryAt?: number }).retryAt ?? breaker.retryAt,
      error,
    });
    const fallback = core.parts.fallback;
    if (fallback !== undefined && !core.retries.has(this.init as object)) {
      const answer = fallback.answer(this, error);
      if (answer !== undefined) return answer;
    }
    throw error;
  }

  /** The request's method, upper-cased. */
  get method(): string {
    return methodOf(this.input, this.init);
  }

  /** The caller's `Request`, or one made of the URL and init (for `fallback`). */
  request(): Request {
    const { input } = this;
    return isRequest(input)
      ? input
      : new Request(new URL(this.url, globalThis.location?.href), this.init);
  }

  /** The same call to `url` (the same path on an alternate origin), through `breaker` on `permit`. */
  sendTo(url: string, breaker: Breaker, permit: Permit): Promise<Response> {
    const { input, init } = this;
    return send(
      this.core,
      breaker,
      permit,
      url,
      isRequest(input) ? new Request(url, input) : url,
      init,
    );
  }
}
