// Evaluates flags against a running Edgeplane with an unmodified OpenFeature server SDK and its
// OFREP provider (npm), as a managed app would. Usage: node openfeature.mjs <base url> <api key>
// Prints one JSON object: {bool, string, gold, number, missing, off}, each the SDK's evaluation
// details {value, reason, variant, errorCode}.
import { OpenFeature } from "@openfeature/server-sdk";
import { OFREPProvider } from "@openfeature/ofrep-provider";

const [baseUrl, apiKey] = process.argv.slice(2);
if (!baseUrl || !apiKey) {
  console.error("usage: node openfeature.mjs <base url> <api key>");
  process.exit(2);
}

const provider = new OFREPProvider({ baseUrl, headers: [["X-API-Key", apiKey]], timeoutMs: 10_000 });
await OpenFeature.setProviderAndWait(provider);
const client = OpenFeature.getClient();
const ctx = { targetingKey: "sdk-user-1" };
const pick = (d) => ({ value: d.value, reason: d.reason, variant: d.variant, errorCode: d.errorCode });

const out = {
  bool: pick(await client.getBooleanDetails("sdk-bool", false, ctx)),
  string: pick(await client.getStringDetails("sdk-string", "none", ctx)),
  gold: pick(await client.getStringDetails("sdk-string", "none", { ...ctx, plan: "gold" })),
  number: pick(await client.getNumberDetails("sdk-number", 0, ctx)),
  missing: pick(await client.getNumberDetails("sdk-missing", 7, ctx)),
  off: pick(await client.getBooleanDetails("sdk-off", false, ctx)),
};
await OpenFeature.close();
console.log(JSON.stringify(out));
