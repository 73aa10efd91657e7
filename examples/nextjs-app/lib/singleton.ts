/**
 * One instance per server process. Next bundles the app's entries (pages, server actions, route
 * handlers, instrumentation) separately, so a plain module-level `const` may exist once per
 * bundle; keeping it on `globalThis` makes the event reporters' queues, the key set of the token
 * verifier and the orders store one each.
 */

import "server-only";

const registry = ((globalThis as { __edgeplaneExample?: Map<string, unknown> }).__edgeplaneExample ??= new Map());

/** The process's instance named `name`, made by `make` on first use. */
export function singleton<T>(name: string, make: () => T): T {
  if (!registry.has(name)) registry.set(name, make());
  return registry.get(name) as T;
}

/** The instance named `name` if it was made, without making it. */
export function existing<T>(name: string): T | undefined {
  return registry.get(name) as T | undefined;
}

/** Forgets `name`, so the next use makes it again (after a failed discovery, say). */
export function forget(name: string): void {
  registry.delete(name);
}
