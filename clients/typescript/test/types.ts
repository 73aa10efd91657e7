// Compiled, never run (`npm run typecheck`): the types a managed app gets are the API's, and
// a wrong route, parameter or event is a compile error.

import {
  createEdgeplaneClient,
  createEventReporter,
  createTokenVerifier,
  type AccessTokenClaims,
  type DropReason,
  type Introspection,
} from "../src/index.js";
import { createOpenFeatureProvider } from "../src/openfeature.js";

export async function typed(): Promise<void> {
  const client = createEdgeplaneClient({ baseUrl: "https://edgeplane.example", apiKey: "key" });
  const { data } = await client.GET("/v1/tenants", { params: { query: { limit: 5, status: "active" } } });
  data?.items[0]?.domain satisfies string | null | undefined;
  // @ts-expect-error: not a route of the API
  await client.GET("/v1/nowhere");
  // @ts-expect-error: limit is a number
  await client.GET("/v1/tenants", { params: { query: { limit: "5" } } });
  // @ts-expect-error: status is one of the tenant states
  await client.GET("/v1/tenants", { params: { query: { status: "asleep" } } });
  const introspection: Introspection = await client.introspect("token");
  introspection.active satisfies boolean;

  const billing = createEventReporter({ kind: "billing", client });
  billing.report({ type: "api.call", quantity: 1, timestamp: new Date().toISOString() });
  // @ts-expect-error: a billing event has a quantity
  billing.report({ type: "api.call", timestamp: new Date().toISOString() });
  createEventReporter({
    kind: "audit",
    baseUrl: "https://edgeplane.example",
    apiKey: "key",
    onDrop: (events, reason: DropReason) => {
      events[0]?.actor_id satisfies string | undefined;
      if (reason.kind === "rejected") reason.status satisfies number;
    },
  });

  const claims: AccessTokenClaims = await createTokenVerifier({ issuer: "https://edgeplane.example" }).verify("t");
  claims.tid satisfies string;
  claims.role satisfies string;
  createOpenFeatureProvider({ baseUrl: "https://edgeplane.example", apiKey: "key" });
}
