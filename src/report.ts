/**
 * Reports an error thrown by the caller's own callback (an event listener, `onStateChange`, a
 * logger) as a browser reports one thrown by an event listener (`reportError`), or on the
 * console where there is none (Node, whose EventTarget would end the process instead): it
 * never breaks the call that ran it.
 */
export function reportListenerError(error: unknown): void {
  ((globalThis as { reportError?: (error: unknown) => void }).reportError ?? console.error)(error);
}
