import type { Policy } from "./policy.js";

/**
 * The default policy: trip after `threshold` consecutive failures. The breaker counts them (they
 * are in its stats), so this holds no state: one serves every breaker of an instance.
 */
export class ConsecutivePolicy implements Policy {
  readonly timed = false;
  readonly #threshold: number;

  constructor(threshold: number) {
    this.#threshold = threshold;
  }

  success(): void {}

  failure(_now: number, consecutive: number): boolean {
    return consecutive >= this.#threshold;
  }

  reset(): void {}
}
