/**
 * Verifying Edgeplane's access tokens where the app runs, without a call to Edgeplane per request:
 * EdDSA (Ed25519) signatures checked against the keys published at
 * `<issuer>/.well-known/jwks.json` (jose's remote key set: cached, refetched when a token names
 * a key it does not hold, at most once per cooldown), then the type, issuer, audience and expiry.
 *
 * A token verified here stays valid until it expires (15 minutes) even if its session was
 * revoked; `EdgeplaneClient.introspect` (`POST /oauth/introspect`) sees revocation at once.
 */

import {
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type JWTPayload,
  type RemoteJWKSetOptions,
} from "jose";

/** `aud` of the access tokens Edgeplane issues for its own API (`/v1/auth/login`, `/refresh`). */
export const API_AUDIENCE = "edgeplane";
/** `typ` of every Edgeplane access token (RFC 9068); ID tokens are `JWT` and are refused. */
export const ACCESS_TOKEN_TYPE = "at+jwt";
/** The only algorithm Edgeplane signs with. */
export const ALGORITHM = "EdDSA";
/** Longest token accepted, in bytes, as Edgeplane's own verifier (ours are about 600). */
export const MAX_TOKEN_BYTES = 4096;
/** Clock skew tolerated on `exp` by default, in seconds: Edgeplane's own leeway. */
export const DEFAULT_CLOCK_TOLERANCE_SEC = 30;

/** The claims of an Edgeplane access token. */
export interface AccessTokenClaims extends JWTPayload {
  /** Issuer: the deployment's public base URL. */
  iss: string;
  /** The user id. */
  sub: string;
  /** `edgeplane` for API tokens, the app id for tokens the OpenID provider issued to an app. */
  aud: string;
  /** The tenant id. */
  tid: string;
  /** The user's role in the tenant: `owner`, `admin` or `user`. */
  role: string;
  /** The session id (revoking the session revokes the token, seen at once only by introspection). */
  sid: string;
  /** Space-separated scopes. */
  scope: string;
  /** Issued at (unix seconds). */
  iat: number;
  /** Expires at (unix seconds). */
  exp: number;
  /** Unique token id. */
  jti: string;
  /** When the user last proved who they are in this session (unix seconds), when present. */
  auth_time?: number;
}

/** Options of {@link createTokenVerifier}. */
export interface TokenVerifierOptions {
  /** Edgeplane's issuer: its public base URL, as `iss` and the discovery document name it. */
  issuer: string;
  /**
   * The audience (or audiences) to accept: {@link API_AUDIENCE} (the default) for tokens of
   * Edgeplane's API, your app's id for access tokens Edgeplane's OpenID provider issued to it.
   */
  audience?: string | string[];
  /** Where the keys are; default `<issuer>/.well-known/jwks.json`. */
  jwksUrl?: string;
  /** Clock skew tolerated on `exp`, in seconds (default {@link DEFAULT_CLOCK_TOLERANCE_SEC}). */
  clockToleranceSec?: number;
  /** Least time between two key set fetches caused by unknown keys (jose's default 30 s). */
  jwksCooldownMs?: number;
  /** How long a fetched key set is used before it is fetched again (jose's default 10 min). */
  jwksCacheMaxAgeMs?: number;
  /** Gives up on a key set fetch after this long (jose's default 5 s). */
  jwksTimeoutMs?: number;
  /** The fetch used for the key set (defaults to `globalThis.fetch`). */
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /** The current time in unix milliseconds (default `Date.now`); tests set it. */
  now?: () => number;
}

/** Verifies access tokens; keeps the key set between calls, so make one and reuse it. */
export interface TokenVerifier {
  /**
   * Resolves to the token's claims if it is a well-formed Edgeplane access token, signed by a
   * published key, of the expected issuer and audience and not expired; otherwise rejects with
   * a {@link TokenVerificationError}.
   */
  verify(token: string): Promise<AccessTokenClaims>;
}

/** Why a token was refused, as a stable code. */
export type TokenErrorCode =
  /** Not a compact JWS of an access token (size, segments, encoding, JSON, claim types). */
  | "malformed"
  /** `alg` is not EdDSA (`none`, `HS256`, ...), or the header has no `kid`. */
  | "algorithm"
  /** `typ` is not `at+jwt` (an ID token, say). */
  | "type"
  /** No published key has the token's `kid`, even after a refetch. */
  | "unknown_key"
  /** The signature does not verify. */
  | "signature"
  /** `iss` is not the issuer. */
  | "issuer"
  /** `aud` is not an accepted audience. */
  | "audience"
  /** `exp` has passed (beyond the tolerance). */
  | "expired"
  /** `nbf` or `iat` is in the future. */
  | "not_yet_valid"
  /** The key set could not be fetched or read. */
  | "jwks_unavailable";

/** A refused token, with the check that refused it. */
export class TokenVerificationError extends Error {
  /** Which check failed. */
  readonly code: TokenErrorCode;

