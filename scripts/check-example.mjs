// The worker-example as users meet it, twice:
// 1. copied out of the repository into an empty folder, its `cbfetch` dependency pointed at the
//    packed tarball (its README says how to point it at the published package), then what its
//    README says: `npm install`, `npm run typecheck`, `npm run build`, `npm run upstream` and
//    `npm run dev -- --port N`;
// 2. in a fresh clone of the repository (its files only: no node_modules, no dist/), as is:
//    `npm install` (cbfetch is the repository itself, "file:..") and `npm run dev`, which
//    builds the repository's dist/ first.
// Each time requests go to /api/… until the circuit opens against the failing upstream; the
// refused request must be a 503 with Retry-After and `cbfetch-circuit: open` that never
// reached the upstream, and wrangler must print the JSON transition line. Both processes are
// stopped like Ctrl-C (SIGINT to their process groups) and nothing may be left running. Every
// wait is bounded. Run after `npm run build` (npm test does both); the npm registry must be
// reachable (the cache is warm when the pins match the repository's, which is checked too).
import { execFileSync, spawn } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const example = join(root, "worker-example");
/** Versions the example pins exactly, and must pin like the repository (a warm npm cache). */
const PINNED = ["wrangler", "@cloudflare/workers-types", "typescript"];
const ENV = { ...process.env, npm_config_update_notifier: "false", npm_config_fund: "false" };

