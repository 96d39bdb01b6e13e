/** Returned by {@link Bulkhead.acquire} when neither a slot nor a queue place is free. */
const FULL = Symbol("full");

/**
 * Limits calls in flight for one key, with a bounded FIFO queue. `createCbFetch` loads this
 * module only when `maxConcurrent` is set, so other apps do not carry its code.
 */
export class Bulkhead {
  #active = 0;
  readonly #queue: Array<() => void> = [];

  constructor(
    readonly maxConcurrent: number,
    readonly maxQueue: number,
  ) {}

  /**
   * Runs `call` once a slot is free; when neither a slot nor a queue place is, answers with
   * `full()` instead (the core makes the `BulkheadFullError`, a class it exports).
   */
  async run(
    signal: AbortSignal | undefined,
    call: () => Promise<Response>,
    full: () => Promise<Response>,
  ): Promise<Response> {
    const wait = this.acquire(signal);
    if (wait === FULL) return full();
    if (wait !== undefined) await wait;
    try {
      return await call();
    } finally {
      this.release();
    }
  }

  /**
   * Takes a slot: `undefined` when one was free, a promise that resolves when one frees up
   * (rejecting with the signal's reason if the caller aborts while queued), or {@link FULL}.
   */
  acquire(signal: AbortSignal | undefined): Promise<void> | undefined | typeof FULL {
    if (this.#active < this.maxConcurrent) {
      this.#active++;
      return undefined;
    }
    if (this.#queue.length >= this.maxQueue) return FULL;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const index = this.#queue.indexOf(admit);
        if (index >= 0) this.#queue.splice(index, 1);
        reject(signal?.reason);
      };
      // The slot passes straight from the releasing call to this one: `active` is unchanged.
      const admit = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#queue.push(admit);
    });
  }

  /** Frees a slot, handing it to the oldest queued call if any. */
  release(): void {
    const next = this.#queue.shift();
    if (next) next();
    else this.#active--;
  }
}
