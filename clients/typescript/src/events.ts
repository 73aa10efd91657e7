/**
 * The event reporter: billing or audit events queued in memory and sent in batches
 * (`POST /v1/billing/events`, `POST /v1/audit/events`), each batch with one `Idempotency-Key`
 * that every retry of it reuses, so Edgeplane applies it once however often it is sent.
 *
 * Delivery:
 * - A batch holds at most `maxBatch` events (the API's limit, {@link MAX_BATCH}) of one tenant
 *   (the API takes one tenant per request) and at most {@link MAX_BODY_BYTES} of JSON.
 * - Network errors, 408, 429 and 5xx are retried with exponential backoff and full jitter
 *   (a random wait between 0 and `min(maxMs, baseMs * 2^attempt)`); a `Retry-After` on 429 or
 *   503 is waited for instead. Batches go one at a time, so a tenant's events keep their order.
 * - Any other 4xx is not retried: its events go to `onDrop` with the problem. A 400 that names
 *   one event of a batch drops that event only; the others are sent again as a new batch
 *   (nothing of a refused batch was stored).
 * - The queue holds at most `maxQueue` events, sent or waiting. When it is full the NEWEST event
 *   is refused: `report` returns false and `onDrop` gets it. Refusing at the door keeps what was
 *   already accepted (and maybe already sent under an Idempotency-Key) intact, and tells the
 *   caller synchronously, who may keep the event elsewhere or slow down.
 */

import { createEdgeplaneClient, type EdgeplaneClient } from "./client.js";
import { isProblem, type Problem } from "./errors.js";
import type { components } from "./schema.js";

/** A billing event as the API takes it. */
export type BillingEvent = components["schemas"]["BillingEvent"];
/** An audit event as the API takes it. */
export type AuditEvent = components["schemas"]["AuditEvent"];
/** Which stream a reporter writes to. */
export type EventKind = "billing" | "audit";
/** The event type of a kind. */
export type EventOf<K extends EventKind> = K extends "billing" ? BillingEvent : AuditEvent;

/** Most events in one request: `maxItems` of the API's batch (core's `events::model::MAX_BATCH`). */
export const MAX_BATCH = 1000;
/** Largest request body the API reads (core's `http::MAX_BODY_BYTES`), in bytes. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Largest `metadata` object, serialized, in bytes. */
export const MAX_METADATA_BYTES = 4096;
/** Largest billing quantity. */
export const MAX_QUANTITY = 1_000_000_000_000_000;

/** The API's patterns, checked before an event is queued (a test holds them to the document). */
export const PATTERNS = {
  id: "^[!-~]{1,128}$",
  tenant_id: "^[!-~]{1,64}$",
  type: "^[A-Za-z0-9._:/-]{1,64}$",
  actor_id: "^[^\\x00-\\x1f\\x7f-\\x9f]{1,256}$",
  resource_id: "^[^\\x00-\\x1f\\x7f-\\x9f]{1,256}$",
} as const;

const FIELDS: Record<EventKind, readonly string[]> = {
  billing: ["id", "tenant_id", "type", "quantity", "timestamp", "metadata"],
  audit: ["id", "tenant_id", "timestamp", "actor_id", "type", "resource_id", "outcome", "ip", "metadata"],
};
const RE = Object.fromEntries(Object.entries(PATTERNS).map(([k, v]) => [k, new RegExp(v, "u")])) as Record<
  keyof typeof PATTERNS,
  RegExp
>;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6 = /^[0-9A-Fa-f:]*:[0-9A-Fa-f:]*(:(\d{1,3}\.){3}\d{1,3})?$/;

/** Why events were dropped. */
export type DropReason =
  /** The queue held `maxQueue` events: the newest was refused. */
  | { kind: "queue_full" }
  /** Edgeplane refused them with a 4xx other than 408 and 429; not retried. */
  | { kind: "rejected"; status: number; problem: Problem | undefined }
  /** `retry.maxAttempts` sends all failed; `error` is the last failure. */
  | { kind: "retries_exhausted"; status: number | undefined; error: unknown }
  /**
   * The reporter was closed before they were acknowledged: never sent, or sent without an
   * answer before `close`'s deadline (those may have been stored).
   */
  | { kind: "closed" };

