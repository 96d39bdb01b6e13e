/**
 * `cbfetch/redis`: breaker state shared by every process of a fleet (Node, Bun or Deno behind a
 * load balancer, serverless functions) through Redis. The core never imports this module, and
 * it imports no Redis client: pass the one the app already has.
 *
 * @packageDocumentation
 */
import { type BreakerRecord, RECORD_VERSION } from "../shared/record.js";
import type { ProbeLease } from "../shared/store.js";
import type { BreakerStore } from "../shared/store.js";
import { bad, commandsOf, type RedisCommands } from "./clients.js";
import { SCRIPT } from "./script.js";

export type { RedisCommands } from "./clients.js";

/** Options of {@link redisStore}. */
export interface RedisStoreOptions {
  /**
   * A connected node-redis (`redis` 5 or 6) or ioredis client, or any {@link RedisCommands}.
   * The store sends its commands on it and opens one more connection (`duplicate()`) for the
   * changes other processes publish; it never closes the client itself.
   */
  client: unknown;
  /**
   * Prepended to every Redis key and to the channel. Processes that share breakers use the
   * same prefix; apps that must not, different ones.
   * @default "cbfetch:"
   */
  prefix?: string;
  /**
   * How long a store call (one or two Redis commands) may take before it counts as failed: the
   * process then breaks locally, reports one `storeerror`, and backs the key's writes off. Keep
   * it below `loadTimeoutMs` (default 200), so a key's first call learns of a failed load within
   * its wait and the failure is reported once.
   * @default 150
   */
  timeoutMs?: number;
  /**
   * How long a record is kept once its key is closed (or past its `retryAt`) and nothing
   * changes: Redis expires it then, so keys of origins nobody calls any more, attacker-chosen
   * ones included, do not stay.
   * @default 3600000
   */
  idleMs?: number;
  /**
   * Whether to subscribe (on a duplicated connection) to changes the other processes make, so
   * an open anywhere is in force here at once. Off, a process learns others' changes only
   * when it loads a key (its first call) or writes one.
   * @default true
   */
  pubsub?: boolean;
}

/** A {@link BreakerStore} on Redis that also leases the half-open probe across processes. */
export interface RedisStore extends BreakerStore {
  /** A lease with its release function, or a refusal saying until when (with the record). */
  acquireProbe(key: string, leaseMs: number): Promise<ProbeLease>;
  /**
   * Calls `listener` with each record another process stores for a key in use here (one this
   * store loaded or saved). cbfetch calls it for you, once per instance.
   */
  watch(listener: (record: unknown) => void): void;
  /**
   * Called by each instance's `close()`: once every instance that watches has closed, the
   * subscribed connection is closed (the client passed in stays open: it is yours).
   */
  close(): Promise<void>;
}

/** Longest probe lease, whatever is asked. */
const MAX_LEASE_MS = 300_000;
/** Keys in use remembered (with their latest record, to write back after Redis lost it). */
const REMEMBERED = 4096;

/** Options `redisStore` knows: any other name is a typo. */
const OPTIONS = ["client", "prefix", "timeoutMs", "idleMs", "pubsub"];

/** `value`, a number > 0 that a timer can hold (Node clamps a longer one to 1 ms). */
function positive(name: string, value: unknown, max = 2 ** 31 - 1): number {
  if (typeof value !== "number" || !(value > 0 && value <= max)) {
    bad(
      name,
      `a number > 0 and <= ${max}`,
      value,
      typeof value === "number" ? RangeError : TypeError,
    );
  }
  return value;
}

/** Rejects after `ms` unless `work` settles first. */
function bounded<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`cbfetch/redis: no answer within ${ms} ms`)), ms);
    (timer as { unref?: () => void }).unref?.();
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** A record from the script's answer (the four numbers as strings), or `undefined`. */
function recordOf(key: string, fields: unknown): BreakerRecord | undefined {
  if (!Array.isArray(fields) || fields.length !== 4) return undefined;
  const [opened, retryAt, reopens, closed] = fields.map(Number) as number[];
  return { v: RECORD_VERSION, key, opened, retryAt, reopens, closed } as BreakerRecord;
}

const fieldsOf = (r: BreakerRecord) => [r.opened, r.retryAt, r.reopens, r.closed].map(String);

/**
 * A {@link BreakerStore} on Redis, for `createCbFetch({ store })` or the Hono middleware. One
 * Lua script does each step atomically in Redis: a write merges with the stored record by the
 * rule every store uses (DESIGN §3), publishes the result when it changed, and sets its expiry;
 * a half-open probe needs a lease (`SET NX PX`) that the same script grants only when the
 * record says a probe is due. Healthy calls send no command; a change sends one; a key's first
 * call loads it once. Every command has a timeout: while Redis is down or slow, the process
 * breaks on its own and catches up once Redis answers again; a record Redis lost (a restart
 * without persistence, `FLUSHALL`, a failover) is written back by the processes that hold it.
 */
