//! Flag definitions as operators write them and as the edge evaluates them: keys, types, values,
//! targeting rules and rollouts, each parsed once at the edge of the system (FR-FLAG-001).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayBuilder, Object, ObjectBuilder, OneOfBuilder,
    SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::kernel::schema::{keyword, printable_pattern, requires, string_enum};
use crate::kernel::{refuse, string_newtype, ParseError};

/// Longest flag key.
pub const MAX_KEY_LEN: usize = 128;
/// Most rules on one flag.
pub const MAX_RULES: usize = 50;
/// Most conditions in one rule.
pub const MAX_CONDITIONS: usize = 20;
/// Most values one condition compares against.
pub const MAX_CONDITION_VALUES: usize = 500;
/// Most variants in one rollout.
pub const MAX_VARIANTS: usize = 20;
/// Longest name of a rule or a variant, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest attribute name (a condition's, a rollout's `bucket_by`) or seed, in characters.
pub const MAX_ATTRIBUTE_CHARS: usize = 128;
/// Longest description.
pub const MAX_DESCRIPTION_LEN: usize = 1000;
/// Largest serialized value (a `json` flag's object included).
pub const MAX_VALUE_BYTES: usize = 8 * 1024;
/// Largest serialized definition (value and rules): with [`MAX_FLAGS_PER_TENANT`] it bounds a
/// tenant's snapshot to 16 MiB, under Workers KV's 25 MiB value limit.
pub const MAX_DEFINITION_BYTES: usize = 16 * 1024;
/// Most flags one tenant may have.
pub const MAX_FLAGS_PER_TENANT: i64 = 1_000;

string_newtype!(
    /// A flag key: 1 to 128 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit. Keys are
    /// case-sensitive, as OpenFeature flag keys are.
    FlagKey
);

impl FlagKey {
    /// Parses a key.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if raw.is_empty() || raw.len() > MAX_KEY_LEN {
            return refuse("flag key", "must be 1 to 128 characters");
        }
        if !raw.starts_with(|c: char| c.is_ascii_alphanumeric()) || !raw.chars().all(ok_char) {
            return refuse(
                "flag key",
                "must start with a letter or digit and hold only letters, digits, '.', '_' and '-'",
            );
        }
        Ok(FlagKey(raw.to_owned()))
    }
}

/// The type of a flag's values (the column `feature_flags.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FlagType {
    /// `true` or `false` (the spec's flags are boolean).
    Boolean,
    /// Any JSON string.
    String,
    /// Any JSON number.
    Number,
    /// Any JSON value.
    Json,
}

impl FlagType {
    /// Every type.
    pub const ALL: [FlagType; 4] = [
        FlagType::Boolean,
        FlagType::String,
        FlagType::Number,
        FlagType::Json,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            FlagType::Boolean => "boolean",
            FlagType::String => "string",
            FlagType::Number => "number",
            FlagType::Json => "json",
        }
    }

    /// Parses [`FlagType::as_str`].
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        match raw {
            "boolean" => Ok(FlagType::Boolean),
            "string" => Ok(FlagType::String),
            "number" => Ok(FlagType::Number),
            "json" => Ok(FlagType::Json),
            _ => refuse("flag type", "must be boolean, string, number or json"),
        }
    }

    /// Whether `v` is a value of this type.
    pub fn admits(self, v: &Value) -> bool {
        match self {
            FlagType::Boolean => v.is_boolean(),
            FlagType::String => v.is_string(),
            FlagType::Number => v.is_number(),
            FlagType::Json => true,
        }
    }

    /// The schema of the values [`FlagType::admits`].
    pub fn value_schema(self) -> Object {
        match self {
            FlagType::Boolean => Object::with_type(Type::Boolean),
            FlagType::String => Object::with_type(Type::String),
            FlagType::Number => Object::with_type(Type::Number),
            FlagType::Json => Object::with_type(SchemaType::AnyValue),
        }
    }
}

