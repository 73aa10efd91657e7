// The runtime's floor for bench/edge.mjs: the smallest useful Worker, answering "ok" to every
// request. Served by the same Miniflare as Edgeplane (tests/harness/workerd.mjs --floor), so
// the ratio of Edgeplane's CPU per request to this one's compares like with like.
export default {
  fetch() {
    return new Response("ok", { headers: { "content-type": "text/plain" } });
  },
};