/** Backoff of retried batches. */
export interface RetryOptions {
  /** First retry waits up to this long, in milliseconds (default 200). */
  baseMs?: number;
  /** No wait is longer, in milliseconds (default 30,000); a `Retry-After` may be. */
  maxMs?: number;
  /** Sends of one batch before its events are dropped (default: no limit while open). */
  maxAttempts?: number;
}

/** Options of {@link createEventReporter}. */
export interface EventReporterOptions<K extends EventKind> {
  /** `billing` (an API key with `bill:write`) or `audit` (`log:write`). */
  kind: K;
  /** The client to send with (made with the API key); or give `baseUrl` and `apiKey`. */
  client?: EdgeplaneClient;
  /** Where Edgeplane is served, when no `client` is given. */
  baseUrl?: string;
  /** The API key, when no `client` is given. */
  apiKey?: string;
  /** The fetch to use, when no `client` is given. */
  fetch?: (input: Request) => Promise<Response>;
  /** Most events per request, 1 to {@link MAX_BATCH} (the default). */
  maxBatch?: number;
  /** How long an event may wait for companions before its batch is sent (default 1,000 ms). */
  flushIntervalMs?: number;
  /** Most events held at once, waiting or being sent (default 10,000). */
  maxQueue?: number;
  /** Told of every dropped event, with why; an exception it throws is ignored. */
  onDrop?: (events: EventOf<K>[], reason: DropReason) => void;
  /** Backoff of retries. */
  retry?: RetryOptions;
  /** In Node, close (and so flush) when the process is about to exit (`beforeExit`). */
  flushOnExit?: boolean;
}

/** Options of {@link EventReporter.close}. */
export interface CloseOptions {
  /** How long to keep sending before the rest is dropped as `closed` (default 10,000 ms). */
  timeoutMs?: number;
}

/** Sends events in batches; see the module's documentation for the delivery rules. */
export interface EventReporter<K extends EventKind> {
  /**
   * Queues an event. Throws {@link InvalidEventError} if it lacks a required field or a field
   * breaks the API's rules (a programming error: such an event could never be stored); returns
   * false, after telling `onDrop`, if the queue is full or the reporter closed.
   */
  report(event: EventOf<K>): boolean;
  /** Sends everything queued; resolves once each event was acknowledged or dropped. */
  flush(): Promise<void>;
  /** Refuses new events, flushes within `timeoutMs`, then drops what is left as `closed`. */
  close(options?: CloseOptions): Promise<void>;
  /** Events held now, waiting or being sent. */
  readonly pending: number;
}

/** An event refused by {@link EventReporter.report}: the field and what is wrong with it. */
export class InvalidEventError extends TypeError {
  /** The refused field. */
  readonly field: string;

  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = "InvalidEventError";
    this.field = field;
  }
}

/** An event as held: the caller's object, its tenant and its size as JSON. */
interface Entry<E> {
  event: E;
  tenant: string;
  bytes: number;
}

/**
 * Makes an event reporter.
 *
 * ```ts
 * const billing = createEventReporter({ kind: "billing", baseUrl, apiKey, flushOnExit: true });
 * billing.report({ tenant_id, type: "api.call", quantity: 1, timestamp: new Date().toISOString() });
 * ```
 */
export function createEventReporter<K extends EventKind>(options: EventReporterOptions<K>): EventReporter<K> {
  return new Reporter(options);
}

class Reporter<K extends EventKind> implements EventReporter<K> {
  private readonly kind: K;
  private readonly client: EdgeplaneClient;
  private readonly maxBatch: number;
  private readonly flushIntervalMs: number;
  private readonly maxQueue: number;
  private readonly onDrop: EventReporterOptions<K>["onDrop"];
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly maxAttempts: number;
  private readonly stop = new AbortController();
  private readonly encoder = new TextEncoder();
  private waiting: Entry<EventOf<K>>[] = [];
  private sending = 0;
  private pump: Promise<void> | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closing: Promise<void> | undefined;
  private exitHook: (() => void) | undefined;
  /** Callers waiting in `flush` (or `close`). */
  private flushing = 0;
  /** The timer of the retry wait going on, if any. */
  private backoff: ReturnType<typeof setTimeout> | undefined;

