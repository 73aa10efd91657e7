import type { Metadata } from "next";
import Link from "next/link";
import type { ReactNode } from "react";

import { currentUser } from "@/lib/auth";
import "./globals.css";

// Every page depends on who is signed in: rendered per request, never prerendered.
export const dynamic = "force-dynamic";

export const metadata: Metadata = {
  title: "Orders · an app on Edgeplane",
  description: "The template of a managed app on Edgeplane",
};

export default async function RootLayout({ children }: { children: ReactNode }) {
  const current = await currentUser();
  const user = current.state === "signed-in" ? current.user : undefined;
  return (
    <html lang="en">
      <body className="min-h-screen bg-slate-50 text-slate-900 antialiased">
        <header className="border-b border-slate-200 bg-white">
          <div className="mx-auto flex max-w-4xl items-center justify-between gap-4 px-4 py-3">
            <nav aria-label="Main" className="flex items-center gap-4">
              <Link href="/" className="font-semibold text-indigo-700">
                Order service
              </Link>
              <Link href="/" className="text-sm text-slate-700 hover:underline">
                Home
              </Link>
              <Link href="/orders" className="text-sm text-slate-700 hover:underline">
                Orders
              </Link>
            </nav>
            {user ? (
              <form action="/auth/signout" method="post" className="flex items-center gap-3 text-sm">
                <span className="text-slate-600">{user.session.email ?? user.claims.sub}</span>
                <button type="submit" className="rounded-md border border-slate-300 px-3 py-1 hover:bg-slate-100">
                  Sign out
                </button>
              </form>
            ) : (
              <a href="/auth/signin" className="rounded-md bg-indigo-600 px-3 py-1 text-sm text-white hover:bg-indigo-700">
                Sign in
              </a>
            )}
          </div>
        </header>
        <main className="mx-auto max-w-4xl px-4 py-8">{children}</main>
      </body>
    </html>
  );
}
