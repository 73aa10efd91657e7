/**
 * @edgeplane/client: what a managed app links to. The typed API client ({@link createEdgeplaneClient}),
 * access-token verification ({@link createTokenVerifier}) and the billing and audit event
 * reporter ({@link createEventReporter}). The OpenFeature providers are in
 * `@edgeplane/client/openfeature` (server) and `@edgeplane/client/openfeature/web` (browser).
 */

export {
  createEdgeplaneClient,
  type Credential,
  type EdgeplaneClient,
  type EdgeplaneClientOptions,
  type Introspection,
  type IntrospectOptions,
} from "./client.js";
export { EdgeplaneError, isProblem, type Problem, type ProblemFieldError } from "./errors.js";
export {
  createEventReporter,
  InvalidEventError,
  MAX_BATCH,
  type AuditEvent,
  type BillingEvent,
  type CloseOptions,
  type DropReason,
  type EventKind,
  type EventOf,
  type EventReporter,
  type EventReporterOptions,
  type RetryOptions,
} from "./events.js";
export {
  ACCESS_TOKEN_TYPE,
  API_AUDIENCE,
  createTokenVerifier,
  TokenVerificationError,
  type AccessTokenClaims,
  type TokenErrorCode,
  type TokenVerifier,
  type TokenVerifierOptions,
} from "./tokens.js";
export type { components, operations, paths } from "./schema.js";