  constructor(options: EventReporterOptions<K>) {
    if (options.kind !== "billing" && options.kind !== "audit") {
      throw new TypeError("createEventReporter: kind must be 'billing' or 'audit'");
    }
    this.kind = options.kind;
    if (options.client) {
      this.client = options.client;
    } else if (options.baseUrl && options.apiKey) {
      this.client = createEdgeplaneClient({
        baseUrl: options.baseUrl,
        apiKey: options.apiKey,
        ...(options.fetch ? { fetch: options.fetch } : {}),
      });
    } else {
      throw new TypeError("createEventReporter: give a client, or baseUrl and apiKey");
    }
    this.maxBatch = int("maxBatch", options.maxBatch ?? MAX_BATCH, 1, MAX_BATCH);
    this.flushIntervalMs = int("flushIntervalMs", options.flushIntervalMs ?? 1000, 0, 2 ** 31 - 1);
    this.maxQueue = int("maxQueue", options.maxQueue ?? 10_000, 1, Number.MAX_SAFE_INTEGER);
    this.onDrop = options.onDrop;
    this.baseMs = int("retry.baseMs", options.retry?.baseMs ?? 200, 0, 2 ** 31 - 1);
    this.maxMs = int("retry.maxMs", options.retry?.maxMs ?? 30_000, 0, 2 ** 31 - 1);
    const attempts = options.retry?.maxAttempts ?? Infinity;
    this.maxAttempts = attempts === Infinity ? attempts : int("retry.maxAttempts", attempts, 1, Number.MAX_SAFE_INTEGER);
    const proc = (globalThis as { process?: NodeishProcess }).process;
    if (options.flushOnExit && typeof proc?.once === "function") {
      this.exitHook = () => void this.close();
      proc.once("beforeExit", this.exitHook);
    }
  }

  get pending(): number {
    return this.waiting.length + this.sending;
  }

  report(event: EventOf<K>): boolean {
    const bytes = validate(this.kind, event, this.encoder);
    if (this.closing) {
      this.drop([event], { kind: "closed" });
      return false;
    }
    if (this.pending >= this.maxQueue) {
      this.drop([event], { kind: "queue_full" });
      return false;
    }
    this.waiting.push({ event, tenant: event.tenant_id ?? "", bytes });
    if (this.waiting.length >= this.maxBatch) void this.start();
    else this.schedule();
    return true;
  }

  async flush(): Promise<void> {
    // While someone waits for the queue, a retry's wait keeps Node running (see `sleep`).
    this.flushing++;
    keepAlive(this.backoff, true);
    try {
      while ((this.waiting.length > 0 || this.pump) && !this.stop.signal.aborted) {
        await this.start();
      }
    } finally {
      this.flushing--;
      if (this.flushing === 0) keepAlive(this.backoff, false);
    }
  }

  close(options: CloseOptions = {}): Promise<void> {
    this.closing ??= this.shutDown(int("timeoutMs", options.timeoutMs ?? 10_000, 0, 2 ** 31 - 1));
    return this.closing;
  }

  private async shutDown(timeoutMs: number): Promise<void> {
    if (this.exitHook) {
      (globalThis as { process?: NodeishProcess }).process?.off?.("beforeExit", this.exitHook);
    }
    let deadline: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<void>((resolve) => {
      deadline = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([this.flush(), expired]);
    clearTimeout(deadline);
    this.stop.abort();
    clearTimeout(this.timer);
    await this.pump;
    const left = this.waiting.splice(0);
    if (left.length > 0) this.drop(left.map((e) => e.event), { kind: "closed" });
  }

  /** Sends the queue after `flushIntervalMs`, unless a send is already going on. */
  private schedule(): void {
    if (this.timer !== undefined || this.pump) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.start();
    }, this.flushIntervalMs);
    unref(this.timer);
  }

