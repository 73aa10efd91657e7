// The worker's default export in place of worker-build's (scripts/worker-entry.mjs puts it
// there and says why): a plain module export, so `fetch` may return the `Response` itself when
// the request waited for nothing, and may answer a panic that happened before it returned.
//
// A panic traps the Wasm instance. One that happens while `exports.fetch` is still running (the
// request had not waited for anything yet) throws out of it; the panic hook left that request's
// answer, a plain `{status, headers, body}`, in `globalThis.__edgeplanePanicAnswer`
// (worker/src/panic.rs), and it is answered here. A panic after the request's first wait
// settles the request's promise instead. Either way the instance is marked broken and the next
// call rebuilds it (checkReinitialize).
export default {
  fetch(request, env, ctx) {
    checkReinitialize();
    try {
      return exports.fetch(request, env, ctx);
    } catch (e) {
      handleMaybeCritical(e);
      const answer = globalThis.__edgeplanePanicAnswer;
      globalThis.__edgeplanePanicAnswer = undefined;
      if (answer) return new Response(answer.body, { status: answer.status, headers: answer.headers });
      throw e;
    }
  },
  scheduled(controller, env, ctx) {
    checkReinitialize();
    try {
      return exports.scheduled(controller, env, ctx);
    } catch (e) {
      handleMaybeCritical(e);
      throw e;
    }
  },
};
