import type { Clock } from "../../src/index.js";

/** A manual clock in epoch ms: tests move time with `advance`. */
export class ManualClock implements Clock {
  constructor(public t = 1_700_000_000_000) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}