  /** Starts sending the queue, or joins the send going on. */
  private start(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pump ??= this.drain().finally(() => {
      this.pump = undefined;
      if (this.waiting.length > 0 && !this.stop.signal.aborted) this.schedule();
    });
    return this.pump;
  }

  /** Sends batches one after another until the queue is empty or the reporter stops. */
  private async drain(): Promise<void> {
    while (this.waiting.length > 0 && !this.stop.signal.aborted) {
      const batch = this.take();
      this.sending = batch.length;
      try {
        await this.send(batch);
      } finally {
        this.sending = 0;
      }
    }
  }

  /**
   * The next batch: the oldest event's tenant, its events in order up to the first that does
   * not fit either limit; the rest stays queued in its order.
   */
  private take(): Entry<EventOf<K>>[] {
    const tenant = this.waiting[0]!.tenant;
    const batch: Entry<EventOf<K>>[] = [];
    const rest: Entry<EventOf<K>>[] = [];
    let bytes = BODY_OVERHEAD;
    let full = false;
    for (const entry of this.waiting) {
      if (entry.tenant === tenant && !full) {
        full = batch.length >= this.maxBatch || bytes + entry.bytes + 1 > MAX_BODY_BYTES;
        if (!full) {
          batch.push(entry);
          bytes += entry.bytes + 1;
          continue;
        }
      }
      rest.push(entry);
    }
    this.waiting = rest;
    return batch;
  }

  /** Sends one batch until it is acknowledged, refused, out of attempts or stopped. */
  private async send(batch: Entry<EventOf<K>>[]): Promise<void> {
    const idempotencyKey = crypto.randomUUID();
    const events = batch.map((e) => e.event);
    for (let attempt = 1; ; attempt++) {
      let status: number | undefined;
      let failure: unknown;
      let wait: number | undefined;
      try {
        const { error, response } = await this.post(events, idempotencyKey);
        if (response.ok) return;
        status = response.status;
        failure = error;
        if (!retryable(status)) {
          this.refused(batch, status, isProblem(error) ? error : undefined);
          return;
        }
        if (status === 429 || status === 503) wait = retryAfterMs(response.headers.get("retry-after"));
      } catch (e) {
        if (this.stop.signal.aborted) {
          this.drop(events, { kind: "closed" });
          return;
        }
        failure = e;
      }
      if (attempt >= this.maxAttempts) {
        this.drop(events, { kind: "retries_exhausted", status, error: failure });
        return;
      }
      wait ??= Math.random() * Math.min(this.maxMs, this.baseMs * 2 ** (attempt - 1));
      if (!(await this.sleep(wait))) {
        this.drop(events, { kind: "closed" });
        return;
      }
    }
  }

  /** Resolves true after `ms`, or false as soon as the reporter stops. */
  private sleep(ms: number): Promise<boolean> {
    const signal = this.stop.signal;
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.backoff = undefined;
        signal.removeEventListener("abort", onAbort);
        resolve(ok);
      };
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(true), ms);
      this.backoff = timer;
      keepAlive(timer, this.flushing > 0);
      signal.addEventListener("abort", onAbort);
    });
  }

  private post(events: EventOf<K>[], idempotencyKey: string) {
    const init = {
      headers: { "Idempotency-Key": idempotencyKey },
      signal: this.stop.signal,
    };
    return this.kind === "billing"
      ? this.client.POST("/v1/billing/events", { ...init, body: { events: events as BillingEvent[] } })
      : this.client.POST("/v1/audit/events", { ...init, body: { events: events as AuditEvent[] } });
  }

  /**
   * A refused batch: a 400 naming one event of several drops that event and queues the others
   * again, first; anything else drops the batch.
   */
  private refused(batch: Entry<EventOf<K>>[], status: number, problem: Problem | undefined): void {
    const named = problem?.errors?.[0];
    const index = named?.index;
    const oneEvent =
      status === 400 &&
      batch.length > 1 &&
      typeof index === "number" &&
      Number.isInteger(index) &&
      index >= 0 &&
      index < batch.length &&
      // A request-wide rule (the tenant of an app-wide key, ids) is every event's problem.
      named?.field !== "tenant_id" &&
      named?.field !== "id";
    if (!oneEvent) {
      this.drop(batch.map((e) => e.event), { kind: "rejected", status, problem });
      return;
    }
    this.drop([batch[index]!.event], { kind: "rejected", status, problem });
    this.waiting.unshift(...batch.filter((_, i) => i !== index));
  }

  private drop(events: EventOf<K>[], reason: DropReason): void {
    if (events.length === 0 || !this.onDrop) return;
    try {
      this.onDrop(events, reason);
    } catch {
      // The callback's failure must not stop delivery of the other events.
    }
  }
}