impl fmt::Display for FlagType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a condition compares a context attribute with its values. A condition holds when the
/// comparison holds for ANY of its values (`not_in` and `neq`: for none of them). A missing
/// attribute never satisfies a condition, negated or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Equal text forms (`"3"` equals `3`; `true` equals `"true"`).
    Eq,
    /// Not equal to any value.
    Neq,
    /// Same as `eq`, read as membership of the list.
    In,
    /// Not a member of the list.
    NotIn,
    /// The text form starts with a value.
    StartsWith,
    /// The text form ends with a value.
    EndsWith,
    /// The text form contains a value.
    Contains,
    /// Numerically less than (numbers, or text that parses as one).
    Lt,
    /// Numerically less than or equal.
    Lte,
    /// Numerically greater than.
    Gt,
    /// Numerically greater than or equal.
    Gte,
    /// Semantic-version equal (SemVer 2.0 precedence; build metadata ignored).
    SemverEq,
    /// Semantic-version lower.
    SemverLt,
    /// Semantic-version lower or equal.
    SemverLte,
    /// Semantic-version greater.
    SemverGt,
    /// Semantic-version greater or equal.
    SemverGte,
}

impl Op {
    /// Every operator.
    pub const ALL: [Op; 16] = [
        Op::Eq,
        Op::Neq,
        Op::In,
        Op::NotIn,
        Op::StartsWith,
        Op::EndsWith,
        Op::Contains,
        Op::Lt,
        Op::Lte,
        Op::Gt,
        Op::Gte,
        Op::SemverEq,
        Op::SemverLt,
        Op::SemverLte,
        Op::SemverGt,
        Op::SemverGte,
    ];

    /// The name a condition spells it with.
    fn name(self) -> String {
        match serde_json::to_value(self) {
            Ok(Value::String(name)) => name,
            _ => String::new(),
        }
    }

    /// True for the comparisons that hold when no value matches.
    pub fn is_negated(self) -> bool {
        matches!(self, Op::Neq | Op::NotIn)
    }

    fn is_numeric(self) -> bool {
        matches!(self, Op::Lt | Op::Lte | Op::Gt | Op::Gte)
    }

    fn is_semver(self) -> bool {
        matches!(
            self,
            Op::SemverEq | Op::SemverLt | Op::SemverLte | Op::SemverGt | Op::SemverGte
        )
    }
}

/// One test on the evaluation context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// A top-level attribute of the context (`targetingKey` included), e.g. `email`, `plan`.
    pub attribute: String,
    /// The comparison.
    pub op: Op,
    /// What the attribute is compared with: scalars (strings, numbers, booleans).
    pub values: Vec<Value>,
}

/// The shape of a condition whose operator is one of those `group` selects, comparing with
/// `values`.
fn condition_schema(group: fn(Op) -> bool, values: impl Into<RefOr<Schema>>) -> Object {
    let ops: Vec<String> = Op::ALL
        .into_iter()
        .filter(|op| group(*op))
        .map(Op::name)
        .collect();
    let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .property(
            "attribute",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(printable_pattern(MAX_ATTRIBUTE_CHARS)))
                .description(Some(
                    "A top-level attribute of the context (`targetingKey` included).",
                )),
        )
        .required("attribute")
        .property("op", string_enum(&ops))
        .required("op")
        .property(
            "values",
            ArrayBuilder::new()
                .items(values.into())
                .min_items(Some(1))
                .max_items(Some(MAX_CONDITION_VALUES)),
        )
        .required("values")
        .build()
}

/// A condition is checked per operator group ([`FlagDefinition::new`]): text comparisons take
/// any scalars, numeric ones numbers or text that reads as one ([`as_number`]), semver ones
/// semantic versions ([`Semver::parse`]).
impl PartialSchema for Condition {
    fn schema() -> RefOr<Schema> {
        let text = OneOfBuilder::new()
            .item(Object::with_type(Type::String))
            .item(Object::with_type(Type::Number))
            .item(Object::with_type(Type::Boolean));
        let numeric = OneOfBuilder::new()
            .item(Object::with_type(Type::Number))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(number_text_pattern())),
            );
        let semver = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(semver_pattern()));
        OneOfBuilder::new()
            .description(Some(
                "A test on one context attribute. Numeric operators compare numbers (or text \
                 that reads as one); semver operators compare semantic versions.",
            ))
            .item(condition_schema(
                |op| !op.is_numeric() && !op.is_semver(),
                text,
            ))
            .item(condition_schema(Op::is_numeric, numeric))
            .item(condition_schema(Op::is_semver, semver))
            .into()
    }
}

