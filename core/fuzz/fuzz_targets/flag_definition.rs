//! Flag definitions as operators send them (`PUT /v1/tenants/{id}/flags/{key}`): the route's
//! body parsing and every check of the definition, then the evaluation of the flag it defines
//! for an OFREP context.
//!
//! Input: the definition body, then optionally a NUL byte and an OFREP request body (JSON
//! text holds no raw NUL, so the split is unambiguous).
//!
//! Beyond "no panic": a definition that passes its checks passes them again as it is stored
//! (its JSON read back), and every value an evaluation serves is of the flag's type.

#![no_main]

use edgeplane_core::flags::{evaluate, Context, Flag, FlagDefinition, FlagKey, Resolution};
use edgeplane_core::http::fuzzing;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

/// The definition as a body again: what is stored is what a later read checks.
fn stored(def: &FlagDefinition) -> Vec<u8> {
    json!({
        "type": def.flag_type.as_str(),
        "value": def.value,
        "enabled": def.enabled,
        "description": def.description,
        "rules": def.rules,
    })
    .to_string()
    .into_bytes()
}

fuzz_target!(|data: &[u8]| {
    let (body, context) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(def) = fuzzing::flag_definition(body) else {
        return;
    };
    let again = fuzzing::flag_definition(&stored(&def))
        .unwrap_or_else(|e| panic!("a checked definition is refused once stored: {e:?}"));
    assert_eq!(
        (
            again.flag_type,
            again.enabled,
            &again.description,
            again.rules.len()
        ),
        (
            def.flag_type,
            def.enabled,
            &def.description,
            def.rules.len()
        )
    );
    let flag = Flag {
        key: FlagKey::parse("fuzz-flag").expect("a valid key"),
        flag_type: def.flag_type,
        value: def.value,
        enabled: def.enabled,
        rules: def.rules,
        version: 1,
    };
    let context: Context = fuzzing::ofrep_context(context).unwrap_or_default();
    if let Resolution::Value { value, .. } = evaluate(&flag, &context) {
        assert!(
            flag.flag_type.admits(value),
            "a {} flag served {value}",
            flag.flag_type
        );
    }
});
