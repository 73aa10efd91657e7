"use server";

// The orders page's forms. Each works without JavaScript (a plain POST, then a redirect back to
// the page). Every placed order reports one billing event (`order.placed`, quantity = items)
// and every action one audit event, through the process's reporters: they batch, retry with the
// batch's Idempotency-Key, and the events carry ids made from the order's, so a retry or a
// second report of the same order is stored once.

import { redirect } from "next/navigation";

import { requireUser } from "@/lib/auth";
import { config } from "@/lib/config";
import { audit, billing } from "@/lib/edgeplane";
import { cancelOrder, InvalidOrderError, ORDER_ID, parseOrder, placeOrder } from "@/lib/orders";
import { clientIp } from "@/lib/request";

/** `order.placed`: a billing event and an audit event. */
export async function placeOrderAction(form: FormData): Promise<void> {
  const { claims } = await requireUser("/orders");
  let fields;
  try {
    fields = parseOrder(form.get("sku"), form.get("quantity"));
  } catch (e) {
    if (e instanceof InvalidOrderError) redirect(`/orders?invalid=${e.field}`);
    throw e;
  }
  const cfg = config();
  const order = placeOrder(claims.tid, claims.sub, fields.sku, fields.quantity, new Date());
  billing(cfg).report({
    id: `order.placed:${order.id}`,
    tenant_id: order.tenantId,
    type: "order.placed",
    quantity: order.quantity,
    timestamp: order.placedAt,
    metadata: { order_id: order.id, sku: order.sku },
  });
  audit(cfg).report({
    id: `order.placed:${order.id}`,
    tenant_id: order.tenantId,
    timestamp: order.placedAt,
    actor_id: claims.sub,
    type: "order.placed",
    resource_id: `order:${order.id}`,
    outcome: "success",
    ip: await clientIp(),
  });
  redirect(`/orders?placed=${encodeURIComponent(order.id)}`);
}

/** `order.cancelled`: an audit event, a failure too (billing counts orders placed, not undone here). */
export async function cancelOrderAction(form: FormData): Promise<void> {
  const { claims } = await requireUser("/orders");
  const raw = form.get("order");
  // The form's value is the browser's: only an id of ours goes into the audit trail.
  const id = typeof raw === "string" && ORDER_ID.test(raw) ? raw : undefined;
  const now = new Date();
  const order = id ? cancelOrder(claims.tid, id, now) : undefined;
  audit(config()).report({
    // Cancelling succeeds once per order; failed attempts are each an event of their own.
    ...(order ? { id: `order.cancelled:${order.id}` } : {}),
    tenant_id: claims.tid,
    timestamp: now.toISOString(),
    actor_id: claims.sub,
    type: "order.cancelled",
    resource_id: `order:${id ?? "unknown"}`,
    outcome: order ? "success" : "failure",
    ip: await clientIp(),
  });
  redirect(order ? `/orders?cancelled=${encodeURIComponent(order.id)}` : "/orders?invalid=order");
}
