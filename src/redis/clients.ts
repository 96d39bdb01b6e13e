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

/** The part of a node-redis client (v4 to v6) that is used. */
interface NodeRedisLike {
  sendCommand(args: string[]): Promise<unknown>;
  duplicate(): NodeRedisLike;
  connect(): Promise<unknown>;
  subscribe(channel: string, listener: (message: string) => void): Promise<unknown>;
  destroy?(): void;
  disconnect?(): Promise<unknown>;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
}

/** The part of an ioredis client that is used. */
interface IoRedisLike {
  call(command: string, ...args: string[]): Promise<unknown>;
  duplicate(): IoRedisLike;
  subscribe(channel: string): Promise<unknown>;
  disconnect(): void;
  on(event: string, listener: (...args: never[]) => void): unknown;
}

const has = (value: object, name: string) =>
  typeof (value as Record<string, unknown>)[name] === "function";

/**
 * Calls `onReconnect` on every "ready" after the first: the connection came back. Also keeps
 * the client's "error" events from becoming uncaught exceptions (a lost connection is expected;
 * the store notices it through its commands' failures and timeouts).
 */
function watch(client: { on(event: string, listener: () => void): unknown }, again: () => void) {
  let readies = 0;
  client.on("error", () => {});
  client.on("ready", () => {
    if (readies++ > 0) again();
  });
}

function nodeRedis(client: NodeRedisLike): RedisCommands {
  return {
    command: (args) => client.sendCommand(args),
    async subscribe(channel, onMessage, onReconnect) {
      const connection = client.duplicate();
      watch(connection, onReconnect);
      try {
        await connection.connect();
        await connection.subscribe(channel, onMessage);
      } catch (error) {
        connection.destroy?.();
        throw error;
      }
      return async () => {
        if (connection.destroy) connection.destroy();
        else await connection.disconnect?.();
      };
    },
  };
}

function ioRedis(client: IoRedisLike): RedisCommands {
  return {
    command: ([name, ...args]) => client.call(name as string, ...args),
    async subscribe(channel, onMessage, onReconnect) {
      const connection = client.duplicate();
      watch(connection, onReconnect);
      connection.on("message", (from: string, message: string) => {
        if (from === channel) onMessage(message);
      });
      try {
        await connection.subscribe(channel);
      } catch (error) {
        connection.disconnect();
        throw error;
      }
      return async () => connection.disconnect();
    },
  };
}

/** `client` as {@link RedisCommands}: a node-redis or ioredis client, or one already. */
export function commandsOf(client: unknown): RedisCommands {
  if (typeof client === "object" && client !== null) {
    // ioredis first: its clients also have a `sendCommand` (taking a Command object).
    if (has(client, "call") && has(client, "duplicate")) return ioRedis(client as IoRedisLike);
    if (has(client, "sendCommand") && has(client, "duplicate")) {
      return nodeRedis(client as NodeRedisLike);
    }
    if (has(client, "command")) return client as RedisCommands;
  }
  throw new TypeError(
    `cbfetch: option "client" of redisStore must be a connected node-redis or ioredis client ` +
      `(or { command(args) }), got ${client === null ? "null" : typeof client}`,
  );
}
