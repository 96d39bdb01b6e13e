import type { Clock } from "../breaker/types.js";
import type { BreakerSnapshot, RetryBudgetOptions } from "../fetch/types.js";

/** {@link RetryBudgetOptions} with every field set. */
export type BudgetOptions = Required<RetryBudgetOptions>;

const BUCKETS = 10;
const DEFAULTS: BudgetOptions = { ratio: 0.2, minRetries: 3, windowMs: 10_000 };

/**
 * One key's retry budget: retries may not exceed `minRetries` + `ratio` × first attempts over
 * the last `windowMs`. Both counts are kept in a ring of 10 buckets with running totals, like
 * the failure-rate window: O(1) per call, no timers.
 */
export class RetryBudget {
  readonly #firsts = new Uint32Array(BUCKETS);
  readonly #retried = new Uint32Array(BUCKETS);
  #bucket = -1;
  #totalFirsts = 0;
  #totalRetried = 0;
  /** Retries taken since this budget was made (the `retries` counter of stats). */
  retries = 0;

  constructor(readonly owner: RetryBudgets) {}

  /** Counts a first attempt (a logical request). */
  first(): void {
    const slot = this.#advance();
    if (slot < 0) return;
    this.#firsts[slot]!++;
    this.#totalFirsts++;
  }

  /**
   * Takes one retry if the budget allows it; `false`: the failure is to be returned at once.
   * With `peek`, only says whether it would (nothing is taken).
   */
  take(peek?: boolean): boolean {
    const { options } = this.owner;
    const slot = this.#advance();
    if (
      options !== false &&
      this.#totalRetried + 1 > options.minRetries + options.ratio * this.#totalFirsts
    )
      return false;
    if (peek) return true;
    if (slot >= 0) {
      this.#retried[slot]!++;
      this.#totalRetried++;
    }
    this.retries++;
    return true;
  }

  /**
   * The current bucket's slot after clearing those the window moved past; -1 with no budget.
   * A clock that jumps (back, or a new one: see {@link RetryBudgets.clock}) starts afresh.
   */
  #advance(): number {
    const { options, clock } = this.owner;
    if (options === false) return -1;
    const bucket = Math.floor(clock.now() / (options.windowMs / BUCKETS));
    const steps = bucket - this.#bucket;
    if (steps > 0 && steps < BUCKETS) {
      for (let i = 0; i < steps; i++) {
        const slot = (bucket - i) % BUCKETS;
        this.#totalFirsts -= this.#firsts[slot]!;
        this.#totalRetried -= this.#retried[slot]!;
        this.#firsts[slot] = this.#retried[slot] = 0;
      }
    } else if (steps) {
      this.#firsts.fill(0);
      this.#retried.fill(0);
      this.#totalFirsts = this.#totalRetried = 0;
    }
    this.#bucket = bucket;
    return bucket % BUCKETS;
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
 * then carry a `retries` counter.
 */
export function budgetsOf(instance: object): RetryBudgets {
  let budgets = INSTANCES.get(instance);
  if (budgets === undefined) {
    const made = new RetryBudgets();
    const target = instance as { snapshot?: () => BreakerSnapshot[] };
    const snapshot = target.snapshot;
    if (typeof snapshot === "function") {
      target.snapshot = () => snapshot().map((row) => ({ ...row, retries: made.retries(row.key) }));
    }
    INSTANCES.set(instance, (budgets = made));
  }
  return budgets;
}
