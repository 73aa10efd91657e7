// The orders of the signed-in user's organization: the list, a form to place one, and what
// Edgeplane knows of them (this month's billed quantity). The flag `new-orders-ui` switches the
// list between the classic table and the new cards.

import type { ReactNode } from "react";

import { fromProblem, ProblemDetails, type ShownProblem } from "@/components/problem";
import { requireUser } from "@/lib/auth";
import { config, type AppConfig } from "@/lib/config";
import { apiClient, deliveryProblems } from "@/lib/edgeplane";
import { booleanFlag, NEW_ORDERS_UI } from "@/lib/flags";
import { CATALOG, listOrders, MAX_QUANTITY, type Order, productName } from "@/lib/orders";

import { cancelOrderAction, placeOrderAction } from "./actions";

export const dynamic = "force-dynamic";

const INVALID: Record<string, string> = {
  sku: "Choose a product from the list.",
  quantity: `The quantity must be a whole number from 1 to ${MAX_QUANTITY}.`,
  order: "That order cannot be cancelled (it is not one of your organization's placed orders).",
};

/** This UTC month's `order.placed` quantity, from Edgeplane's usage summary (`bill:read`). */
async function billedThisMonth(cfg: AppConfig, tenantId: string): Promise<{ quantity: number; events: number } | ShownProblem> {
  const now = new Date();
  const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString();
  try {
    const { data, error } = await apiClient(cfg).GET("/v1/billing/usage", {
      params: { query: { tenant: tenantId, from, group_by: "day" } },
    });
    if (error) return fromProblem(error);
    const placed = data.items.filter((i) => i.type === "order.placed");
    return { quantity: placed.reduce((n, i) => n + i.quantity, 0), events: placed.reduce((n, i) => n + i.events, 0) };
  } catch (e) {
    return { title: "Edgeplane could not be reached", detail: e instanceof Error ? e.message : String(e) };
  }
}

function Notice({ children }: { children: ReactNode }) {
  return (
    <p role="status" className="rounded-md border border-emerald-300 bg-emerald-50 p-3 text-sm text-emerald-900">
      {children}
    </p>
  );
}

function CancelButton({ order }: { order: Order }) {
  if (order.status !== "placed") return null;
  return (
    <form action={cancelOrderAction}>
      <input type="hidden" name="order" value={order.id} />
      <button type="submit" className="text-sm text-red-700 hover:underline" aria-label={`Cancel order ${order.id}`}>
        Cancel
      </button>
    </form>
  );
}

