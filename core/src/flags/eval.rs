//! Flag evaluation: a pure function of a flag and an evaluation context, the same on every
//! runtime (FR-FLAG-002). No I/O, no clock, no randomness: the percentage rollouts are
//! deterministic hashes of the context.
//!
//! # Bucketing (stable across runtimes and versions)
//! A rollout places a context in one of 100,000 buckets:
//! `bucket = u64::from_be_bytes(SHA-256(seed ‖ 0x00 ‖ value)[0..8]) mod 100_000`, where `seed` is
//! the rollout's seed (default: the flag key) and `value` the text form of the `bucket_by`
//! attribute (default: `targetingKey`), both UTF-8. The variants own consecutive ranges of
//! buckets in their listed order, in proportion to their weights: variant *i* serves the buckets
//! from `100_000 × (w₀+…+wᵢ₋₁) / W` up to (excluding) `100_000 × (w₀+…+wᵢ) / W`, `W` the sum of
//! weights. Raising one variant's share therefore only moves buckets at the boundaries: a
//! context served by a growing first variant stays with it. This definition is part of the API:
//! changing it would move users between variants.

use std::borrow::Cow;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::model::{as_number, scalar_text, Condition, Flag, Op, Rollout, Rule, Semver};

/// Number of buckets of a rollout.
pub const BUCKETS: u64 = 100_000;

/// The context attribute that identifies the subject of an evaluation (OpenFeature).
pub const TARGETING_KEY: &str = "targetingKey";

/// An OpenFeature resolution reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No rules: the flag's value.
    Static,
    /// A rule with a value matched.
    TargetingMatch,
    /// A rollout placed the context.
    Split,
    /// The flag is disabled: no value, the caller's default applies.
    Disabled,
    /// Rules exist but none matched: the flag's value.
    Default,
}

impl Reason {
    /// Every reason.
    pub const ALL: [Reason; 5] = [
        Reason::Static,
        Reason::TargetingMatch,
        Reason::Split,
        Reason::Disabled,
        Reason::Default,
    ];

    /// The OFREP name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Disabled => "DISABLED",
            Reason::Default => "DEFAULT",
        }
    }
}

/// Why a flag could not be evaluated for a context (OFREP error codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalError {
    /// A rollout buckets by the targeting key and the context has none.
    TargetingKeyMissing,
    /// A rollout buckets by another attribute that the context lacks or holds as a non-scalar.
    InvalidContext(String),
}

impl EvalError {
    /// Every OFREP `errorCode` an evaluation may report.
    pub const CODES: [&'static str; 2] = ["TARGETING_KEY_MISSING", "INVALID_CONTEXT"];

    /// The OFREP `errorCode`.
    pub fn code(&self) -> &'static str {
        match self {
            EvalError::TargetingKeyMissing => Self::CODES[0],
            EvalError::InvalidContext(_) => Self::CODES[1],
        }
    }

    /// The OFREP `errorDetails`.
    pub fn details(&self) -> String {
        match self {
            EvalError::TargetingKeyMissing => {
                "this flag splits by targetingKey: the context must have one".to_owned()
            }
            EvalError::InvalidContext(attr) => {
                format!("this flag splits by `{attr}`: the context must hold it as a scalar")
            }
        }
    }
}

/// The result of evaluating one flag.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution<'f> {
    /// A value was served.
    Value {
        /// The value.
        value: &'f Value,
        /// The variant name.
        variant: Cow<'f, str>,
        /// Why.
        reason: Reason,
    },
    /// The flag is disabled.
    Disabled,
    /// The context does not allow an evaluation.
    Error(EvalError),
}

/// An evaluation context: the OFREP request's `context` object.
pub type Context = Map<String, Value>;

/// Evaluates `flag` for `ctx`.
pub fn evaluate<'f>(flag: &'f Flag, ctx: &Context) -> Resolution<'f> {
    if !flag.enabled {
        return Resolution::Disabled;
    }
    for (i, rule) in flag.rules.iter().enumerate() {
        if rule.conditions.iter().all(|c| holds(c, ctx)) {
            return serve_rule(flag, i, rule, ctx);
        }
    }
    Resolution::Value {
        value: &flag.value,
        variant: Cow::Borrowed("default"),
        reason: if flag.rules.is_empty() {
            Reason::Static
        } else {
            Reason::Default
        },
    }
}