/** `{"events":[` and `]}`. */
const BODY_OVERHEAD = 13;

/** The part of Node's `process` the exit hook uses. */
interface NodeishProcess {
  once?: (event: "beforeExit", listener: () => void) => unknown;
  off?: (event: "beforeExit", listener: () => void) => unknown;
}

function retryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** `Retry-After` in milliseconds: delay-seconds or an HTTP date; undefined if absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * Whether a timer keeps Node running (a no-op elsewhere). The reporter's own timers do not,
 * so a process with a reporter can exit (`flushOnExit` sends the queue first); a retry's wait
 * does while a caller waits in `flush` or `close`.
 */
function keepAlive(timer: unknown, on: boolean): void {
  const t = timer as { ref?: () => void; unref?: () => void } | undefined;
  if (on) t?.ref?.();
  else t?.unref?.();
}

function unref(timer: unknown): void {
  keepAlive(timer, false);
}

function int(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`createEventReporter: ${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}

/**
 * The cheap checks of the API's rules, so a bad event is refused when reported rather than
 * taking its batch down; returns the event's size as JSON, in bytes.
 */
function validate(kind: EventKind, event: unknown, encoder: TextEncoder): number {
  if (typeof event !== "object" || event === null || Array.isArray(event)) {
    throw new InvalidEventError("event", "must be an object");
  }
  const e = event as Record<string, unknown>;
  for (const key of Object.keys(e)) {
    if (!FIELDS[kind].includes(key)) throw new InvalidEventError(key, `is not a field of ${kind} events`);
  }
  optionalMatch(e, "id");
  optionalMatch(e, "tenant_id");
  match(e, "type");
  if (typeof e.timestamp !== "string" || !RFC3339.test(e.timestamp) || Number.isNaN(Date.parse(e.timestamp))) {
    throw new InvalidEventError("timestamp", "must be an RFC 3339 date-time");
  }
  if (e.metadata !== undefined && e.metadata !== null) {
    if (typeof e.metadata !== "object" || Array.isArray(e.metadata)) {
      throw new InvalidEventError("metadata", "must be an object");
    }
    if (encoder.encode(JSON.stringify(e.metadata)).length > MAX_METADATA_BYTES) {
      throw new InvalidEventError("metadata", `must be at most ${MAX_METADATA_BYTES} bytes as JSON`);
    }
  }
  if (kind === "billing") {
    const q = e.quantity;
    if (typeof q !== "number" || !Number.isSafeInteger(q) || q < 0 || q > MAX_QUANTITY) {
      throw new InvalidEventError("quantity", `must be an integer from 0 to ${MAX_QUANTITY}`);
    }
  } else {
    match(e, "actor_id");
    match(e, "resource_id");
    if (e.outcome !== "success" && e.outcome !== "failure") {
      throw new InvalidEventError("outcome", "must be success or failure");
    }
    if (typeof e.ip !== "string" || !(IPV4.test(e.ip) || IPV6.test(e.ip))) {
      throw new InvalidEventError("ip", "must be an IPv4 or IPv6 address");
    }
  }
  return encoder.encode(JSON.stringify(event)).length;
}

function match(e: Record<string, unknown>, field: keyof typeof PATTERNS): void {
  const v = e[field];
  if (v === undefined || v === null) throw new InvalidEventError(field, "is required");
  if (typeof v !== "string" || !RE[field].test(v)) {
    throw new InvalidEventError(field, `must match ${PATTERNS[field]}`);
  }
}

function optionalMatch(e: Record<string, unknown>, field: keyof typeof PATTERNS): void {
  if (e[field] !== undefined && e[field] !== null) match(e, field);
}