impl ToSchema for Condition {
    fn name() -> std::borrow::Cow<'static, str> {
        "FlagCondition".into()
    }
}

/// One weighted outcome of a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Its name, reported as the OFREP `variant` (default `split-{index}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The value served.
    pub value: Value,
    /// Its share: the variant serves `weight / sum of weights` of the buckets. A JSON number
    /// with an integral value (`5` or `5.0`, as JSON Schema's `integer` allows).
    #[serde(deserialize_with = "integral_u32")]
    pub weight: u32,
}

/// A member that is there, whatever its value (`null` included).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A `u32` written as any JSON number with an integral value in range.
fn integral_u32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    n.as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX))
                .map(|f| f as u32)
        })
        .ok_or_else(|| serde::de::Error::custom("must be an integer from 0 to 4294967295"))
}

/// A percentage rollout: the context is placed in a bucket by hashing an attribute (by default
/// the targeting key) with a seed (by default the flag key); see [`crate::flags::bucket`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// The attribute hashed into a bucket (default `targetingKey`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_by: Option<String>,
    /// The hash seed (default: the flag key). Two flags with one seed bucket a key alike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    /// The outcomes, in order.
    pub variants: Vec<Variant>,
}

/// A targeting rule: when every condition holds (an empty list always holds), serve `value`
/// or split by `rollout`. Rules are tried in order; the first that matches decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Its name, reported as the OFREP `variant` of a `value` rule (default `rule-{index}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// All must hold.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The value served on a match (exactly one of `value` and `rollout`). Present means
    /// present: `"value": null` is the value null (a `json` flag may serve it), not an absence.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub value: Option<Value>,
    /// The split served on a match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
}

/// A string of 1 to `max` printable characters, or null.
fn nullable_printable(max: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some(printable_pattern(max)))
}

impl Rule {
    /// The schema of a rule. `None`: a rule as stored and returned (`FlagRule`), its values of
    /// any type. `Some(t)`: a rule as a write of a flag of type `t` must be
    /// ([`Rule::schema_name`]): its values of type `t`, and its rollout's weights within `u32`
    /// with one of them above zero (as [`FlagDefinition::new`] checks).
    pub fn schema_of(values: Option<FlagType>) -> Object {
        let value = values.map_or_else(
            || Object::with_type(SchemaType::AnyValue),
            FlagType::value_schema,
        );
        let typed = values.is_some();
        let mut description = String::from(
            "When every condition holds (none: always), serve `value` or split by `rollout`. \
             Rules are tried in order.",
        );
        if typed {
            description.push_str(
                " Exactly one of `value` and `rollout` (a null `rollout` is absent; a null \
                 `value` is the value null); values of the flag's type.",
            );
        }
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(description))
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .property("name", nullable_printable(MAX_NAME_CHARS))
            .property(
                "conditions",
                ArrayBuilder::new()
                    .items(Ref::from_schema_name(Condition::name()))
                    .max_items(Some(MAX_CONDITIONS)),
            )
            .property("value", value.clone())
            .property(
                "rollout",
                AnyOfBuilder::new()
                    .item(Self::rollout_schema(value, typed))
                    .item(Object::with_type(Type::Null)),
            )
            .extensions(Self::value_or_rollout())
            .build()
    }

    /// A rollout: variants with weights, hashed by an attribute. `typed`: the values are of
    /// the flag's type, weights fit a `u32` and one must be above zero.
    fn rollout_schema(value: Object, typed: bool) -> ObjectBuilder {
        let mut weight = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0));
        if typed {
            weight = weight.maximum(Some(u32::MAX));
        }
        let variant = ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .property("variant", nullable_printable(MAX_NAME_CHARS))
            .property("value", value)
            .required("value")
            .property("weight", weight)
            .required("weight");
        let mut variants = ArrayBuilder::new()
            .items(variant)
            .min_items(Some(1))
            .max_items(Some(MAX_VARIANTS));
        if typed {
            let positive = ObjectBuilder::new()
                .schema_type(Type::Object)
                .property(
                    "weight",
                    ObjectBuilder::new()
                        .schema_type(SchemaType::AnyValue)
                        .minimum(Some(1)),
                )
                .required("weight")
                .build();
            variants = variants
                .description(Some("At least one weight above zero."))
                .extensions(keyword("contains", positive));
        }
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .property(
                "bucket_by",
                nullable_printable(MAX_ATTRIBUTE_CHARS).description(Some(
                    "Attribute hashed into a bucket (default targetingKey).",
                )),
            )
            .property(
                "seed",
                nullable_printable(MAX_ATTRIBUTE_CHARS)
                    .description(Some("Hash seed (default: the flag key).")),
            )
            .property("variants", variants)
            .required("variants")
    }

    /// Exactly one of `value` and `rollout`: a null `rollout` is an absent one, a null `value`
    /// is the value null.
    fn value_or_rollout() -> Option<utoipa::openapi::extensions::Extensions> {
        let by_value = requires(&["value"]).extensions(keyword(
            "anyOf",
            [
                requires(&[])
                    .extensions(keyword("not", requires(&["rollout"]).build()))
                    .build(),
                requires(&["rollout"])
                    .property("rollout", Object::with_type(Type::Null))
                    .build(),
            ],
        ));
        let by_rollout = requires(&["rollout"])
            .property("rollout", Object::with_type(Type::Object))
            .extensions(keyword("not", requires(&["value"]).build()));
        keyword("oneOf", [by_value.build(), by_rollout.build()])
    }

    /// The component name of the rules of a flag of type `t` (`FlagRule_boolean`, ...).
    pub fn schema_name(t: FlagType) -> String {
        format!("{}_{t}", Rule::name())
    }
}

