// Which origins a page talked to. The consoles load nothing from anywhere but Edgeplane (no CDN,
// no fonts, no analytics); during a sign-in the browser also visits the IdP. Every request of
// the browser context is recorded, redirects and subresources included, with the phase it was
// made in, so a test can say "Edgeplane only, except the IdP while signing in".

import { expect } from "@playwright/test";

/** URL schemes that never leave the browser. */
const LOCAL_SCHEMES = new Set(["data:", "blob:", "about:"]);

/** Records the requests of a browser context and checks their origins. */
export class OriginRecorder {
  /** `allowed` is always allowed: Edgeplane's origin. */
  constructor(context, allowed) {
    this.allowed = new Set([new URL(allowed).origin]);
    this.phase = { name: "page", extra: new Set() };
    /** Every request: `{ url, origin, phase, allowed }`. */
    this.requests = [];
    context.on("request", (request) => this.record(request.url()));
  }

  record(url) {
    const parsed = new URL(url);
    if (LOCAL_SCHEMES.has(parsed.protocol)) return;
    const { origin } = parsed;
    const allowed = this.allowed.has(origin) || this.phase.extra.has(origin);
    this.requests.push({ url, origin, phase: this.phase.name, allowed });
  }

  /**
   * Runs `fn` with `origins` also allowed (the IdP during a sign-in), named `name` in failures.
   * Requests made before or after it are held to Edgeplane's origin alone.
   */
  async during(name, origins, fn) {
    const previous = this.phase;
    this.phase = { name, extra: new Set([...previous.extra, ...[origins].flat().map((o) => new URL(o).origin)]) };
    try {
      return await fn();
    } finally {
      this.phase = previous;
    }
  }

  /** The distinct origins requested so far. */
  origins() {
    return [...new Set(this.requests.map((r) => r.origin))];
  }

  /** Requests that went to an origin not allowed at the time. */
  offending() {
    return this.requests.filter((r) => !r.allowed);
  }

  /** Fails the test when any request so far went to an origin not allowed at the time. */
  expectNoOtherOrigin() {
    const lines = this.offending().map((r) => `${r.phase}: ${r.url}`);
    expect(lines, `requests to other origins than ${[...this.allowed].join(", ")}`).toEqual([]);
  }
}