let passed = 0;
let failed = 0;
function check(name, ok, detail = "") {
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${detail ? `: ${detail}` : ""}`);
  if (ok) passed++;
  else failed++;
  return ok;
}
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;
const times = {};

/** Runs a command to completion within `timeoutMs`; returns its output or throws with it. */
function run(name, cmd, args, cwd, timeoutMs) {
  const start = Date.now();
  try {
    const out = execFileSync(cmd, args, {
      cwd,
      env: ENV,
      encoding: "utf8",
      timeout: timeoutMs,
      killSignal: "SIGKILL",
      stdio: ["ignore", "pipe", "pipe"],
    });
    times[name] = Date.now() - start;
    return out;
  } catch (error) {
    const why = error.signal ? `timed out after ${seconds(timeoutMs)}` : `exit ${error.status}`;
    const output = `${error.stdout ?? ""}${error.stderr ?? ""}`.trim().split("\n").slice(-15);
    throw new Error(`${name} (${cmd} ${args.join(" ")}) failed, ${why}:\n${output.join("\n")}`, {
      cause: error,
    });
  }
}

/** A port nothing listens on right now (127.0.0.1). */
function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

/** An `npm run` script in its own process group, its output collected. */
function startScript(script, args, cwd) {
  const child = spawn("npm", ["run", script, "--", ...args], {
    cwd,
    env: ENV,
    detached: true, // its own process group: stopped as a whole, like Ctrl-C in a terminal
    stdio: ["ignore", "pipe", "pipe"],
  });
  const proc = { script, child, output: "", exited: false };
  child.stdout.on("data", (chunk) => (proc.output += chunk));
  child.stderr.on("data", (chunk) => (proc.output += chunk));
  child.on("exit", () => (proc.exited = true));
  return proc;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Polls `test` every 100 ms until it returns something truthy, or fails after `ms`. */
async function waitFor(what, ms, test) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await test();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`gave up after ${seconds(ms)} waiting for ${what}`);
    await sleep(100);
  }
}

/** Whether any process of the group is still alive. */
function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGINT to the whole group (Ctrl-C); SIGKILL if it is not gone within 10 s. */
async function stop(proc) {
  const pgid = proc.child.pid;
  if (!groupAlive(pgid)) return { clean: proc.exited, ms: 0 };
  const start = Date.now();
  process.kill(-pgid, "SIGINT");
  try {
    await waitFor(`${proc.script} to stop`, 10_000, () => !groupAlive(pgid));
    return { clean: true, ms: Date.now() - start };
  } catch {
    process.kill(-pgid, "SIGKILL");
    await waitFor(`${proc.script} to die`, 5_000, () => !groupAlive(pgid)).catch(() => {});
    return { clean: false, ms: Date.now() - start };
  }
}

async function get(url, init) {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  return { response, body: await response.text() };
}

/** The repository's files as a fresh clone has them: no node_modules, dist/ or other output. */
function copyAsCloned(from, to) {
  const args = ["ls-files", "-z", "--cached", "--others", "--exclude-standard"];
  const files = execFileSync("git", args, { cwd: from, encoding: "utf8" }).split("\0");
  for (const file of files) {
    // A deleted file is still listed until the deletion is committed.
    if (file === "" || !existsSync(join(from, file))) continue;
    mkdirSync(dirname(join(to, file)), { recursive: true });
    cpSync(join(from, file), join(to, file));
  }
}

const running = [];

/**
 * In `app` (installed), `npm run upstream` and `npm run dev` on free ports, then the README's
 * walk-through: a healthy request, then a failing upstream until the circuit opens. Each check
 * and time is named after `label`.
 */
async function runAsReadmeSays(app, label) {
  const named = (name, ok, detail) => check(`${label}: ${name}`, ok, detail);
  const [upstreamPort, devPort] = [await freePort(), await freePort()];
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;
  const workerUrl = `http://127.0.0.1:${devPort}`;
  const upstream = startScript("upstream", ["--port", String(upstreamPort)], app);
  running.push(upstream);
  let start = Date.now();
  await waitFor("npm run upstream to listen", 15_000, () => {
    if (upstream.exited) throw new Error(`npm run upstream exited:\n${upstream.output}`);
    return upstream.output.includes("listening on");
  });
  times[`${label}: upstream ready`] = Date.now() - start;
  start = Date.now();
  const dev = startScript(
    "dev",
    ["--port", String(devPort), "--var", `UPSTREAM:${upstreamUrl}`],
    app,
  );
  running.push(dev);
  await waitFor("npm run dev to be ready", 90_000, () => {
    if (dev.exited) throw new Error(`npm run dev exited:\n${dev.output}`);
    return dev.output.includes("Ready on");
  });
  times[`${label}: dev ready`] = Date.now() - start;

  const healthy = await get(`${workerUrl}/api/hello`);
  named("a healthy upstream answers through the worker", healthy.response.status === 200);

  // The upstream fails: requests until the circuit opens.
  await get(`${upstreamUrl}/__mode/503`, { method: "POST" });
  start = Date.now();
  let refused;
  let tries = 0;
  const upstreamCount = async () => JSON.parse((await get(`${upstreamUrl}/__mode`)).body).requests;
  let before = 0;
  while (tries++ < 10) {
    before = await upstreamCount();
    const { response, body } = await get(`${workerUrl}/api/hello`);
    if (response.headers.get("cbfetch-circuit") === "open") {
      refused = { response, body };
      break;
    }
  }
  times[`${label}: trip`] = Date.now() - start;
  named(
    "the circuit opens after CB_FAILURE_THRESHOLD (3) failures",
    tries === 4,
    `${tries} requests`,
  );
  if (refused) {
    const retryAfter = refused.response.headers.get("retry-after");
    named(
      "the refused request is a 503 with Retry-After and cbfetch-circuit: open",
      refused.response.status === 503 && /^\d+$/.test(retryAfter ?? "") && Number(retryAfter) > 0,
      `${refused.response.status}, Retry-After ${retryAfter}`,
    );
    named("it never reached the upstream", (await upstreamCount()) === before);
    named("its body names no upstream", !refused.body.includes("127.0.0.1"), refused.body.trim());
  }
  const line = await waitFor("wrangler dev to print the transition line", 10_000, () =>
    dev.output.split("\n").find((l) => l.includes('"cbfetch circuit transition"')),
  ).catch(() => undefined);
  named(
    "wrangler dev prints one JSON line for the transition",
    line !== undefined && JSON.parse(line).to === "open",
    line,
  );
  const breakers = await get(`${workerUrl}/__breakers`);
  named(
    "/__breakers (on under npm run dev) shows the open circuit",
    breakers.response.status === 200 && JSON.parse(breakers.body)[0]?.state === "open",
  );

  // Ctrl-C both: nothing may be left running.
  for (const proc of running.splice(0)) {
    const { clean, ms } = await stop(proc);
    times[`${label}: stop ${proc.script}`] = ms;
    named(`npm run ${proc.script} stops on SIGINT, its whole process group`, clean);
  }
}

