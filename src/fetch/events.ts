import type { CircuitState, FailureKind } from "../breaker/types.js";
import { reportListenerError } from "../report.js";
import type { RetryReason } from "../retry/types.js";

/** Event types of a {@link CbFetch} instance. */
export type CircuitEventType =
  "statechange" | "reject" | "failure" | "success" | "storeerror" | "retry";

/** Fired by a {@link CbFetch} instance. Which fields are set depends on the type. */
export interface CircuitEventInit {
  key: string;
  state: CircuitState;
  previousState?: CircuitState;
  retryAt?: number;
  kind?: FailureKind;
  status?: number;
  error?: unknown;
  attempt?: number;
  delayMs?: number;
  reason?: RetryReason;
  durationMs?: number;
}

/** An event of a {@link CbFetch} instance. */
export class CircuitEvent extends Event {
  /** The breaker's key (the origin). */
  declare readonly key: string;
  /** The breaker's state after the event. */
  declare readonly state: CircuitState;
  /** `statechange`: the state before. */
  declare readonly previousState: CircuitState | undefined;
  /**
   * `statechange` to open, `reject`: when the circuit admits a call again (epoch ms).
   * `failure` of a 429 or 503 with a valid `Retry-After`: the time it asked for.
   */
  declare readonly retryAt: number | undefined;
  /** `failure`: why the call counted as a failure. */
  declare readonly kind: FailureKind | undefined;
  /** `failure` with kind `status` or `slow`: the response status. */
  declare readonly status: number | undefined;
  /** `failure` (network error or timeout), `reject`, `storeerror`: the error. */
  declare readonly error: unknown;
  /** `retry`: which retry this is (1 for the first). */
  declare readonly attempt: number | undefined;
  /** `retry`: how long cbfetch waits before it, in ms. */
  declare readonly delayMs: number | undefined;
  /** `retry`: why the attempt before it failed. */
  declare readonly reason: RetryReason | undefined;
  /**
   * `success`, `failure` (but `probe-timeout`): how long the call took in ms (to the response
   * headers, or to the network error), where calls are timed (`slowCallMs`, or an instance
   * instrumented by `cbfetch/otel`); otherwise `undefined`.
   */
  declare readonly durationMs: number | undefined;

  constructor(type: CircuitEventType, init: CircuitEventInit) {
    super(type);
    // The fields an event of this type has (the others read as undefined).
    Object.assign(this, init);
  }
}

const BITS: Record<CircuitEventType, number> = {
  statechange: 1,
  reject: 2,
  failure: 4,
  success: 8,
  storeerror: 16,
  retry: 32,
};

/**
 * @internal
 * The instance's EventTarget. It remembers which types ever had a listener (one number, so
 * the hot path reads no more than this object) to skip building events nobody listens to.
 */
export class CircuitEvents extends EventTarget {
  #wanted = 0;
  // Each listener runs inside a wrapper that reports what it throws (as a browser does) rather
  // than throwing it: Node's EventTarget would end the process.
  readonly #wrappers = new WeakMap<EventListenerOrEventListenerObject, EventListener>();

  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: AddEventListenerOptions | boolean,
  ): void {
    this.#wanted |= BITS[type as CircuitEventType] ?? 0;
    let wrapper = listener && this.#wrappers.get(listener);
    if (listener && !wrapper) {
      wrapper = function (this: EventTarget, event: Event) {
        try {
          if (typeof listener === "function") listener.call(this, event);
          else listener.handleEvent(event);
        } catch (error) {
          reportListenerError(error);
        }
      };
      this.#wrappers.set(listener, wrapper);
    }
    super.addEventListener(type, wrapper ?? null, options);
  }

  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: EventListenerOptions | boolean,
  ): void {
    super.removeEventListener(type, (listener && this.#wrappers.get(listener)) ?? null, options);
  }

  /** Whether an event of this type could reach a listener. */
  wants(type: CircuitEventType): boolean {
    return (this.#wanted & BITS[type]) !== 0;
  }

  /** Dispatches a {@link CircuitEvent} if anyone listens; a throwing listener is reported, never thrown. */
  emit(type: CircuitEventType, init: CircuitEventInit): void {
    if (this.wants(type)) this.dispatchEvent(new CircuitEvent(type, init));
  }
}
