/**
 * What `cbfetch/redis` needs of a Redis client, and the small adapters that get it from
 * node-redis and ioredis. Nothing here imports either package: the client is the caller's.
 */

/**
 * The few things {@link redisStore} asks of Redis. node-redis (`redis` 5 or 6) and ioredis
 * clients are adapted to it; another client (or a test double) can implement it directly.
 */
export interface RedisCommands {
  /** Sends one command (`["EVALSHA", sha, "2", …]`) and resolves with Redis's reply. */
  command(args: string[]): Promise<unknown>;
  /**
   * Subscribes to `channel` on a connection of its own (a subscribed connection sends no other
   * command). `onMessage` gets each message; `onReconnect` is called whenever the connection
   * comes back after it was lost (Redis restarted, or a failover). Resolves, once subscribed,
   * with what unsubscribes and closes that connection. Without it the store learns others'
   * changes only when it loads a key or writes one (serverless, REST clients).
   */
  subscribe?(
    channel: string,
    onMessage: (message: string) => void,
    onReconnect: () => void,
  ): Promise<() => Promise<void>>;
}

/** What is used of a node-redis (v5, v6) or an ioredis client (`call`: ioredis only). */
interface Client {
  call(...args: string[]): Promise<unknown>;
  sendCommand(args: string[]): Promise<unknown>;
  duplicate(): Client;
  connect(): Promise<unknown>;
  subscribe(channel: string, listener?: (message: string) => void): Promise<unknown>;
  on(event: string, listener: (...args: string[]) => void): unknown;
  disconnect(): unknown;
  destroy(): unknown;
}

/** What is used of an `@upstash/redis` client (REST: no pub/sub). */
interface Upstash {
  scriptLoad(script: string): Promise<unknown>;
  evalsha(sha: string, keys: string[], args: string[]): Promise<unknown>;
  eval(script: string, keys: string[], args: string[]): Promise<unknown>;
}

/** The store's three commands (SCRIPT LOAD, EVALSHA, EVAL) as Upstash's REST client's methods. */
function upstash(client: Upstash): RedisCommands {
  return {
    command([name, first, count, ...rest]) {
      if (name === "SCRIPT") return client.scriptLoad(count as string);
      const keys = rest.splice(0, Number(count));
      // Its answers come JSON-parsed (automaticDeserialization): the store reads numbers anyway.
      return name === "EVAL"
        ? client.eval(first as string, keys, rest)
        : client.evalsha(first as string, keys, rest);
    },
  };
}

/**
 * Throws an error naming option `name` of redisStore, what it must be and what it got (a
 * function or an object named by its kind, never printed whole).
 */
export function bad(name: string, expected: string, value: unknown, Type = TypeError): never {
  const got =
    typeof value === "string"
      ? JSON.stringify(value)
      : typeof value === "function" || (typeof value === "object" && value !== null)
        ? `a ${typeof value}`
        : String(value);
  throw new Type(`cbfetch: option "${name}" of redisStore must be ${expected}, got ${got}`);
}

/** `client` as {@link RedisCommands}: a node-redis or ioredis client, or one already. */
export function commandsOf(client: unknown): RedisCommands {
  const c = (client ?? {}) as Partial<Client> & Partial<RedisCommands> & Partial<Upstash>;
  // ioredis has `call` (and a `sendCommand` that takes a Command object); node-redis has not.
  const io = c.call !== undefined;
  if (!c.duplicate || !(io || c.sendCommand)) {
    if (typeof c.command === "function") return c as RedisCommands;
    if (c.evalsha && c.scriptLoad) return upstash(c as unknown as Upstash);
    bad("client", "a node-redis, ioredis or @upstash/redis client", client);
  }
  const redis = c as Client;
  return {
    command: (args) => (io ? redis.call(...args) : redis.sendCommand(args)),
    async subscribe(channel, onMessage, onReconnect) {
      const connection = redis.duplicate();
      let readies = 0;
      // A lost connection is expected: its "error" events must not become uncaught exceptions
      // (the store notices through its calls' failures and timeouts). Every "ready" after the
      // first means the connection came back (Redis restarted, a failover).
      connection.on("error", () => {});
      connection.on("ready", () => readies++ && onReconnect());
      if (io) connection.on("message", (from, message) => from === channel && onMessage(message!));
      try {
        if (!io) await connection.connect();
        await (io ? connection.subscribe(channel) : connection.subscribe(channel, onMessage));
      } catch (error) {
        void close();
        throw error;
      }
      async function close() {
        if (io) connection.disconnect();
        else connection.destroy();
      }
      return close;
    },
  };
}
