/**
 * The app's own data: orders, per tenant, in this process's memory (a template's stand-in for the
 * order service's database; a restart empties it). Edgeplane holds none of it: it only receives
 * a billing event per placed order and an audit event per action.
 */

import "server-only";

import { randomUUID } from "node:crypto";

import { singleton } from "./singleton";

/** What can be ordered. */
export const CATALOG = [
  { sku: "seat", name: "Seat licence" },
  { sku: "storage-100gb", name: "Storage, 100 GB" },
  { sku: "support-hour", name: "Support hour" },
] as const;

/** A product's stock-keeping unit. */
export type Sku = (typeof CATALOG)[number]["sku"];

/** What an order id looks like. */
export const ORDER_ID = /^ord_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Most items in one order. */
export const MAX_QUANTITY = 1000;

/** One order of a tenant. */
export interface Order {
  id: string;
  tenantId: string;
  sku: Sku;
  quantity: number;
  status: "placed" | "cancelled";
  /** The user who placed it (Edgeplane's user id). */
  placedBy: string;
  placedAt: string;
  cancelledAt?: string;
}

/** An order that cannot be taken, with the field at fault. */
export class InvalidOrderError extends Error {
  constructor(
    readonly field: "sku" | "quantity",
    message: string,
  ) {
    super(message);
    this.name = "InvalidOrderError";
  }
}

const orders = () => singleton("orders", () => new Map<string, Order[]>());

/** Parses an order form's fields. */
export function parseOrder(sku: unknown, quantity: unknown): { sku: Sku; quantity: number } {
  const product = CATALOG.find((p) => p.sku === sku);
  if (!product) throw new InvalidOrderError("sku", "Choose a product from the list.");
  const n = typeof quantity === "string" && /^\d{1,7}$/.test(quantity) ? Number(quantity) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_QUANTITY) {
    throw new InvalidOrderError("quantity", `The quantity must be a whole number from 1 to ${MAX_QUANTITY}.`);
  }
  return { sku: product.sku, quantity: n };
}

/** A tenant's orders, newest first. */
export function listOrders(tenantId: string): Order[] {
  return [...(orders().get(tenantId) ?? [])].reverse();
}

/** Stores a new order. */
export function placeOrder(tenantId: string, placedBy: string, sku: Sku, quantity: number, now: Date): Order {
  const order: Order = {
    id: `ord_${randomUUID()}`,
    tenantId,
    sku,
    quantity,
    status: "placed",
    placedBy,
    placedAt: now.toISOString(),
  };
  const list = orders().get(tenantId) ?? [];
  list.push(order);
  orders().set(tenantId, list);
  return order;
}

/** Cancels a placed order of the tenant; undefined when there is no such order or it was cancelled already. */
export function cancelOrder(tenantId: string, id: string, now: Date): Order | undefined {
  const order = orders().get(tenantId)?.find((o) => o.id === id);
  if (!order || order.status !== "placed") return undefined;
  order.status = "cancelled";
  order.cancelledAt = now.toISOString();
  return order;
}

/** A product's name. */
export function productName(sku: string): string {
  return CATALOG.find((p) => p.sku === sku)?.name ?? sku;
}