function ClassicList({ orders }: { orders: Order[] }) {
  return (
    <table className="w-full border-collapse bg-white text-sm" aria-label="Orders">
      <thead>
        <tr className="border-b border-slate-200 text-left text-slate-600">
          <th className="p-2 font-medium">Order</th>
          <th className="p-2 font-medium">Product</th>
          <th className="p-2 font-medium">Quantity</th>
          <th className="p-2 font-medium">Status</th>
          <th className="p-2 font-medium">Placed</th>
          <th className="p-2">
            <span className="sr-only">Actions</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {orders.map((o) => (
          <tr key={o.id} className="border-b border-slate-100">
            <td className="p-2">
              <code className="text-xs">{o.id}</code>
            </td>
            <td className="p-2">{productName(o.sku)}</td>
            <td className="p-2">{o.quantity}</td>
            <td className="p-2">{o.status}</td>
            <td className="p-2">{o.placedAt}</td>
            <td className="p-2">
              <CancelButton order={o} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function CardList({ orders }: { orders: Order[] }) {
  return (
    <ul className="grid gap-3 sm:grid-cols-2" aria-label="Orders">
      {orders.map((o) => (
        <li key={o.id} className="rounded-lg border border-slate-200 bg-white p-4 shadow-sm">
          <div className="flex items-baseline justify-between">
            <p className="text-lg font-semibold">
              {o.quantity} × {productName(o.sku)}
            </p>
            <span className={o.status === "placed" ? "text-emerald-700" : "text-slate-500"}>{o.status}</span>
          </div>
          <p className="mt-1 text-xs text-slate-500">
            <code>{o.id}</code> · {o.placedAt}
          </p>
          <div className="mt-2">
            <CancelButton order={o} />
          </div>
        </li>
      ))}
    </ul>
  );
}

export default async function OrdersPage({ searchParams }: { searchParams: Promise<Record<string, string | string[] | undefined>> }) {
  const { claims } = await requireUser("/orders");
  const params = await searchParams;
  const cfg = config();
  const [flag, usage] = await Promise.all([
    booleanFlag(cfg, claims, NEW_ORDERS_UI, false),
    billedThisMonth(cfg, claims.tid),
  ]);
  const orders = listOrders(claims.tid);
  const problems = deliveryProblems(claims.tid);
  const invalid = typeof params.invalid === "string" && Object.hasOwn(INVALID, params.invalid) ? INVALID[params.invalid] : undefined;
  const newUi = flag.value;

  return (
    <div className="space-y-6">
      <div className="flex items-baseline justify-between">
        <h1 className="text-2xl font-semibold">Orders</h1>
        <p className="text-sm text-slate-600">
          Organization <code>{claims.tid}</code> · {claims.role}
        </p>
      </div>

      {newUi ? (
        <p data-testid="orders-ui" className="rounded-md bg-indigo-600 p-3 text-sm text-white">
          New orders UI: your orders as cards, with this month&apos;s billed total.
        </p>
      ) : (
        <p data-testid="orders-ui" className="text-sm text-slate-600">
          Classic orders UI.
        </p>
      )}
      {flag.errorCode && (
        <p className="text-sm text-amber-800">
          The flag <code>{NEW_ORDERS_UI}</code> could not be read ({flag.errorCode}
          {flag.errorMessage ? `: ${flag.errorMessage}` : ""}): showing the classic UI.
        </p>
      )}

      {typeof params.placed === "string" && (
        <Notice>
          Order <code>{params.placed}</code> placed.
        </Notice>
      )}
      {typeof params.cancelled === "string" && (
        <Notice>
          Order <code>{params.cancelled}</code> cancelled.
        </Notice>
      )}
      {invalid && <ProblemDetails heading="The order was not taken" problem={{ title: "Invalid order", detail: invalid }} />}

      <form action={placeOrderAction} className="flex flex-wrap items-end gap-3 rounded-md border border-slate-200 bg-white p-4">
        <label className="flex flex-col text-sm">
          Product
          <select name="sku" required className="mt-1 rounded-md border border-slate-300 px-2 py-1">
            {CATALOG.map((p) => (
              <option key={p.sku} value={p.sku}>
                {p.name}
              </option>
            ))}
          </select>
        </label>
        <label className="flex flex-col text-sm">
          Quantity
          <input
            name="quantity"
            type="number"
            min={1}
            max={MAX_QUANTITY}
            defaultValue={1}
            required
            className="mt-1 w-28 rounded-md border border-slate-300 px-2 py-1"
          />
        </label>
        <button type="submit" className="rounded-md bg-indigo-600 px-4 py-2 text-sm text-white hover:bg-indigo-700">
          Place order
        </button>
      </form>

      {"title" in usage ? (
        <ProblemDetails heading="Billing usage unavailable" problem={usage} />
      ) : (
        (newUi || orders.length > 0) && (
          <p className="text-sm text-slate-700" data-testid="billed">
            Billed this month: {usage.quantity} items in {usage.events} orders (as Edgeplane has received them).
          </p>
        )
      )}

      {problems.length > 0 &&
        problems.map((p, i) => (
          <ProblemDetails
            key={i}
            heading={`Edgeplane did not take ${p.events} ${p.kind} event${p.events === 1 ? "" : "s"} (${p.reason}, ${p.at})`}
            problem={p.problem ? fromProblem(p.problem) : { title: p.reason, ...(p.status ? { status: p.status } : {}) }}
          />
        ))}

      {orders.length === 0 ? (
        <p className="text-sm text-slate-600">No orders yet.</p>
      ) : newUi ? (
        <CardList orders={orders} />
      ) : (
        <ClassicList orders={orders} />
      )}
    </div>
  );
}
