import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "redis";

/** Debian's redis-server (TOOLCHAIN.md); `.ci/run` and `npm test` install it when missing. */
export const REDIS_SERVER = process.env.REDIS_SERVER_PATH ?? "/usr/bin/redis-server";

/** A node-redis client on a unix socket. */
export function socketClient(path: string) {
  return createClient({ socket: { path, tls: false, reconnectStrategy: () => 50 } });
}
export type Client = ReturnType<typeof socketClient>;

/** A real redis-server of the test's own, on a unix socket in a temporary folder (no TCP). */
export interface TestRedis {
  /** The unix socket's path. */
  readonly socket: string;
  /** A connected node-redis client for the test's own commands. */
  readonly admin: Client;
  /** Commands Redis ran since the last {@link TestRedis.resetStats}, by name (INFO commandstats). */
  commandStats(): Promise<Record<string, number>>;
  /** Zeroes the command counts. */
  resetStats(): Promise<void>;
  /** Stops the server (SIGKILL: a crash; nothing is saved). */
  kill(): Promise<void>;
  /** Freezes the server (SIGSTOP): it accepts nothing and answers nothing, as a hung one. */
  pause(): void;
  /** Lets a frozen server go on (SIGCONT). */
  resume(): void;
  /** Starts it again on the same socket, empty (no persistence, as after a restart). */
  start(): Promise<void>;
  /** Stops it and removes the folder. */
  stop(): Promise<void>;
}

async function untilReady(socket: string): Promise<void> {
  for (let attempt = 0; attempt < 500; attempt++) {
    if (existsSync(socket)) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`redis-server did not open ${socket}`);
}

/**
 * Starts a redis-server on a unix socket in a fresh temporary folder, and on `port` of
 * 127.0.0.1 too when given (for code that takes a `redis://` URL).
 */
export async function startRedis(port = 0): Promise<TestRedis> {
  if (!existsSync(REDIS_SERVER)) {
    throw new Error(`${REDIS_SERVER} is missing: apt-get install redis-server (see TOOLCHAIN.md)`);
  }
  const dir = mkdtempSync(join(tmpdir(), "cbfetch-redis-"));
  const socket = join(dir, "r.sock");
  let server: ChildProcess | undefined;
  const start = async () => {
    rmSync(socket, { force: true });
    server = spawn(
      REDIS_SERVER,
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--unixsocket",
        socket,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
      ],
      { stdio: "ignore" },
    );
    await untilReady(socket);
  };
  const kill = async () => {
    const running = server;
    server = undefined;
    if (running === undefined || running.exitCode !== null) return;
    running.kill("SIGKILL");
    await once(running, "exit");
  };
  await start();
  const admin = socketClient(socket);
  admin.on("error", () => {}); // reconnects by itself after a restart
  await admin.connect();
  return {
    socket,
    admin,
    async commandStats() {
      const info = await admin.sendCommand<string>(["INFO", "commandstats"]);
      const counts: Record<string, number> = {};
      for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
        counts[match[1] as string] = Number(match[2]);
      }
      return counts;
    },
    async resetStats() {
      await admin.sendCommand(["CONFIG", "RESETSTAT"]);
    },
    kill,
    start,
    pause: () => server?.kill("SIGSTOP"),
    resume: () => server?.kill("SIGCONT"),
    async stop() {
      server?.kill("SIGCONT");
      admin.destroy();
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
