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

// A request body whose declared length is at most this is read here, before Rust runs, and
// handed over whole: the hot POST routes (OFREP, token introspection) then wait for nothing
// inside Rust and are answered in its first poll, with no Rust promise or task. Any other body
// (larger, or of no declared length) is streamed by Rust within core's limit (1 MiB, above
// this one).
const PREREAD_LIMIT = 65536;

function serve(request, env, ctx, body) {
  try {
    return exports.fetch(request, env, ctx, body);
  } catch (e) {
    handleMaybeCritical(e);
    const answer = globalThis.__edgeplanePanicAnswer;
    globalThis.__edgeplanePanicAnswer = undefined;
    if (answer) return new Response(answer.body, { status: answer.status, headers: answer.headers });
    throw e;
  }
}

export default {
  fetch(request, env, ctx) {
    checkReinitialize();
    if (request.body !== null) {
      const declared = request.headers.get("content-length");
      if (declared !== null && Number(declared) <= PREREAD_LIMIT) {
        // A body that cannot be read is left to Rust, which answers the request with a problem.
        return request.arrayBuffer().then(
          (body) => {
            checkReinitialize();
            return serve(request, env, ctx, new Uint8Array(body));
          },
          () => {
            checkReinitialize();
            return serve(request, env, ctx, undefined);
          },
        );
      }
    }
    return serve(request, env, ctx, undefined);
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
