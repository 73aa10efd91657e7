//! [`WebCryptoVerifier`]: core's `SignatureVerifier` port over WebCrypto's Ed25519, which is
//! native code in workerd and verifies about twice as fast as `ed25519-dalek` compiled to wasm.
//! Imported keys are kept in the isolate per `kid` (a handful: the published signing keys).

use edgeplane_core::ports::{SignatureError, SignatureVerifier};
use wasm_bindgen::prelude::wasm_bindgen;

use crate::sql_js::js_error_message;

#[wasm_bindgen(inline_js = "
const imported = new Map();
export function verifyEd25519(kid, publicKey, message, signature) {
  // Copies first: the arguments are views of Wasm memory, which may move during an await.
  const raw = publicKey.slice();
  const data = message.slice();
  const sig = signature.slice();
  return (async () => {
    let entry = imported.get(kid);
    if (!entry || entry.raw.length !== raw.length || entry.raw.some((b, i) => b !== raw[i])) {
      const key = await crypto.subtle.importKey('raw', raw, { name: 'Ed25519' }, false, ['verify']);
      if (imported.size >= 16) imported.clear();
      entry = { raw, key };
      imported.set(kid, entry);
    }
    return crypto.subtle.verify({ name: 'Ed25519' }, entry.key, sig, data);
  })();
}
")]
extern "C" {
    /// Resolves to whether `signature` is an Ed25519 signature of `message` by `public_key`,
    /// importing the key once per `kid` (again if that kid's bytes differ); rejects when the
    /// key cannot be imported or WebCrypto fails.
    #[wasm_bindgen(js_name = verifyEd25519)]
    fn verify_ed25519_js(
        kid: &str,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> js_sys::Promise;
}

/// Ed25519 verification by the runtime's WebCrypto (BoringSSL's `ED25519_verify`, which
/// refuses an `S` that is not below the group order).
#[derive(Debug, Clone, Copy, Default)]
pub struct WebCryptoVerifier;

impl SignatureVerifier for WebCryptoVerifier {
    async fn verify_ed25519(
        &self,
        kid: &str,
        public_key: &[u8; 32],
        message: &[u8],
        signature: &[u8; 64],
    ) -> Result<bool, SignatureError> {
        let promise = verify_ed25519_js(kid, public_key, message, signature);
        let valid = wasm_bindgen_futures::JsFuture::from(promise)
            .await
            .map_err(|e| SignatureError::Unavailable(js_error_message(&e)))?;
        Ok(valid.as_bool() == Some(true))
    }
}