const work = mkdtempSync(join(tmpdir(), "cbfetch-example-"));
const npmArgs = ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"];
try {
  if (!existsSync(join(root, "dist", "index.js"))) throw new Error("no dist/: npm run build first");
  // 1. Pack, and copy the example out of the repository (what a user copies).
  const [{ filename }] = JSON.parse(
    run("pack", "npm", ["pack", "--json", "--silent", "--pack-destination", work], root, 60_000),
  );
  const tarball = join(work, filename);
  const app = join(work, "worker-example");
  cpSync(example, app, {
    recursive: true,
    filter: (path) => !/^(node_modules|\.wrangler|dist)(\/|$)/.test(relative(example, path)),
  });
  const pkg = JSON.parse(readFileSync(join(app, "package.json"), "utf8"));
  const rootPins = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).devDependencies;
  const mismatched = PINNED.filter((name) => pkg.devDependencies?.[name] !== rootPins[name]);
  check(
    "the example pins wrangler, @cloudflare/workers-types and typescript as the repository does",
    mismatched.length === 0,
    mismatched.map((n) => `${n} ${pkg.devDependencies?.[n]} != ${rootPins[n]}`).join(", "),
  );
  check(
    "in the repository, the example takes cbfetch from it (file:..)",
    pkg.dependencies?.cbfetch === "file:..",
    pkg.dependencies?.cbfetch,
  );
  const readme = readFileSync(join(app, "README.md"), "utf8");
  const published = /npm pkg set dependencies\.cbfetch=\^\d/.test(readme);
  check("its README says how to point it at the published package", published);
  // Copied out, pointed at the package (the packed one stands for the published one).
  pkg.dependencies.cbfetch = `file:${tarball}`;
  writeFileSync(join(app, "package.json"), JSON.stringify(pkg, null, 2));
  const wranglerConfig = readFileSync(join(app, "wrangler.jsonc"), "utf8");
  const tsconfig = readFileSync(join(app, "tsconfig.json"), "utf8");
  check(
    "its configs point nowhere outside it (no ../, no alias, no paths)",
    !/\.\.\//.test(wranglerConfig + tsconfig) &&
      !/"alias"/.test(wranglerConfig) &&
      !/"paths"/.test(tsconfig),
  );

  // 2. Install, type-check and bundle, as its README says.
  run("npm install", "npm", npmArgs, app, 300_000);
  check("npm install", existsSync(join(app, "node_modules", "cbfetch", "dist", "index.js")));
  run("npm run typecheck", "npm", ["run", "--silent", "typecheck"], app, 120_000);
  check("npm run typecheck", true);
  run("npm run build", "npm", ["run", "--silent", "build"], app, 120_000);
  check("npm run build (wrangler deploy --dry-run, offline)", existsSync(join(app, "dist")));

  // 3. The upstream and wrangler dev, as its README says.
  await runAsReadmeSays(app, "copied out");

  // 4. In a fresh clone of the repository, as is: npm install, then npm run dev.
  const clone = join(work, "clone");
  copyAsCloned(root, clone);
  const inRepo = join(clone, "worker-example");
  run("npm install (in a clone)", "npm", npmArgs, inRepo, 300_000);
  const linked = join(inRepo, "node_modules", "cbfetch");
  check(
    "in a clone, npm install links cbfetch to the repository, not yet built",
    existsSync(join(linked, "package.json")) &&
      realpathSync(linked) === realpathSync(clone) &&
      !existsSync(join(clone, "dist")),
  );
  await runAsReadmeSays(inRepo, "in a clone");
  check(
    "in a clone, npm run dev built the repository's dist/ first",
    existsSync(join(clone, "dist", "cloudflare", "index.js")),
  );
} catch (error) {
  check("worker-example, copied out and in a clone, run as its README says", false, error.message);
} finally {
  for (const proc of running) await stop(proc);
  rmSync(work, { recursive: true, force: true });
}

console.log(
  `example times: ${Object.entries(times)
    .map(([name, ms]) => `${name} ${seconds(ms)}`)
    .join(", ")}`,
);
console.log(`example: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