fn serve_rule<'f>(flag: &'f Flag, i: usize, rule: &'f Rule, ctx: &Context) -> Resolution<'f> {
    if let Some(rollout) = &rule.rollout {
        return split(flag, rollout, ctx);
    }
    match &rule.value {
        Some(value) => Resolution::Value {
            value,
            variant: rule
                .name
                .as_deref()
                .map_or_else(|| Cow::Owned(format!("rule-{i}")), Cow::Borrowed),
            reason: Reason::TargetingMatch,
        },
        // Unreachable for a checked definition; serve the flag's value rather than fail.
        None => Resolution::Value {
            value: &flag.value,
            variant: Cow::Borrowed("default"),
            reason: Reason::Default,
        },
    }
}

fn split<'f>(flag: &'f Flag, r: &'f Rollout, ctx: &Context) -> Resolution<'f> {
    let attr = r.bucket_by.as_deref().unwrap_or(TARGETING_KEY);
    let Some(by) = ctx.get(attr).and_then(scalar_text) else {
        return Resolution::Error(if attr == TARGETING_KEY {
            EvalError::TargetingKeyMissing
        } else {
            EvalError::InvalidContext(attr.to_owned())
        });
    };
    let seed = r.seed.as_deref().unwrap_or(flag.key.as_str());
    let b = bucket(seed, &by);
    let weights: Vec<u64> = r.variants.iter().map(|v| u64::from(v.weight)).collect();
    let i = pick(&weights, b);
    match r.variants.get(i) {
        Some(v) => Resolution::Value {
            value: &v.value,
            variant: v
                .variant
                .as_deref()
                .map_or_else(|| Cow::Owned(format!("split-{i}")), Cow::Borrowed),
            reason: Reason::Split,
        },
        None => Resolution::Value {
            value: &flag.value,
            variant: Cow::Borrowed("default"),
            reason: Reason::Default,
        },
    }
}

/// The bucket (0..100,000) of `value` under `seed`; see the module docs.
pub fn bucket(seed: &str, value: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(seed.as_bytes());
    h.update([0u8]);
    h.update(value.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) % BUCKETS
}

/// The index of the variant owning bucket `b` for these weights (see the module docs).
pub fn pick(weights: &[u64], b: u64) -> usize {
    let total: u64 = weights.iter().sum();
    if total == 0 {
        return 0;
    }
    let mut cumulative = 0u64;
    for (i, w) in weights.iter().enumerate() {
        cumulative += w;
        // b < BUCKETS * cumulative / total, without division rounding: b * total < BUCKETS * cumulative.
        if u128::from(b) * u128::from(total) < u128::from(BUCKETS) * u128::from(cumulative) {
            return i;
        }
    }
    weights.len().saturating_sub(1)
}

/// Whether a condition holds for the context.
pub fn holds(c: &Condition, ctx: &Context) -> bool {
    let Some(attr) = ctx.get(&c.attribute) else {
        return false;
    };
    if scalar_text(attr).is_none() {
        return false;
    }
    let any = c.values.iter().any(|v| compare(c.op, attr, v));
    if c.op.is_negated() {
        !any
    } else {
        any
    }
}

