// A plain default export in place of worker-build's (put there by scripts/worker-entry.mjs, which
// says why), for a `fetch` that answers at once.
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
