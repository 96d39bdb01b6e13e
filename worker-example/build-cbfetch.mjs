// Inside the cbfetch repository, package.json takes cbfetch from the repository itself
// ("file:.."), whose dist/ a fresh clone does not have: this builds it, when it is missing or
// older than the sources, with this folder's own TypeScript (the repository's node_modules
// need not be installed; `--noCheck`: the repository's own `npm run build` type-checks).
// Copied out of the repository, with cbfetch from npm, there is nothing to build: it does
// nothing. The dev, typecheck, build and deploy scripts run it first.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";

const here = import.meta.dirname;
const cbfetch = join(here, "node_modules", "cbfetch");
const config = join(cbfetch, "tsconfig.build.json");
const built = join(cbfetch, "dist", "index.js");

/** The latest modification time of a file under `dir`. */
function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

if (existsSync(config)) {
  if (!existsSync(built) || newest(join(cbfetch, "src")) > statSync(built).mtimeMs) {
    console.log("build-cbfetch: building cbfetch from the repository's sources (its dist/)");
    rmSync(join(cbfetch, "dist"), { recursive: true, force: true });
    const tsc = join(here, "node_modules", "typescript", "bin", "tsc");
    execFileSync(process.execPath, [tsc, "-p", config, "--noCheck"], { stdio: "inherit" });
  }
}