/// One comparison of an attribute with one value (negated operators compare as their positive).
fn compare(op: Op, attr: &Value, v: &Value) -> bool {
    fn text(x: &Value) -> Cow<'_, str> {
        scalar_text(x).unwrap_or(Cow::Borrowed(""))
    }
    match op {
        Op::Eq | Op::Neq | Op::In | Op::NotIn => {
            match (as_exact_number(attr), as_exact_number(v)) {
                (Some(a), Some(b)) => a == b,
                _ => text(attr) == text(v),
            }
        }
        Op::StartsWith => text(attr).starts_with(text(v).as_ref()),
        Op::EndsWith => text(attr).ends_with(text(v).as_ref()),
        Op::Contains => text(attr).contains(text(v).as_ref()),
        Op::Lt | Op::Lte | Op::Gt | Op::Gte => match (as_number(attr), as_number(v)) {
            (Some(a), Some(b)) => match op {
                Op::Lt => a < b,
                Op::Lte => a <= b,
                Op::Gt => a > b,
                _ => a >= b,
            },
            _ => false,
        },
        Op::SemverEq | Op::SemverLt | Op::SemverLte | Op::SemverGt | Op::SemverGte => {
            match (Semver::parse(&text(attr)), Semver::parse(&text(v))) {
                (Some(a), Some(b)) => match op {
                    Op::SemverEq => a == b,
                    Op::SemverLt => a < b,
                    Op::SemverLte => a <= b,
                    Op::SemverGt => a > b,
                    _ => a >= b,
                },
                _ => false,
            }
        }
    }
}

