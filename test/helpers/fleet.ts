import { type ChildProcess, fork } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

const PROGRAM = fileURLToPath(new URL("../redis/process.mjs", import.meta.url));

export interface Answer<T> {
  value: T;
  storeErrors: number;
  errorLog: string[];
  state: string;
}

/** A real Node process with cbfetch and redisStore (test/redis/process.mjs), run by IPC. */
export class FleetProcess {
  readonly child: ChildProcess;
  readonly name: string;
  #next = 1;
  readonly #waiting = new Map<number, (answer: Answer<unknown>) => void>();
  readonly ready: Promise<void>;

  constructor(name: string, config: Record<string, unknown>) {
    this.name = name;
    this.child = fork(PROGRAM, [JSON.stringify({ name, ...config })], {
      stdio: ["ignore", "ignore", "inherit", "ipc"],
    });
    let started: () => void = () => {};
    this.ready = new Promise((resolve) => (started = resolve));
    this.child.on("message", (message: { id: number } & Answer<unknown>) => {
      if (message.id === 0) return started();
      this.#waiting.get(message.id)?.(message);
      this.#waiting.delete(message.id);
    });
  }

  /** Sends a request; resolves with the answer. */
  ask<T>(type: string, fields: Record<string, unknown> = {}): Promise<Answer<T>> {
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve as (answer: Answer<unknown>) => void);
      this.child.send({ id, type, ...fields });
    });
  }

  /** Calls `url` `count` times; the outcomes. */
  async call(url: string, count = 1, parallel = 1): Promise<string[]> {
    return (await this.ask<string[]>("call", { url, count, parallel })).value;
  }

  /** Resolves once `url`'s breaker is in `state` here: the epoch ms it got there. */
  async until(url: string, state: string): Promise<number> {
    return (await this.ask<number>("until", { url, state })).value;
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, "exit");
    await this.ask("close");
    await exited;
  }

  /** `kill -9`. */
  async kill(): Promise<void> {
    const exited = once(this.child, "exit");
    this.child.kill("SIGKILL");
    await exited;
  }
}
