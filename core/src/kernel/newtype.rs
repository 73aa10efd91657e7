//! Newtypes parsed at the edge: the refusal every `parse` returns, and the macro that declares a
//! string newtype. Once parsed, a value is valid everywhere.

/// Why a raw value was refused by a newtype's `parse`. `what` names the kind of value (the HTTP
/// layer names the field), `reason` is safe to show to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    /// The kind of value (`tenant id`, `tenant name`, `domain`, `plan`, `email`, ...).
    pub what: &'static str,
    /// Why it was refused.
    pub reason: &'static str,
}

impl ParseError {
    /// Stable code for every parse refusal.
    pub fn code(&self) -> &'static str {
        "invalid_input"
    }
}

/// Shorthand for a refusal.
pub(crate) fn refuse<T>(what: &'static str, reason: &'static str) -> Result<T, ParseError> {
    Err(ParseError { what, reason })
}

/// Declares a string newtype with `as_str`, `Display`, serde as a plain (re-validated) string.
macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug,
            Clone,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            serde::Serialize,
            serde::Deserialize,
        )]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::kernel::ParseError;
            fn try_from(raw: String) -> Result<Self, $crate::kernel::ParseError> {
                $name::parse(&raw)
            }
        }
    };
}

pub(crate) use string_newtype;