impl PartialSchema for Rule {
    fn schema() -> RefOr<Schema> {
        Rule::schema_of(None).into()
    }
}

impl ToSchema for Rule {
    fn name() -> std::borrow::Cow<'static, str> {
        "FlagRule".into()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((Condition::name().into_owned(), Condition::schema()));
    }
}

/// A flag of a tenant as the edge evaluates it (the snapshot's entries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Flag {
    /// Its key.
    #[schema(value_type = String)]
    pub key: FlagKey,
    /// Its type.
    #[serde(rename = "type")]
    #[schema(inline)]
    pub flag_type: FlagType,
    /// The value served when enabled and no rule matches.
    pub value: Value,
    /// A disabled flag serves nothing (OFREP reason `DISABLED`: the caller's default applies).
    pub enabled: bool,
    /// Targeting rules, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    /// The flag's own version (bumped by every change).
    pub version: i64,
}

/// What was wrong with a flag definition: the field (a JSON path like `rules[1].conditions[0].op`)
/// and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidFlag {
    /// Where.
    pub field: String,
    /// Why.
    pub reason: String,
    /// Well-formed, but over a size limit no schema states (refused as a business rule, 422,
    /// rather than as malformed input).
    pub over_limit: bool,
}

impl InvalidFlag {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        InvalidFlag {
            field: field.into(),
            reason: reason.into(),
            over_limit: false,
        }
    }

    /// Stable code.
    pub fn code(&self) -> &'static str {
        "invalid_flag"
    }
}

/// A flag definition as an operator writes it (`PUT /v1/tenants/{id}/flags/{key}`), checked.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagDefinition {
    /// Its type.
    pub flag_type: FlagType,
    /// Its default value.
    pub value: Value,
    /// Whether it serves.
    pub enabled: bool,
    /// Free text for operators.
    pub description: Option<String>,
    /// Targeting rules.
    pub rules: Vec<Rule>,
}

impl FlagDefinition {
    /// Checks a definition: the value and every served value are of `flag_type`, the rules are
    /// well formed (one of `value`/`rollout`, conditions with scalar values that suit their
    /// operator, rollouts with a positive total weight) and within the size limits.
    pub fn new(
        flag_type: FlagType,
        value: Value,
        enabled: bool,
        description: Option<String>,
        rules: Vec<Rule>,
    ) -> Result<Self, InvalidFlag> {
        check_value("value", flag_type, &value)?;
        if let Some(d) = &description {
            if d.chars().count() > MAX_DESCRIPTION_LEN {
                return Err(InvalidFlag::new(
                    "description",
                    "must be at most 1000 characters",
                ));
            }
        }
        if rules.len() > MAX_RULES {
            return Err(InvalidFlag::new("rules", "at most 50 rules"));
        }
        for (i, rule) in rules.iter().enumerate() {
            check_rule(&format!("rules[{i}]"), flag_type, rule)?;
        }
        let size =
            value.to_string().len() + serde_json::to_string(&rules).map_or(usize::MAX, |r| r.len());
        if size > MAX_DEFINITION_BYTES {
            return Err(InvalidFlag {
                over_limit: true,
                ..InvalidFlag::new(
                    "rules",
                    "the value and rules together must be at most 16 KiB of JSON",
                )
            });
        }
        Ok(FlagDefinition {
            flag_type,
            value,
            enabled,
            description,
            rules,
        })
    }
}