export function redisStore(options: RedisStoreOptions): RedisStore {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("cbfetch: redisStore needs options: { client }");
  }
  for (const name of Object.keys(options)) {
    if (!OPTIONS.includes(name))
      throw new TypeError(`cbfetch: unknown option "${name}" in redisStore`);
  }
  const redis: RedisCommands = commandsOf(options.client);
  const { prefix = "cbfetch:", pubsub = true } = options;
  if (typeof prefix !== "string") bad("prefix", "a string", prefix);
  if (typeof pubsub !== "boolean") bad("pubsub", "true or false", pubsub);
  const timeoutMs = positive("timeoutMs", options.timeoutMs ?? 150);
  // Expiry is a PEXPIRE, not a timer: any finite time.
  const idleMs = positive("idleMs", options.idleMs ?? 3_600_000, Number.MAX_SAFE_INTEGER);
  const channel = `${prefix}changes`;
  // The key inside braces: a record and its lease share one Redis Cluster slot.
  const keysOf = (key: string) => ["2", `${prefix}{${key}}`, `${prefix}{${key}}:lease`];
  let sha: Promise<string> | undefined;
  /** Leases this process holds, by key: the next write of the key ends it. */
  const leases = new Map<string, string>();
  /** Keys in use here (loaded or saved), with the latest record seen, least recent first. */
  const known = new Map<string, BreakerRecord | undefined>();
  const listeners = new Set<(record: unknown) => void>();
  /** Instances watching that have not closed. */
  let watching = 0;
  let subscribed: Promise<(() => Promise<void>) | undefined> | undefined;

  /** Every command has a deadline (also those no store call waits for: write-backs, releases). */
  const command = (args: string[]) => bounded(redis.command(args), timeoutMs);
  /** Runs the script: EVALSHA, loading it once; EVAL when Redis lost it (a restart). */
  async function run(key: string, args: string[]): Promise<unknown> {
    const tail = [...keysOf(key), args[0] as string, String(Date.now()), channel, key];
    tail.push(...args.slice(1));
    sha ??= (command(["SCRIPT", "LOAD", SCRIPT]) as Promise<string>).catch((error) => {
      sha = undefined; // loaded again by the next call
      throw error;
    });
    try {
      return await command(["EVALSHA", await sha, ...tail]);
    } catch (error) {
      if (!/NOSCRIPT/.test(String((error as Error)?.message))) throw error;
      return command(["EVAL", SCRIPT, ...tail]);
    }
  }
  /** Notes `key` as in use, with `fields` (the script's answer) as its latest record. */
  function remember(key: string, fields: unknown): BreakerRecord | undefined {
    const record = recordOf(key, fields);
    const latest = record ?? known.get(key);
    known.delete(key);
    known.set(key, latest);
    if (known.size > REMEMBERED) known.delete(known.keys().next().value as string);
    return record;
  }
  async function save(record: BreakerRecord, lease = ""): Promise<BreakerRecord | undefined> {
    const args = ["s", ...fieldsOf(record), String(idleMs), lease];
    return remember(record.key, await run(record.key, args));
  }
  /** Writes back what this process holds of `key` (Redis lost it); best effort. */
  function restore(key: string): void {
    const record = known.get(key);
    if (record !== undefined) save(record).catch(() => {});
  }
  function receive(message: string): void {
    if (message.startsWith("m")) return restore(message.slice(1));
    const parts = message.slice(1).split(",");
    const key = parts.slice(4).join(",");
    if (!known.has(key)) return; // not in use here: its first call loads it
    const record = remember(key, parts.slice(0, 4));
    for (const listener of listeners) listener(record);
  }
  function subscribe(): Promise<(() => Promise<void>) | undefined> {
    if (!pubsub || redis.subscribe === undefined) return Promise.resolve(undefined);
    const reconnected = () => {
      for (const key of known.keys()) restore(key);
    };
    const connecting = redis.subscribe(channel, receive, reconnected);
    // A subscription that fails (Redis down at start) is tried again by the next load.
    connecting.catch(() => (subscribed = undefined));
    return connecting;
  }

  return {
    timeoutMs,
    async load(key) {
      // Loaded once subscribed (or half the time out): no change made in between goes unseen.
      if (watching > 0) await bounded((subscribed ??= subscribe()), timeoutMs / 2).catch(() => {});
      return remember(key, await run(key, ["l"]));
    },
    save(record) {
      // A write of the key ends this process's lease (the probe's outcome): one command for both.
      const lease = leases.get(record.key);
      leases.delete(record.key);
      return save(record, lease);
    },
    async acquireProbe(key, leaseMs) {
      const holder = Math.random().toString(36).slice(2);
      const ms = Math.min(Math.max(1, Math.ceil(leaseMs)), MAX_LEASE_MS);
      const now = Date.now();
      const [granted, left, fields] = (await run(key, ["p", holder, String(ms)])) as unknown[];
      const record = remember(key, fields);
      if (granted === 1) {
        leases.set(key, holder);
        // Unless a write ended it. Best effort: a lost release expires with the lease.
        const release = (outcome?: BreakerRecord) => {
          if (leases.get(key) !== holder) return;
          leases.delete(key);
          const done = outcome
            ? save(outcome, holder)
            : run(key, ["r", "", "", "", "", "", holder]);
          done.catch(() => {});
        };
        return { granted: true, release };
      }
      const until = left === -1 && record ? record.retryAt : now + Math.max(0, Number(left));
      return { granted: false, until, record };
    },
    watch(listener) {
      listeners.add(listener);
      watching++;
      subscribed ??= subscribe();
    },
    async close() {
      if (watching === 0 || --watching > 0) return;
      listeners.clear();
      const closing = subscribed;
      subscribed = undefined;
      await closing?.then((close) => close?.()).catch(() => {});
    },
  };
}
