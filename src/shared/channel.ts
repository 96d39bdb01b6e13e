import type { Entry, Replica } from "./replica.js";

/** The message format's version: messages of another version are ignored, unreported. */
const PROTOCOL = 2;
/** How long a joining tab waits for its peers' state before its first call (`syncWaitMs`). */
const JOIN_WAIT_MS = 50;

type Message =
  | { cbfetch: typeof PROTOCOL; type: "hello" }
  | {
      cbfetch: typeof PROTOCOL;
      type: "state";
      records: unknown[];
    };

/** Releases a probe lock. */
export type Release = () => void;
const NO_LOCK: Release = () => {};

/**
 * Cross-tab sync over a BroadcastChannel `cbfetch:<name>`: every local change goes out as a
 * record, peers merge it (`mergeRecords`); a new tab asks its peers for their state. Half-open probes are
 * Web Locks where the platform has them, so all tabs together admit `halfOpenMaxProbes`.
 */
export class Channel {
  readonly #name: string;
  readonly #replica: Replica;
  readonly #joinMs: number;
  readonly #wait: typeof setTimeout;
  readonly #held = new Set<Release>();
  #channel: BroadcastChannel | undefined;
  #joined: Promise<void> = Promise.resolve();
  #join: () => void = () => {};
  #closed = false;

  /**
   * `joinMs`: how long {@link joined} waits for a peer; 0 resolves it at once (tests). `wait`:
   * the `setTimeout` to wait with (the one of the instance's creation, which a test's fake
   * timers installed since do not replace).
   */
  constructor(name: string, replica: Replica, joinMs = JOIN_WAIT_MS, wait = setTimeout) {
    this.#name = `cbfetch:${name}`;
    this.#replica = replica;
    this.#joinMs = joinMs;
    this.#wait = wait;
    this.rejoin();
  }

  /** Resolves when a peer answered the last hello, or after `joinMs`; never rejects. */
  get joined(): Promise<void> {
    return this.#joined;
  }

  /**
   * Opens the channel (again, after {@link suspend}) and asks the other tabs for their state:
   * at start, and when a page comes back from the back/forward cache or a freeze.
   */
  rejoin(): void {
    if (this.#closed || this.#channel !== undefined) return;
    const channel = new BroadcastChannel(this.#name);
    channel.onmessage = (event) => this.#receive(event.data);
    channel.onmessageerror = () =>
      this.#replica.report("", new TypeError("cbfetch: a cross-tab message could not be read"));
    // In Node an open channel would keep the process alive.
    (channel as { unref?: () => void }).unref?.();
    this.#channel = channel;
    this.#joined = new Promise<void>((resolve) => {
      this.#join = resolve;
      // No timer at all for 0: a test under fake timers must not wait on one.
      if (!this.#joinMs) return resolve();
      // Not unref'd: `await cb.ready` must keep a Node script alive for these few ms. Not
      // cleared early either (a real timer may not be cleared through a test's fake
      // clearTimeout): it only resolves what may be resolved already, within `joinMs`.
      const wait = this.#wait; // called unbound: a browser's setTimeout refuses another `this`
      wait(resolve, this.#joinMs);
    });
    this.#send({ cbfetch: PROTOCOL, type: "hello" });
  }

  /** Closes the channel and releases the locks until {@link rejoin} (a page put in a cache). */
  suspend(): void {
    this.#channel?.close();
    this.#channel = undefined;
    this.#join();
    for (const release of this.#held) release();
  }

  /** Tells the other tabs about a local change of `entry`. */
  post(entry: Entry): void {
    this.#send({ cbfetch: PROTOCOL, type: "state", records: [this.#replica.recordOf(entry)] });
  }

  /**
   * Takes one of `slots` cross-tab probe locks for `key`: a release function, or `undefined`
   * when every slot is held by some tab. Without Web Locks, probes are per tab. A lock is
   * released after `maxHoldMs` at the latest, so a hung probe cannot wedge every tab.
   */
  async acquireProbe(key: string, slots: number, maxHoldMs: number): Promise<Release | undefined> {
    const locks = globalThis.navigator?.locks;
    if (typeof locks?.request !== "function") return NO_LOCK;
    for (let slot = 0; slot < slots; slot++) {
      const release = await this.#tryLock(locks, `${this.#name}:${key}:probe:${slot}`, maxHoldMs);
      if (release !== undefined) return release;
    }
    return undefined;
  }

  /** Closes the channel and releases every lock; afterwards nothing is sent. */
  close(): void {
    this.#closed = true;
    this.suspend();
  }

  #tryLock(locks: LockManager, name: string, maxHoldMs: number): Promise<Release | undefined> {
    return new Promise((resolve) => {
      locks
        .request(name, { ifAvailable: true }, (lock) => {
          if (lock === null) return resolve(undefined);
          // The lock is held until the promise returned here settles.
          return new Promise<void>((unlock) => {
            const timer = setTimeout(() => release(), maxHoldMs);
            (timer as { unref?: () => void }).unref?.();
            const release = () => {
              clearTimeout(timer);
              this.#held.delete(release);
              unlock();
            };
            this.#held.add(release);
            resolve(release);
          });
        })
        // A platform that refuses locks (an opaque origin, say) falls back to per-tab probes.
        .catch(() => resolve(NO_LOCK));
    });
  }

  #send(message: Message): void {
    const channel = this.#channel;
    if (channel === undefined) return; // closed, or suspended: nothing is sent
    try {
      channel.postMessage(message);
    } catch (error) {
      this.#replica.report("", error);
    }
  }

  #receive(data: unknown): void {
    const message = data as Partial<Message> | null;
    if (typeof message === "object" && message !== null && "cbfetch" in message) {
      if (message.cbfetch !== PROTOCOL) return; // another version of cbfetch: not ours to judge
      if (message.type === "hello") return this.#answerHello();
      if (message.type === "state" && Array.isArray(message.records)) {
        for (const record of message.records) this.#replica.apply(record, "cross-tab");
        this.#join();
        return;
      }
    }
    this.#replica.report("", new TypeError("cbfetch: ignored a malformed cross-tab message"));
  }

  /** A new tab asked: tell it every breaker this tab knows something about. */
  #answerHello(): void {
    const records = [];
    for (const entry of this.#replica.registry.values()) {
      if (this.#replica.knows(entry)) records.push(this.#replica.recordOf(entry));
    }
    this.#send({ cbfetch: PROTOCOL, type: "state", records });
  }
}
