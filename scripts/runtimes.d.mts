/** Where the server runtimes are cached. */
export const CACHE: string;
/** Installs the missing runtimes; per name ("node 22", "bun", "deno"), the command that runs a script. */
export function serverRuntimes(): Record<string, string[]>;
