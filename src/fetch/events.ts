import type { CircuitState, FailureKind } from "../breaker/types.js";
import type { CircuitEventInit, CircuitEventType } from "./types.js";

/** An event of a {@link CbFetch} instance. */
export class CircuitEvent extends Event {
  /** The breaker's key (the origin). */
  readonly key: string;
  /** The breaker's state after the event. */
  readonly state: CircuitState;
  /** `statechange`: the state before. */
  readonly previousState: CircuitState | undefined;
  /** `statechange` to open, `reject`: when the circuit admits a call again (epoch ms). */
  readonly retryAt: number | undefined;
  /** `failure`: why the call counted as a failure. */
  readonly kind: FailureKind | undefined;
  /** `failure` with kind `status` or `slow`: the response status. */
  readonly status: number | undefined;
  /** `failure` (network error or timeout), `reject`, `storeerror`: the error. */
  readonly error: unknown;

  constructor(type: CircuitEventType, init: CircuitEventInit) {
    super(type);
    this.key = init.key;
    this.state = init.state;
    this.previousState = init.previousState;
    this.retryAt = init.retryAt;
    this.kind = init.kind;
    this.status = init.status;
    this.error = init.error;
  }
}

/**
 * The instance's EventTarget. It remembers which types ever had a listener so the hot path
 * can skip building events nobody listens to.
 */
export class CircuitEvents extends EventTarget {
  readonly #wanted = new Set<string>();

  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: AddEventListenerOptions | boolean,
  ): void {
    this.#wanted.add(type);
    super.addEventListener(type, listener, options);
  }

  /** Whether an event of this type could reach a listener. */
  wants(type: CircuitEventType): boolean {
    return this.#wanted.has(type);
  }

  /** Dispatches a {@link CircuitEvent} if anyone listens; a throwing listener cannot break a call. */
  emit(type: CircuitEventType, init: CircuitEventInit): void {
    if (this.#wanted.has(type)) this.dispatchEvent(new CircuitEvent(type, init));
  }
}
