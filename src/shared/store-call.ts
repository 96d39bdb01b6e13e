/** What a store call settles with when it threw, rejected or timed out. */
export const FAILED: unique symbol = Symbol("failed");

/** How a store call ended: its answer, or {@link FAILED} and why. */
export type Settled = (answer: unknown, error: unknown, call: StoreCall) => void;

/** In Node, a timer of cbfetch's must not keep the process alive. */
export const unref = (timer: ReturnType<typeof setTimeout>) =>
  (timer as { unref?: () => void }).unref?.();

/**
 * One call to a store, with a deadline. It settles once: with the store's answer, or as failed
 * (an error, or the deadline passed). Whoever notices first settles it: the answer, its own
 * timer, or a later caller of {@link StoreCall.expireIfDue}. In workerd a timer set by a request
 * that has ended never fires (and promise callbacks of that request never run), so a call must
 * not need its own timer: the next request that looks settles it, and `onSettle` runs in that
 * request, synchronously. Its promise belongs to the request that made the call, and only that
 * request resolves it (workerd refuses a promise resolved from another request): a later
 * request waits on it with a timer of its own.
 */
export class StoreCall {
  /** When it times out, on the instance's clock. */
  readonly deadline: number;
  readonly #ms: number;
  readonly #onSettle: Settled;
  readonly #late: ((value: unknown) => void) | undefined;
  readonly #settled: Promise<unknown>;
  #resolve: (value: unknown) => void = () => {};
  #done = false;
  #timer: ReturnType<typeof setTimeout>;

  /**
   * Calls `operation` now (synchronously). `onSettle` learns how it ended; `late` gets an
   * answer that came after the call had timed out (a lease to give back, say).
   */
  constructor(
    operation: () => unknown,
    ms: number,
    now: number,
    onSettle: Settled,
    late?: (value: unknown) => void,
  ) {
    this.deadline = now + ms;
    this.#ms = ms;
    this.#onSettle = onSettle;
    this.#late = late;
    this.#settled = new Promise((resolve) => (this.#resolve = resolve));
    this.#timer = setTimeout(() => this.#timeOut(true), ms);
    unref(this.#timer);
    try {
      Promise.resolve(operation()).then(
        (value) => (this.#done ? this.#late?.(value) : this.#settle(value, undefined)),
        (error: unknown) => this.#settle(FAILED, error),
      );
    } catch (error) {
      this.#settle(FAILED, error);
    }
  }

  /** Whether it has settled. */
  get done(): boolean {
    return this.#done;
  }

  /**
   * Times the call out if its deadline has passed (`now`, on the instance's clock); its
   * promise stays as it is (it belongs to the request that made the call).
   */
  expireIfDue(now: number): void {
    if (now >= this.deadline) this.#timeOut(false);
  }

  /**
   * Its answer, or {@link FAILED}, once it has settled in the request that made it (one that
   * {@link StoreCall.expireIfDue} settled elsewhere never resolves: wait with a deadline).
   */
  settled(): Promise<unknown> {
    return this.#settled;
  }

  #timeOut(own: boolean): void {
    const error = new Error(`cbfetch: the store did not answer within ${this.#ms} ms`);
    this.#settle(FAILED, error, own);
  }

  #settle(answer: unknown, error: unknown, own = true): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#timer);
    this.#onSettle(answer, error, this);
    if (own) this.#resolve(answer);
  }
}
