// How a failed call to Edgeplane shows on a page: its problem details (RFC 9457,
// `application/problem+json`), with the request id to quote when reporting it.

import type { Problem } from "@edgeplane/client";

/** A problem of Edgeplane's, or an error of the app shaped like one. */
export interface ShownProblem {
  title: string;
  status?: number;
  detail?: string;
  code?: string;
  type?: string;
  request_id?: string;
  errors?: { field: string; message: string; index?: number }[];
}

/** An Edgeplane problem as shown. */
export function fromProblem(p: Problem): ShownProblem {
  return {
    title: p.title,
    status: p.status,
    detail: p.detail,
    code: p.code,
    type: p.type,
    request_id: p.request_id,
    ...(p.errors ? { errors: p.errors } : {}),
  };
}

/** A box that says what failed, for `role="alert"` readers too. */
export function ProblemDetails({ heading, problem }: { heading: string; problem: ShownProblem }) {
  return (
    <section role="alert" aria-label={heading} className="rounded-md border border-red-300 bg-red-50 p-4 text-sm text-red-900">
      <h2 className="font-semibold">{heading}</h2>
      <p className="mt-1">
        <span className="font-medium">{problem.title}</span>
        {problem.status !== undefined && <span> ({problem.status})</span>}
        {problem.detail && <span>: {problem.detail}</span>}
      </p>
      {problem.errors && problem.errors.length > 0 && (
        <ul className="mt-2 list-disc pl-5">
          {problem.errors.map((e, i) => (
            <li key={i}>
              <code>{e.field}</code>: {e.message}
            </li>
          ))}
        </ul>
      )}
      <dl className="mt-2 grid grid-cols-[max-content_1fr] gap-x-3 text-xs text-red-800">
        {problem.code && (
          <>
            <dt>Code</dt>
            <dd>
              <code>{problem.code}</code>
            </dd>
          </>
        )}
        {problem.type && (
          <>
            <dt>Type</dt>
            <dd>
              <code>{problem.type}</code>
            </dd>
          </>
        )}
        {problem.request_id && (
          <>
            <dt>Request id</dt>
            <dd>
              <code>{problem.request_id}</code>
            </dd>
          </>
        )}
      </dl>
    </section>
  );
}