fn check_value(field: &str, t: FlagType, v: &Value) -> Result<(), InvalidFlag> {
    if !t.admits(v) {
        return Err(InvalidFlag::new(field, format!("must be a {t} value")));
    }
    if v.to_string().len() > MAX_VALUE_BYTES {
        return Err(InvalidFlag::new(field, "must be at most 8 KiB of JSON"));
    }
    Ok(())
}

fn check_name(field: &str, name: Option<&String>) -> Result<(), InvalidFlag> {
    match name {
        Some(n)
            if n.is_empty()
                || n.chars().count() > MAX_NAME_CHARS
                || n.chars().any(char::is_control) =>
        {
            Err(InvalidFlag::new(
                field,
                "must be 1 to 64 printable characters",
            ))
        }
        _ => Ok(()),
    }
}

fn check_rule(at: &str, t: FlagType, rule: &Rule) -> Result<(), InvalidFlag> {
    check_name(&format!("{at}.name"), rule.name.as_ref())?;
    if rule.conditions.len() > MAX_CONDITIONS {
        return Err(InvalidFlag::new(
            format!("{at}.conditions"),
            "at most 20 conditions",
        ));
    }
    for (j, c) in rule.conditions.iter().enumerate() {
        check_condition(&format!("{at}.conditions[{j}]"), c)?;
    }
    match (&rule.value, &rule.rollout) {
        (Some(v), None) => check_value(&format!("{at}.value"), t, v),
        (None, Some(r)) => check_rollout(&format!("{at}.rollout"), t, r),
        _ => Err(InvalidFlag::new(
            at.to_owned(),
            "needs exactly one of value and rollout",
        )),
    }
}

fn check_attribute(field: &str, a: &str) -> Result<(), InvalidFlag> {
    if a.is_empty() || a.chars().count() > MAX_ATTRIBUTE_CHARS || a.chars().any(char::is_control) {
        return Err(InvalidFlag::new(
            field,
            "must be 1 to 128 printable characters",
        ));
    }
    Ok(())
}

fn check_condition(at: &str, c: &Condition) -> Result<(), InvalidFlag> {
    check_attribute(&format!("{at}.attribute"), &c.attribute)?;
    if c.values.is_empty() || c.values.len() > MAX_CONDITION_VALUES {
        return Err(InvalidFlag::new(
            format!("{at}.values"),
            "must hold 1 to 500 values",
        ));
    }
    for (k, v) in c.values.iter().enumerate() {
        let field = format!("{at}.values[{k}]");
        let Some(text) = scalar_text(v) else {
            return Err(InvalidFlag::new(
                field,
                "must be a string, number or boolean",
            ));
        };
        if c.op.is_numeric() && as_number(v).is_none() {
            return Err(InvalidFlag::new(
                field,
                "must be a number for this operator",
            ));
        }
        if c.op.is_semver() && Semver::parse(&text).is_none() {
            return Err(InvalidFlag::new(
                field,
                "must be a semantic version (1.2.3) for this operator",
            ));
        }
    }
    Ok(())
}

fn check_rollout(at: &str, t: FlagType, r: &Rollout) -> Result<(), InvalidFlag> {
    if let Some(b) = &r.bucket_by {
        check_attribute(&format!("{at}.bucket_by"), b)?;
    }
    if let Some(s) = &r.seed {
        check_attribute(&format!("{at}.seed"), s)?;
    }
    if r.variants.is_empty() || r.variants.len() > MAX_VARIANTS {
        return Err(InvalidFlag::new(
            format!("{at}.variants"),
            "must hold 1 to 20 variants",
        ));
    }
    let mut total: u64 = 0;
    for (k, v) in r.variants.iter().enumerate() {
        check_name(&format!("{at}.variants[{k}].variant"), v.variant.as_ref())?;
        check_value(&format!("{at}.variants[{k}].value"), t, &v.value)?;
        total += u64::from(v.weight);
    }
    if total == 0 {
        return Err(InvalidFlag::new(
            format!("{at}.variants"),
            "the weights must not all be zero",
        ));
    }
    Ok(())
}