/// JSON numbers compare by value for equality (`1` equals `1.0`); everything else by text.
fn as_exact_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::flags::model::{FlagKey, FlagType, Variant};

    fn flag(value: Value, rules: Value) -> Flag {
        Flag {
            key: FlagKey::parse("new-checkout").unwrap(),
            flag_type: FlagType::Json,
            value,
            enabled: true,
            rules: serde_json::from_value(rules).unwrap(),
            version: 1,
        }
    }

    fn ctx(v: Value) -> Context {
        match v {
            Value::Object(m) => m,
            _ => panic!("context must be an object"),
        }
    }

    fn cond(attribute: &str, op: &str, values: Value) -> Condition {
        serde_json::from_value(json!({"attribute": attribute, "op": op, "values": values})).unwrap()
    }

    /// Every operator, against the attribute kinds a context carries (FR-FLAG-002 targeting).
    #[test]
    fn operators_table() {
        let c = ctx(json!({
            "email": "ana@acme.com", "plan": "pro", "seats": 12, "ratio": "0.5",
            "version": "2.3.0-beta.2", "beta": true, "tags": ["x"]
        }));
        let cases: &[(&str, &str, Value, bool)] = &[
            ("plan", "eq", json!(["pro"]), true),
            ("plan", "eq", json!(["Pro"]), false),
            ("plan", "neq", json!(["free"]), true),
            ("plan", "neq", json!(["pro"]), false),
            ("plan", "in", json!(["free", "pro"]), true),
            ("plan", "not_in", json!(["free", "pro"]), false),
            ("plan", "not_in", json!(["free"]), true),
            ("seats", "eq", json!([12.0]), true),
            ("seats", "eq", json!(["12"]), true),
            ("beta", "eq", json!([true]), true),
            ("beta", "eq", json!(["true"]), true),
            ("email", "ends_with", json!(["@acme.com"]), true),
            (
                "email",
                "ends_with",
                json!(["@other.com", "acme.com"]),
                true,
            ),
            ("email", "starts_with", json!(["ana@"]), true),
            ("email", "starts_with", json!(["bob@"]), false),
            ("email", "contains", json!(["@acme"]), true),
            ("seats", "gt", json!([10]), true),
            ("seats", "gt", json!([12]), false),
            ("seats", "gte", json!([12]), true),
            ("seats", "lt", json!([12]), false),
            ("seats", "lte", json!([12]), true),
            ("ratio", "lt", json!([0.75]), true),
            ("email", "lt", json!([1]), false),
            ("version", "semver_lt", json!(["2.3.0"]), true),
            ("version", "semver_gt", json!(["2.3.0-beta.1"]), true),
            ("version", "semver_gt", json!(["2.3.0-beta.10"]), false),
            ("version", "semver_gte", json!(["2.2.9"]), true),
            (
                "version",
                "semver_eq",
                json!(["v2.3.0-beta.2+build.5"]),
                true,
            ),
            ("version", "semver_lte", json!(["1.0.0"]), false),
            ("plan", "semver_eq", json!(["1.0.0"]), false),
            // A missing attribute satisfies nothing, not even a negated operator.
            ("country", "eq", json!(["de"]), false),
            ("country", "not_in", json!(["de"]), false),
            // Non-scalar attributes satisfy nothing.
            ("tags", "contains", json!(["x"]), false),
            ("tags", "neq", json!(["x"]), false),
        ];
        for (attr, op, values, want) in cases {
            let got = holds(&cond(attr, op, values.clone()), &c);
            assert_eq!(got, *want, "{attr} {op} {values}");
        }
    }

    #[test]
    fn semver_precedence_follows_semver_2() {
        // The ordering example of SemVer 2.0.0, section 11.
        let ordered = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "2.0.0",
            "2.1.0",
            "2.1.1",
        ];
        for pair in ordered.windows(2) {
            let (a, b) = (
                Semver::parse(pair[0]).unwrap(),
                Semver::parse(pair[1]).unwrap(),
            );
            assert!(a < b, "{} < {}", pair[0], pair[1]);
        }
        for bad in [
            "1.0",
            "1.0.0.0",
            "01.0.0",
            "1.0.0-",
            "1.0.0-a..b",
            "x.y.z",
            "",
        ] {
            assert!(Semver::parse(bad).is_none(), "{bad}");
        }
    }

    /// Reasons: STATIC without rules, TARGETING_MATCH, SPLIT, DEFAULT when no rule matches,
    /// DISABLED without a value.
    #[test]
    fn reasons_and_variants() {
        let f = flag(json!("blue"), json!([]));
        assert_eq!(
            evaluate(&f, &ctx(json!({}))),
            Resolution::Value {
                value: &json!("blue"),
                variant: Cow::Borrowed("default"),
                reason: Reason::Static
            }
        );
        let f = flag(
            json!("blue"),
            json!([
                {"name": "staff", "conditions": [{"attribute": "email", "op": "ends_with", "values": ["@acme.com"]}], "value": "red"},
                {"conditions": [{"attribute": "plan", "op": "eq", "values": ["pro"]}], "value": "green"}
            ]),
        );
        let got = evaluate(&f, &ctx(json!({"email": "a@acme.com", "plan": "pro"})));
        assert_eq!(
            got,
            Resolution::Value {
                value: &json!("red"),
                variant: Cow::Borrowed("staff"),
                reason: Reason::TargetingMatch
            }
        );
        let got = evaluate(&f, &ctx(json!({"plan": "pro"})));
        assert_eq!(
            got,
            Resolution::Value {
                value: &json!("green"),
                variant: Cow::Owned("rule-1".into()),
                reason: Reason::TargetingMatch
            }
        );
        let got = evaluate(&f, &ctx(json!({"plan": "free"})));
        assert!(matches!(
            got,
            Resolution::Value {
                reason: Reason::Default,
                ..
            }
        ));
        let mut off = f.clone();
        off.enabled = false;
        assert_eq!(evaluate(&off, &ctx(json!({}))), Resolution::Disabled);
    }

    #[test]
    fn rollout_needs_its_bucketing_attribute() {
        let f = flag(
            json!(false),
            json!([{"rollout": {"variants": [{"value": true, "weight": 1}, {"value": false, "weight": 1}]}}]),
        );
        assert_eq!(
            evaluate(&f, &ctx(json!({}))),
            Resolution::Error(EvalError::TargetingKeyMissing)
        );
        let g = flag(
            json!(false),
            json!([{"rollout": {"bucket_by": "orgId", "variants": [{"value": true, "weight": 1}]}}]),
        );
        assert_eq!(
            evaluate(&g, &ctx(json!({"targetingKey": "u1"}))),
            Resolution::Error(EvalError::InvalidContext("orgId".into()))
        );
        assert!(matches!(
            evaluate(&g, &ctx(json!({"orgId": 42}))),
            Resolution::Value {
                reason: Reason::Split,
                ..
            }
        ));
    }

    /// The bucketing hash is part of the API: these values must never change.
    #[test]
    fn bucket_values_are_pinned() {
        let got: Vec<u64> = ["user-1", "user-2", "ana@acme.com", ""]
            .iter()
            .map(|k| bucket("new-checkout", k))
            .collect();
        let again: Vec<u64> = ["user-1", "user-2", "ana@acme.com", ""]
            .iter()
            .map(|k| bucket("new-checkout", k))
            .collect();
        assert_eq!(got, again);
        // Computed independently: SHA-256("new-checkout\0user-1"), first 8 bytes, mod 100000.
        let digest = Sha256::digest(b"new-checkout\0user-1");
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        assert_eq!(got[0], u64::from_be_bytes(first) % 100_000);
        assert_eq!(got, PINNED_BUCKETS.to_vec());
    }

    /// `bucket("new-checkout", k)` for the keys of [`bucket_values_are_pinned`].
    const PINNED_BUCKETS: [u64; 4] = [18_034, 30_877, 36_081, 4_970];

    #[test]
    fn pick_follows_cumulative_weights() {
        assert_eq!(pick(&[25, 75], 0), 0);
        assert_eq!(pick(&[25, 75], 24_999), 0);
        assert_eq!(pick(&[25, 75], 25_000), 1);
        assert_eq!(pick(&[25, 75], 99_999), 1);
        assert_eq!(pick(&[0, 1], 0), 1);
        assert_eq!(pick(&[1, 0], 99_999), 0);
        assert_eq!(pick(&[1, 1, 1], 33_333), 0);
        assert_eq!(pick(&[1, 1, 1], 33_334), 1);
        assert_eq!(pick(&[1, 1, 1], 99_999), 2);
    }

    /// Bucketing is uniform: over 100,000 keys each of four equal variants gets 25% ± 1%, and a
    /// 10% rollout serves 10% ± 1%.
    #[test]
    fn bucketing_is_uniform_within_one_percent() {
        let n = 100_000u64;
        let mut counts = [0u64; 4];
        let mut ten = 0u64;
        for i in 0..n {
            let key = format!("user-{i}");
            counts[pick(&[1, 1, 1, 1], bucket("flag-a", &key))] += 1;
            if pick(&[10, 90], bucket("flag-b", &key)) == 0 {
                ten += 1;
            }
        }
        for c in counts {
            let share = c as f64 / n as f64;
            assert!((share - 0.25).abs() < 0.01, "share {share}");
        }
        let share = ten as f64 / n as f64;
        assert!((share - 0.10).abs() < 0.01, "share {share}");
    }

    /// Growing the first variant keeps everyone it already served.
    #[test]
    fn growing_a_rollout_keeps_its_users() {
        for i in 0..10_000 {
            let b = bucket("flag-c", &format!("k{i}"));
            if pick(&[10, 90], b) == 0 {
                assert_eq!(pick(&[30, 70], b), 0);
            }
        }
    }

    #[test]
    fn variant_names_default_to_their_index() {
        let f = Flag {
            rules: vec![Rule {
                name: None,
                conditions: vec![],
                value: None,
                rollout: Some(Rollout {
                    bucket_by: None,
                    seed: None,
                    variants: vec![Variant {
                        variant: None,
                        value: json!(1),
                        weight: 1,
                    }],
                }),
            }],
            ..flag(json!(0), json!([]))
        };
        assert_eq!(
            evaluate(&f, &ctx(json!({"targetingKey": "x"}))),
            Resolution::Value {
                value: &json!(1),
                variant: Cow::Owned("split-0".into()),
                reason: Reason::Split
            }
        );
    }

    mod props {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            /// Buckets are in range and deterministic for any seed and key.
            #[test]
            fn bucket_in_range_and_stable(seed in ".{0,40}", key in ".{0,80}") {
                let b = bucket(&seed, &key);
                prop_assert!(b < BUCKETS);
                prop_assert_eq!(b, bucket(&seed, &key));
            }

            /// `pick` returns a valid index that owns the bucket, for any weights.
            #[test]
            fn pick_is_in_range(weights in proptest::collection::vec(0u64..1000, 1..10), b in 0u64..BUCKETS) {
                let i = pick(&weights, b);
                prop_assert!(i < weights.len());
                if weights.iter().sum::<u64>() > 0 {
                    prop_assert!(weights[i] > 0);
                }
            }
        }
    }
}
