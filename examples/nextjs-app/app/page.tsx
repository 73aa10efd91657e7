// Home: who is signed in, in which organization (tenant) and with which role, all from the
// verified access token; and whether the new orders UI is on for them.

import Link from "next/link";
import { redirect } from "next/navigation";

import { ProblemDetails } from "@/components/problem";
import { currentUser } from "@/lib/auth";
import { config } from "@/lib/config";
import { booleanFlag, NEW_ORDERS_UI } from "@/lib/flags";

// Per request: the user and the flags are never the same twice.
export const dynamic = "force-dynamic";

export default async function Home({ searchParams }: { searchParams: Promise<Record<string, string | string[] | undefined>> }) {
  const params = await searchParams;
  const error = typeof params.error === "string" ? params.error : undefined;
  const description = typeof params.error_description === "string" ? params.error_description : undefined;
  const cfg = config();
  const current = await currentUser(cfg);
  if (current.state === "expired" && current.canRefresh) redirect("/auth/refresh?to=%2F");

  const signInError = error && (
    <ProblemDetails heading="Sign-in failed" problem={{ title: error, ...(description ? { detail: description } : {}) }} />
  );

  if (current.state !== "signed-in") {
    return (
      <div className="space-y-6">
        {signInError}
        <h1 className="text-2xl font-semibold">Order service</h1>
        <p className="max-w-prose text-slate-700">
          The orders of your organization. Sign in with your organization&apos;s account: Edgeplane signs you in and tells
          this app your organization and role.
        </p>
        {current.state === "refused" && <p className="text-sm text-amber-800">Your session is no longer valid ({current.reason}): sign in again.</p>}
        <a href="/auth/signin" className="inline-block rounded-md bg-indigo-600 px-4 py-2 text-white hover:bg-indigo-700">
          Sign in with Edgeplane
        </a>
      </div>
    );
  }

  const { claims, session } = current.user;
  const flag = await booleanFlag(cfg, claims, NEW_ORDERS_UI, false);
  return (
    <div className="space-y-6">
      {signInError}
      <h1 className="text-2xl font-semibold">Welcome{session.name ? `, ${session.name}` : ""}</h1>
      <section aria-labelledby="account" className="rounded-md border border-slate-200 bg-white p-4">
        <h2 id="account" className="font-semibold">
          Your account
        </h2>
        <dl className="mt-2 grid grid-cols-[max-content_1fr] gap-x-4 gap-y-1 text-sm">
          <dt className="text-slate-600">Email</dt>
          <dd>{session.email ?? "(not shared)"}</dd>
          <dt className="text-slate-600">User id</dt>
          <dd>
            <code data-testid="user-id">{claims.sub}</code>
          </dd>
          <dt className="text-slate-600">Organization (tenant)</dt>
          <dd>
            <code data-testid="tenant-id">{claims.tid}</code>
          </dd>
          <dt className="text-slate-600">Role</dt>
          <dd data-testid="role">{claims.role}</dd>
          <dt className="text-slate-600">Token valid until</dt>
          <dd>{new Date(claims.exp * 1000).toISOString()}</dd>
        </dl>
      </section>
      <section aria-labelledby="features" className="rounded-md border border-slate-200 bg-white p-4 text-sm">
        <h2 id="features" className="font-semibold">
          Features
        </h2>
        <p className="mt-2">
          New orders UI (<code>{NEW_ORDERS_UI}</code>):{" "}
          <strong data-testid="flag-state">{flag.value ? "on" : "off"}</strong>
          {flag.reason && <span className="text-slate-500"> ({flag.reason.toLowerCase()})</span>}
        </p>
        {flag.errorCode && (
          <p className="mt-1 text-amber-800">
            Edgeplane&apos;s flags could not be read ({flag.errorCode}
            {flag.errorMessage ? `: ${flag.errorMessage}` : ""}): the default applies.
          </p>
        )}
      </section>
      <Link href="/orders" className="inline-block rounded-md bg-indigo-600 px-4 py-2 text-white hover:bg-indigo-700">
        Go to your orders
      </Link>
    </div>
  );
}
