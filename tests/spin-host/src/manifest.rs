//! The parts of `spin.toml` (manifest version 2) this host honours: the component behind the
//! `route = "/..."` HTTP trigger, its store/database grants, its `allowed_outbound_hosts`, its
//! `environment`, and application/component variables.

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use wasmtime::error::Context as _;
use wasmtime::{bail, Result};

#[derive(Deserialize)]
struct RawManifest {
    spin_manifest_version: u32,
    #[serde(default)]
    variables: BTreeMap<String, AppVariable>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize, Default)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
}

#[derive(Deserialize)]
struct RawHttpTrigger {
    route: String,
    component: String,
}

#[derive(Deserialize)]
struct RawComponent {
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    sqlite_databases: Vec<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
}

/// An application variable from `[variables]`.
#[derive(Deserialize, Clone)]
struct AppVariable {
    default: Option<String>,
    #[serde(default)]
    required: bool,
}

/// What the host needs to know about the served component.
pub struct ComponentConfig {
    pub key_value_stores: Vec<String>,
    pub sqlite_databases: Vec<String>,
    pub environment: Vec<(String, String)>,
    pub outbound: Vec<OutboundRule>,
    pub variables: Variables,
}

/// Reads the manifest and picks the component served on `/...`.
pub fn load(path: &Path, overrides: HashMap<String, String>) -> Result<ComponentConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path:?}"))?;
    let raw: RawManifest = toml::from_str(&text).with_context(|| format!("parsing {path:?}"))?;
    if raw.spin_manifest_version != 2 {
        bail!("only spin_manifest_version = 2 is supported");
    }
    let Some(trigger) = raw.trigger.http.iter().find(|t| t.route == "/...") else {
        bail!("no [[trigger.http]] with route = \"/...\" in {path:?}");
    };
    let Some(component) = raw.component.get(&trigger.component) else {
        bail!(
            "trigger references unknown component {:?}",
            trigger.component
        );
    };
    for name in overrides.keys() {
        if !raw.variables.contains_key(name) {
            bail!("--var {name}: no such application variable in [variables]");
        }
    }
    let variables = Variables {
        app: raw.variables,
        component: component.variables.clone(),
        overrides,
    };
    variables.validate()?;
    // Spin expands templates in allowed_outbound_hosts too.
    let outbound = component
        .allowed_outbound_hosts
        .iter()
        .map(|h| OutboundRule::parse(&variables.expand(h)?))
        .collect::<Result<_>>()?;
    Ok(ComponentConfig {
        key_value_stores: component.key_value_stores.clone(),
        sqlite_databases: component.sqlite_databases.clone(),
        environment: component.environment.clone().into_iter().collect(),
        outbound,
        variables,
    })
}

/// Why a variable could not be read (mapped onto `fermyon:spin/variables.error`).
pub enum VariableError {
    InvalidName(String),
    Undefined(String),
}

/// Component variables (templates over application variables) and their providers, highest
/// priority first: `--var name=value`, `SPIN_VARIABLE_<NAME>` (Spin's env provider), `default`.
pub struct Variables {
    app: BTreeMap<String, AppVariable>,
    component: BTreeMap<String, String>,
    overrides: HashMap<String, String>,
}

impl Variables {
    /// `variables::get`: the component's variable `name`, its template expanded.
    pub fn get(&self, name: &str) -> std::result::Result<String, VariableError> {
        if !valid_name(name) {
            return Err(VariableError::InvalidName(name.to_string()));
        }
        let template = self.component.get(name).ok_or_else(|| {
            VariableError::Undefined(format!("no variable named {name:?} for this component"))
        })?;
        self.expand(template)
            .map_err(|e| VariableError::Undefined(e.to_string()))
    }

    fn app_value(&self, name: &str) -> Result<String> {
        if let Some(v) = self.overrides.get(name) {
            return Ok(v.clone());
        }
        if let Ok(v) = std::env::var(format!("SPIN_VARIABLE_{}", name.to_uppercase())) {
            return Ok(v);
        }
        match self.app.get(name) {
            Some(AppVariable {
                default: Some(d), ..
            }) => Ok(d.clone()),
            Some(_) => bail!("no provider resolved required variable {name:?}"),
            None => bail!("undeclared application variable {name:?}"),
        }
    }

    /// Expands `{{ name }}` references to application variables.
    fn expand(&self, template: &str) -> Result<String> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let Some(len) = rest[start..].find("}}") else {
                bail!("unterminated '{{{{' in template {template:?}");
            };
            let name = rest[start + 2..start + len].trim();
            if !valid_name(name) {
                bail!("invalid variable reference {name:?} in template {template:?}");
            }
            out.push_str(&self.app_value(name)?);
            rest = &rest[start + len + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Fails like `spin up` does: bad names, undeclared references, unresolved required ones.
    fn validate(&self) -> Result<()> {
        for (name, var) in &self.app {
            if !valid_name(name) {
                bail!("invalid application variable name {name:?}");
            }
            if var.required && var.default.is_some() {
                bail!("variable {name:?}: `required` and `default` are mutually exclusive");
            }
        }
        for (name, template) in &self.component {
            if !valid_name(name) {
                bail!("invalid component variable name {name:?}");
            }
            self.expand(template)
                .with_context(|| format!("component variable {name:?}"))?;
        }
        Ok(())
    }
}

/// Spin variable names: lowercase ASCII letters, digits and `_`, starting with a letter.
fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// One `allowed_outbound_hosts` entry: `scheme://host[:port]` where scheme may be `*`, host may
/// be `*` or `*.suffix`, and port may be `*`, `N` or `A..B` (default: the scheme's port).
#[derive(Debug, Clone)]
pub struct OutboundRule {
    scheme: String,
    host: String,
    ports: (u16, u16),
}

impl OutboundRule {
    fn parse(rule: &str) -> Result<Self> {
        let Some((scheme, rest)) = rule.split_once("://") else {
            bail!("allowed_outbound_hosts entry {rule:?} has no scheme (e.g. https://)");
        };
        if rest.contains('/') && !rest.ends_with('/') {
            bail!("allowed_outbound_hosts entry {rule:?} must not contain a path");
        }
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (h, Some(p)),
            _ => (rest, None),
        };
        let ports = match port {
            Some("*") => (0, u16::MAX),
            Some(p) => match p.split_once("..") {
                Some((a, b)) => (a.parse()?, b.parse::<u16>()?.saturating_sub(1)),
                None => (p.parse()?, p.parse()?),
            },
            None => match scheme {
                "http" => (80, 80),
                "https" => (443, 443),
                _ => bail!("allowed_outbound_hosts entry {rule:?} needs a port"),
            },
        };
        Ok(Self {
            scheme: scheme.to_ascii_lowercase(),
            host: host.to_ascii_lowercase(),
            ports,
        })
    }

    /// Whether a request to `scheme://host:port` matches this rule.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        let host_ok = match self.host.strip_prefix("*.") {
            _ if self.host == "*" => true,
            Some(suffix) => host.ends_with(&format!(".{suffix}")),
            None => host == self.host,
        };
        (self.scheme == "*" || self.scheme.eq_ignore_ascii_case(scheme))
            && host_ok
            && (self.ports.0..=self.ports.1).contains(&port)
    }
}
