// The Worker's default export, put in place of worker-build's by scripts/worker-entry.mjs (read
// there why). `exports`, `checkReinitialize` and `handleMaybeCritical` are the shim's own.
export default {
  fetch(request, env, ctx) {
    checkReinitialize();
    try {
      return exports.fetch(request, env, ctx).catch((e) => {
        handleMaybeCritical(e);
        throw e;
      });
    } catch (e) {
      handleMaybeCritical(e);
      throw e;
    }
  },
  async scheduled(event, env, ctx) {
    checkReinitialize();
    try {
      return await exports.scheduled(event, env, ctx);
    } catch (e) {
      handleMaybeCritical(e);
      throw e;
    }
  },
};
