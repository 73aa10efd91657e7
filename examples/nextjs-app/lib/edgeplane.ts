/**
 * What the app holds of Edgeplane, one per process: the access-token verifier (it keeps the key
 * set), the typed API client with the app's key, and the billing and audit event reporters.
 */

import "server-only";

import {
  createEdgeplaneClient,
  createEventReporter,
  createTokenVerifier,
  type DropReason,
  type EdgeplaneClient,
  type EventKind,
  type EventReporter,
  type Problem,
  type TokenVerifier,
} from "@edgeplane/client";

import type { AppConfig } from "./config";
import { existing, singleton } from "./singleton";

/** Verifies the access tokens Edgeplane's OpenID provider issued to this app (`aud` = its id). */
export function tokenVerifier(cfg: AppConfig): TokenVerifier {
  return singleton(`verifier:${cfg.edgeplaneUrl}:${cfg.clientId}`, () =>
    createTokenVerifier({ issuer: cfg.edgeplaneUrl, audience: cfg.clientId }),
  );
}

/** The typed API client, authenticated with the app's API key. */
export function apiClient(cfg: AppConfig): EdgeplaneClient {
  return singleton(`client:${cfg.edgeplaneUrl}`, () =>
    createEdgeplaneClient({
      baseUrl: cfg.edgeplaneUrl,
      apiKey: cfg.apiKey,
      // Next may cache fetches of server components; none of Edgeplane's answers may be.
      fetch: (request) => fetch(request, { cache: "no-store" }),
    }),
  );
}

/** A batch of events Edgeplane did not take, as the orders page shows it. */
export interface DeliveryProblem {
  /** The batch's tenant (a batch holds one tenant's events): only its users see it. */
  tenantId: string | undefined;
  kind: EventKind;
  at: string;
  events: number;
  reason: DropReason["kind"];
  status?: number;
  problem?: Problem;
}

const MAX_PROBLEMS_KEPT = 50;

function dropped(): DeliveryProblem[] {
  return singleton<DeliveryProblem[]>("delivery-problems", () => []);
}

/** The latest batches of `tenantId`'s events that were dropped (newest first), for its users' page. */
export function deliveryProblems(tenantId: string): DeliveryProblem[] {
  return dropped().filter((p) => p.tenantId === tenantId);
}

function onDrop(kind: EventKind) {
  return (events: { tenant_id?: string | null }[], reason: DropReason) => {
    const status = reason.kind === "rejected" || reason.kind === "retries_exhausted" ? reason.status : undefined;
    const problem = reason.kind === "rejected" ? reason.problem : undefined;
    // Counts, codes and the request id only: events carry user ids and addresses.
    console.warn(
      JSON.stringify({
        msg: `${kind} events dropped`,
        events: events.length,
        reason: reason.kind,
        status,
        problem: problem && { type: problem.type, code: problem.code, request_id: problem.request_id },
      }),
    );
    const kept = dropped();
    const tenantId = events[0]?.tenant_id ?? undefined;
    kept.unshift({ tenantId, kind, at: new Date().toISOString(), events: events.length, reason: reason.kind, status, problem });
    kept.splice(MAX_PROBLEMS_KEPT);
  };
}

function reporter<K extends EventKind>(cfg: AppConfig, kind: K): EventReporter<K> {
  return singleton(`reporter:${kind}`, () =>
    createEventReporter({
      kind,
      client: apiClient(cfg),
      // Orders are few: a short wait keeps the usage panel current without many requests.
      flushIntervalMs: 250,
      onDrop: onDrop(kind),
    }),
  );
}

/** Billing events (`bill:write`). */
export function billing(cfg: AppConfig): EventReporter<"billing"> {
  return reporter(cfg, "billing");
}

/** Audit events (`log:write`). */
export function audit(cfg: AppConfig): EventReporter<"audit"> {
  return reporter(cfg, "audit");
}

/**
 * Sends what the reporters still hold and closes them; instrumentation.ts calls it when the
 * server is told to stop, so no acknowledged order loses its events.
 */
export async function closeReporters(timeoutMs = 5000): Promise<void> {
  const open = (["billing", "audit"] as const)
    .map((kind) => existing<EventReporter<EventKind>>(`reporter:${kind}`))
    .filter((r) => r !== undefined);
  await Promise.all(open.map((r) => r.close({ timeoutMs })));
}