/// The text form of a scalar, used by every text comparison: strings as they are, numbers as
/// JSON writes them, booleans as `true`/`false`. `None` for arrays, objects and null.
pub fn scalar_text(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::String(s) => Some(std::borrow::Cow::Borrowed(s)),
        Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(std::borrow::Cow::Borrowed(if *b {
            "true"
        } else {
            "false"
        })),
        _ => None,
    }
}

/// A number, or text that parses as a finite one.
pub fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

/// The white space `str::trim` removes, as the inside of a regular expression class.
const TRIMMED: &str = r"\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// The text [`as_number`] reads as a number, as a JSON Schema pattern: a decimal with an
/// optional exponent, blanks around it. It bounds the digits (200 each side of the point, 2 in
/// the exponent), so a few texts the server reads (`1e100`, 201 digits) fall outside it.
pub fn number_text_pattern() -> String {
    format!(
        r"^[{TRIMMED}]*[+-]?(?:[0-9]{{1,200}}(?:\.[0-9]{{0,200}})?|\.[0-9]{{1,200}})(?:[eE][+-]?[0-9]{{1,2}})?[{TRIMMED}]*$"
    )
}

/// The text [`Semver::parse`] accepts, as a JSON Schema pattern. It bounds numeric identifiers
/// to 19 digits (the server: anything that fits `u64`) and refuses blanks inside build metadata
/// (the server ignores build metadata whatever it holds).
pub fn semver_pattern() -> String {
    let num = "(?:0|[1-9][0-9]{0,18})";
    let pre = "(?:0|[1-9][0-9]{0,18}|[0-9]*[A-Za-z-][0-9A-Za-z-]*)";
    format!(
        r"^[{TRIMMED}]*v?{num}\.{num}\.{num}(?:-{pre}(?:\.{pre})*)?(?:\+[^{TRIMMED}]*)?[{TRIMMED}]*$"
    )
}

/// A semantic version (SemVer 2.0.0), compared by precedence: build metadata is ignored, a
/// pre-release is lower than its release, pre-release identifiers compare numerically when both
/// are numeric, numeric ones are lower than alphanumeric ones, and a longer list wins a tie.
/// A leading `v` is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Semver {
    core: [u64; 3],
    pre: Vec<PreId>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum PreId {
    // Declared first: numeric identifiers sort before alphanumeric ones.
    Num(u64),
    Alpha(String),
}

impl Semver {
    /// Parses `MAJOR.MINOR.PATCH[-PRE][+BUILD]`; `None` if it is not one.
    pub fn parse(raw: &str) -> Option<Self> {
        let s = raw.trim();
        let s = s.strip_prefix('v').unwrap_or(s);
        let s = s.split_once('+').map_or(s, |(v, _build)| v);
        let (core, pre) = match s.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (s, None),
        };
        let mut parts = core.split('.');
        let mut nums = [0u64; 3];
        for n in &mut nums {
            *n = numeric_id(parts.next()?)?;
        }
        if parts.next().is_some() {
            return None;
        }
        let pre = match pre {
            None => Vec::new(),
            Some(p) => p
                .split('.')
                .map(|id| {
                    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                        None
                    } else if id.chars().all(|c| c.is_ascii_digit()) {
                        numeric_id(id).map(PreId::Num)
                    } else {
                        Some(PreId::Alpha(id.to_owned()))
                    }
                })
                .collect::<Option<Vec<_>>>()?,
        };
        Some(Semver { core: nums, pre })
    }
}

/// A numeric identifier: digits, no leading zero (except `0` itself).
fn numeric_id(s: &str) -> Option<u64> {
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

impl PartialOrd for Semver {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Semver {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        self.core
            .cmp(&other.core)
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => self.pre.cmp(&other.pre),
            })
    }
}
