// Evaluates flags against a running Edgeplane with the unmodified OpenFeature web SDK and its
// OFREP web provider (npm), as a page would: one bulk evaluation for the page's context, then
// synchronous reads. Usage: node openfeature-web.mjs <base url> <browser key> <origin>
// The Origin header is sent as a browser would, so the browser key's origin check applies.
// Prints one JSON object: {bool, string, number, missing}, each the SDK's evaluation details,
// and initError (null, or why the provider could not start).
import { OpenFeature } from "@openfeature/web-sdk";
import { OFREPWebProvider } from "@openfeature/ofrep-web-provider";

const [baseUrl, apiKey, origin] = process.argv.slice(2);
if (!baseUrl || !apiKey || !origin) {
  console.error("usage: node openfeature-web.mjs <base url> <browser key> <origin>");
  process.exit(2);
}

const provider = new OFREPWebProvider({
  baseUrl,
  headers: [["Authorization", `Bearer ${apiKey}`], ["Origin", origin]],
  pollInterval: 0,
  cacheMode: "network-first",
  // Refusals are shown on stderr, so a failing run says why.
  fetchImplementation: async (req) => {
    const res = await fetch(req);
    if (!res.ok && res.status !== 304) console.error(`HTTP ${res.status}: ${await res.clone().text()}`);
    return res;
  },
});
await OpenFeature.setContext({ targetingKey: "web-user-1", plan: "gold" });
// A refused initialization (e.g. 403 for another origin) leaves the SDK serving defaults.
let initError = null;
try {
  await OpenFeature.setProviderAndWait(provider);
} catch (e) {
  initError = String(e?.cause ?? e);
}
const client = OpenFeature.getClient();
const pick = (d) => ({ value: d.value, reason: d.reason, variant: d.variant, errorCode: d.errorCode });
const out = {
  bool: pick(client.getBooleanDetails("sdk-bool", false)),
  string: pick(client.getStringDetails("sdk-string", "none")),
  number: pick(client.getNumberDetails("sdk-number", 0)),
  missing: pick(client.getNumberDetails("sdk-missing", 7)),
  initError,
};
await OpenFeature.close();
console.log(JSON.stringify(out));
