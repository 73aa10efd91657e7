// The default export Edgeplane's worker uses too (worker/js/entry.js, put in place by
// scripts/worker-entry.mjs), for a `fetch` that answers at once.
export default {
  fetch(request, env, ctx) {
    checkReinitialize();
    try {
      return exports.fetch(request, env, ctx);
    } catch (e) {
      handleMaybeCritical(e);
      throw e;
    }
  },
};
