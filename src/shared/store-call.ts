/** What a store call settles with when it threw, rejected or timed out. */
export const FAILED: unique symbol = Symbol("failed");

/** How a store call ended: its answer, or why it failed. */
export type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * One call to a store, with a deadline. It settles once: with the store's answer, or as failed
 * (an error, or the deadline passed). Whoever notices first settles it: the answer, its own
 * timer, or a later caller of {@link StoreCall.expireIfDue}. In workerd a timer set by a request
 * that has ended never fires (and promise callbacks of that request never run), so a call must
 * not need its own timer: the next request that looks settles it, and `onSettle` runs in that
 * request, synchronously.
 */
export class StoreCall {
  /** When it times out, on the instance's clock. */
  readonly deadline: number;
  readonly #ms: number;
  readonly #onSettle: (outcome: Outcome, call: StoreCall) => void;
  readonly #late: ((value: unknown) => void) | undefined;
  #value: unknown = FAILED;
  #done = false;
  #waiters: Array<(value: unknown) => void> = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * Calls `operation` now (synchronously). `onSettle` learns how it ended; `late` gets an
   * answer that came after the call had timed out (a lease to give back, say).
   */
  constructor(
    operation: () => unknown,
    ms: number,
    now: number,
    onSettle: (outcome: Outcome, call: StoreCall) => void,
    late?: (value: unknown) => void,
  ) {
    this.deadline = now + ms;
    this.#ms = ms;
    this.#onSettle = onSettle;
    this.#late = late;
    this.#timer = setTimeout(() => this.#timeOut(), ms);
    // In Node, a pending store call must not keep the process alive.
    (this.#timer as { unref?: () => void }).unref?.();
    try {
      Promise.resolve(operation()).then(
        (value) => (this.#done ? this.#late?.(value) : this.#settle({ ok: true, value })),
        (error: unknown) => this.#settle({ ok: false, error }),
      );
    } catch (error) {
      this.#settle({ ok: false, error });
    }
  }

  /** Whether it has settled. */
  get done(): boolean {
    return this.#done;
  }

  /** Times the call out if its deadline has passed (`now`, on the instance's clock). */
  expireIfDue(now: number): void {
    if (now >= this.deadline) this.#timeOut();
  }

  /** Its answer once settled, or {@link FAILED}: a promise of the caller's own. */
  settled(): Promise<unknown> {
    if (this.#done) return Promise.resolve(this.#value);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #timeOut(): void {
    const error = new Error(`cbfetch: the store did not answer within ${this.#ms} ms`);
    this.#settle({ ok: false, error });
  }

  #settle(outcome: Outcome): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#timer);
    this.#value = outcome.ok ? outcome.value : FAILED;
    this.#onSettle(outcome, this);
    for (const resolve of this.#waiters.splice(0)) resolve(this.#value);
  }
}
