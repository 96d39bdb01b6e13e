// `npm test`: build, type check, lint, the vitest suite (Node and happy-dom, real Chromium,
// workerd, and Node 22, Bun and Deno for the server-runtime claims), then the packed-package
// checks and the worker-example (copied out, and in a clone). Ends with one summary line:
// "tests: N passed, N failed".
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";

const report = ".artifacts/vitest.json";
mkdirSync(".artifacts", { recursive: true });

function step(name, command, args) {
  console.log(`\n▶ ${name}`);
  const result = spawnSync(command, args, { stdio: ["ignore", "inherit", "inherit"] });
  return result.status === 0;
}

let passed = 0;
let failed = 0;
const steps = [
  ["build", "npm", ["run", "--silent", "build"]],
  ["type check", "npm", ["run", "--silent", "typecheck"]],
  ["lint and format (ESLint + Prettier)", "npm", ["run", "--silent", "lint"]],
];
for (const [name, command, args] of steps) {
  if (step(name, command, args)) continue;
  console.log(`tests: ${passed} passed, 1 failed`);
  process.exit(1);
}

// The browser tests need Debian's Chromium (these machines cannot download browsers), the
// Redis tests Debian's redis-server (they start their own).
const chromium = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const redisServer = process.env.REDIS_SERVER_PATH ?? "/usr/bin/redis-server";
const missing = [
  [chromium, "chromium", "CHROMIUM_PATH"],
  [redisServer, "redis-server", "REDIS_SERVER_PATH"],
].filter(([path]) => !existsSync(path));
if (missing.length > 0) {
  const names = missing.map(([, name]) => name).join(" ");
  if (process.getuid?.() === 0 && existsSync("/usr/bin/apt-get")) {
    step(`install Debian's ${names} for the tests`, "sh", [
      "-c",
      `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${names}`,
    ]);
  } else {
    for (const [path, name, variable] of missing) {
      console.log(`\n${path} is missing: install Debian's ${name} or set ${variable}.`);
    }
  }
}

// Node 22, Bun and Deno for the server-runtime tests, from the npm registry (a cached install).
step("server runtimes for the tests (Node 22, Bun, Deno)", "node", ["scripts/runtimes.mjs"]);

const vitestOk = step("vitest", "npx", [
  "vitest",
  "run",
  "--reporter=default",
  "--reporter=json",
  `--outputFile.json=${report}`,
]);
try {
  const results = JSON.parse(readFileSync(report, "utf8"));
  passed += results.numPassedTests;
  failed += results.numFailedTests;
} catch {
  failed++;
}
if (!vitestOk && failed === 0) failed++;

const packageOk = step("packed package", "node", ["scripts/check-package.mjs"]);
// check-package prints its own counts; count the step as one more failure if it crashed.
if (!packageOk) failed++;
else passed++;

// The worker-example as its README says (wrangler dev + its flaky upstream): copied out of the
// repository and installed with the packed tarball, and in a fresh clone of the repository.
const exampleOk = step("worker-example, copied out and in a clone", "node", [
  "scripts/check-example.mjs",
]);
if (!exampleOk) failed++;
else passed++;

console.log(`\ntests: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
