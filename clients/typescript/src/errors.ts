/**
 * The errors Edgeplane answers with: every error response is RFC 9457 problem details
 * (`application/problem+json`), and this module turns one into a thrown {@link EdgeplaneError}.
 */

import type { components } from "./schema.js";

/** An error response's body (RFC 9457), as the OpenAPI document describes it. */
export type Problem = components["schemas"]["Problem"] & {
  /** Per-field errors of invalid input; an event batch names the refused event's `index`. */
  errors?: ProblemFieldError[];
  /** Any extension member (`reason`, ...). */
  [extension: string]: unknown;
};

/** One refused field of a request (an item of {@link Problem.errors}). */
export interface ProblemFieldError {
  /** The field, as named in the request. */
  field: string;
  /** What is wrong with it. */
  message: string;
  /** In an event batch, the position of the refused event. */
  index?: number;
}

/** An HTTP error answer from Edgeplane, with its problem details when the body carried them. */
export class EdgeplaneError extends Error {
  /** The HTTP status. */
  readonly status: number;
  /** The problem details, when the body was `application/problem+json` (or JSON). */
  readonly problem: Problem | undefined;

  constructor(status: number, problem: Problem | undefined, message?: string) {
    super(message ?? describe(status, problem));
    this.name = "EdgeplaneError";
    this.status = status;
    this.problem = problem;
  }

  /** The request id to quote when reporting the problem. */
  get requestId(): string | undefined {
    return this.problem?.request_id;
  }
}

function describe(status: number, problem: Problem | undefined): string {
  if (!problem) return `Edgeplane answered ${status}`;
  const where = problem.request_id ? ` (request ${problem.request_id})` : "";
  return `Edgeplane answered ${status} ${problem.title}: ${problem.detail}${where}`;
}

/** Whether `value` has the members every problem has. */
export function isProblem(value: unknown): value is Problem {
  if (typeof value !== "object" || value === null) return false;
  const p = value as Record<string, unknown>;
  return typeof p.type === "string" && typeof p.status === "number" && typeof p.title === "string";
}
