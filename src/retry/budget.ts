import type { Clock } from "../breaker/types.js";
import { Window } from "../breaker/window.js";
import type { RetryBudgetOptions } from "./types.js";

/** {@link RetryBudgetOptions} with every field set. */
export type BudgetOptions = Required<RetryBudgetOptions>;

const DEFAULTS: BudgetOptions = { ratio: 0.2, minRetries: 3, windowMs: 10_000 };

/**
 * One key's retry budget: retries may not exceed `minRetries` + `ratio` × first attempts over
 * the last `windowMs`, counted in a sliding window (O(1) per call, no timers).
 */
export class RetryBudget {
  /** `a`: first attempts, `b`: retries; made with the budget's window on first use. */
  #window: Window | undefined;
  /** Retries taken since this budget was made (the `retries` counter of stats). */
  retries = 0;

  constructor(readonly owner: RetryBudgets) {}

  /** Counts a first attempt (a logical request). */
  first(): void {
    this.#count(1, 0);
  }

  /**
   * Takes one retry if the budget allows it; `false`: the failure is to be returned at once.
   * With `peek`, only says whether it would (nothing is taken).
   */
  take(peek?: boolean): boolean {
    const { options } = this.owner;
    if (options !== false) {
      const window = this.#count(0, 0) as Window;
      if (window.b + 1 > options.minRetries + options.ratio * window.a) return false;
    }
    if (peek) return true;
    this.#count(0, 1);
    this.retries++;
    return true;
  }

  /** Adds to the window (none without a budget); returns it. */
  #count(firsts: number, retries: number): Window | undefined {
    const { options, clock } = this.owner;
    if (options === false) return undefined;
    this.#window ??= new Window(options.windowMs);
    this.#window.add(clock.now(), firsts, retries);
    return this.#window;
  }
}

/**
 * The retry budgets of one fetch instance, one per key, at most `maxKeys` (the oldest goes
 * first, so attacker-chosen origins cannot grow memory). Shared by cbfetch's own retries and
 * ky's (`cbfetch/ky`), so both draw on the same budget.
 */
export class RetryBudgets {
  /** `false`: no budget (retries are still counted). */
  options: BudgetOptions | false = DEFAULTS;
  /**
   * The instance's clock once its retry code has loaded; until then (and for `cbfetch/ky` on an
   * instance without `retry`) the default clock's epoch milliseconds, so the switch to it keeps
   * the counts.
   */
  clock: Clock = { now: () => performance.timeOrigin + performance.now() };
  maxKeys = 1000;
  /**
   * Requests whose first attempt is already counted (by `cbfetch/ky`, once per ky request):
   * cbfetch's own retry loop does not count them again.
   */
  readonly counted = new WeakSet<object>();
  readonly #byKey = new Map<string, RetryBudget>();

  /** The budget of `key`, made when new. */
  for(key: string): RetryBudget {
    let budget = this.#byKey.get(key);
    if (budget === undefined) {
      if (this.#byKey.size >= this.maxKeys) this.#byKey.delete(this.#byKey.keys().next().value!);
      budget = new RetryBudget(this);
      this.#byKey.set(key, budget);
    }
    return budget;
  }

  /** Retries taken for `key`. */
  retries(key: string): number {
    return this.#byKey.get(key)?.retries ?? 0;
  }
}

const INSTANCES = new WeakMap<object, RetryBudgets>();

/**
 * The budgets of a fetch instance, made on first use. A cbfetch instance's `snapshot()` rows
 * then carry a `retries` counter (through its `_retries` hook).
 */
export function budgetsOf(instance: object): RetryBudgets {
  let budgets = INSTANCES.get(instance);
  if (budgets === undefined) {
    const made = (budgets = new RetryBudgets());
    INSTANCES.set(instance, made);
    const host = instance as { _retries?: unknown };
    if ("_retries" in host) host._retries = (key: string) => made.retries(key);
  }
  return budgets;
}