  constructor(code: TokenErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TokenVerificationError";
    this.code = code;
  }
}

const REQUIRED_CLAIMS = ["iss", "sub", "aud", "tid", "role", "sid", "scope", "iat", "exp", "jti"] as const;

/**
 * Makes a verifier of Edgeplane access tokens.
 *
 * ```ts
 * const verifier = createTokenVerifier({ issuer: "https://edgeplane.example.com" });
 * const claims = await verifier.verify(bearerToken); // claims.sub, claims.tid, claims.role
 * ```
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  if (typeof options.issuer !== "string" || options.issuer === "") {
    throw new TypeError("createTokenVerifier: issuer is required");
  }
  // Edgeplane's `iss` is its base URL without a trailing slash.
  const issuer = options.issuer.replace(/\/+$/, "");
  const audience = options.audience ?? API_AUDIENCE;
  const jwksUrl = new URL(options.jwksUrl ?? `${issuer}/.well-known/jwks.json`);
  const jwksOptions: RemoteJWKSetOptions = {};
  if (options.jwksCooldownMs !== undefined) jwksOptions.cooldownDuration = options.jwksCooldownMs;
  if (options.jwksCacheMaxAgeMs !== undefined) jwksOptions.cacheMaxAge = options.jwksCacheMaxAgeMs;
  if (options.jwksTimeoutMs !== undefined) jwksOptions.timeoutDuration = options.jwksTimeoutMs;
  if (options.fetch) jwksOptions[customFetch] = options.fetch;
  const keys = createRemoteJWKSet(jwksUrl, jwksOptions);
  const clockTolerance = options.clockToleranceSec ?? DEFAULT_CLOCK_TOLERANCE_SEC;
  const now = options.now ?? Date.now;

  return {
    async verify(token: string): Promise<AccessTokenClaims> {
      checkShape(token);
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, keys, {
          algorithms: [ALGORITHM],
          typ: ACCESS_TOKEN_TYPE,
          issuer,
          audience,
          clockTolerance,
          currentDate: new Date(now()),
          requiredClaims: [...REQUIRED_CLAIMS],
        }));
      } catch (e) {
        throw refusal(e);
      }
      return checkClaims(payload);
    },
  };
}

/** The checks before any key lookup or cryptography: size, segments, `alg`, `kid`. */
function checkShape(token: string): void {
  if (typeof token !== "string" || token.length > MAX_TOKEN_BYTES || token.split(".").length !== 3) {
    throw new TokenVerificationError("malformed", "not a compact JWS of an access token");
  }
  let header;
  try {
    header = decodeProtectedHeader(token);
  } catch (e) {
    throw new TokenVerificationError("malformed", "the token's header cannot be read", { cause: e });
  }
  if (header.alg !== ALGORITHM || header.crit !== undefined) {
    throw new TokenVerificationError("algorithm", `alg ${JSON.stringify(header.alg)} is not accepted`);
  }
  if (typeof header.kid !== "string" || header.kid === "" || header.kid.length > 64) {
    throw new TokenVerificationError("algorithm", "the token names no key (kid)");
  }
}

/** The claim types that `requiredClaims` does not check. */
function checkClaims(payload: JWTPayload): AccessTokenClaims {
  for (const name of ["sub", "aud", "tid", "role", "sid", "scope", "jti"] as const) {
    if (typeof payload[name] !== "string") {
      throw new TokenVerificationError("malformed", `claim ${name} is not a string`);
    }
  }
  return payload as AccessTokenClaims;
}

/** jose's error as a refusal with a code. */
function refusal(e: unknown): TokenVerificationError {
  const as = (code: TokenErrorCode, message: string) => new TokenVerificationError(code, message, { cause: e });
  if (e instanceof errors.JWTExpired) return as("expired", "the token is expired");
  if (e instanceof errors.JWTClaimValidationFailed) {
    switch (e.claim) {
      case "iss":
        return as("issuer", "the token is for another issuer");
      case "aud":
        return as("audience", "the token is for another audience");
      case "typ":
        return as("type", "the token is not an access token (typ)");
      case "nbf":
      case "iat":
        return as("not_yet_valid", "the token is not valid yet");
      default:
        return as("malformed", `claim ${e.claim}: ${e.reason}`);
    }
  }
  if (e instanceof errors.JWSSignatureVerificationFailed) return as("signature", "the signature does not verify");
  if (e instanceof errors.JWKSNoMatchingKey || e instanceof errors.JWKSMultipleMatchingKeys) {
    return as("unknown_key", "no published key has the token's kid");
  }
  if (e instanceof errors.JOSEAlgNotAllowed || e instanceof errors.JOSENotSupported) {
    return as("algorithm", "the token's algorithm is not accepted");
  }
  if (e instanceof errors.JWSInvalid || e instanceof errors.JWTInvalid) return as("malformed", "the token is malformed");
  return as("jwks_unavailable", `the key set could not be used: ${e instanceof Error ? e.message : String(e)}`);
}
