// happy-dom logs like a browser's devtools: every response that is not ok ("GET http://… 503
// (Service Unavailable)") and every failed request (with its stack), to the console it was
// created with. That is Node's own console, which vitest does not capture, so its lines went
// straight to the terminal, past `onConsoleLog`. Sent through vitest's console instead, they
// meet `onConsoleLog` (vitest.config.ts), which drops the ones the tests cause on purpose;
// anything else still prints, under the name of the test that logged it.
import nodeConsole from "node:console";

const methods = ["error", "warn", "log", "info", "debug"] as const;
if ("happyDOM" in globalThis && nodeConsole !== globalThis.console) {
  for (const method of methods) {
    nodeConsole[method] = (...args: unknown[]) => globalThis.console[method](...args);
  }
}
