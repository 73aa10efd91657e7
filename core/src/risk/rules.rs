//! The rules that turn a sign-in's signals into a risk level (NFR-SEC-006): each signal that
//! fires adds its weight to a score, and the score's thresholds give the level. Pure: the
//! signals are gathered by [`super::decide`], the weights come from the tenant's policy.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The level of risk of one sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RiskLevel {
    /// Nothing or little unusual.
    Low,
    /// Unusual: a new device in a new country, say.
    Medium,
    /// Very unusual: impossible travel with a new device, say.
    High,
}

impl RiskLevel {
    /// The stored and reported name.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
        }
    }
}

/// The weights of the signals and the thresholds of the levels (part of the tenant's policy).
/// A weight of 0 turns its signal off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RiskRules {
    /// A device the user never completed a sign-in from, or none named (0 to 10).
    #[schema(maximum = 10, default = 1)]
    pub new_device: u32,
    /// A country the user never completed a sign-in from (0 to 10).
    #[schema(maximum = 10, default = 2)]
    pub new_country: u32,
    /// From the previous sign-in's country faster than `max_speed_kmh` (0 to 10).
    #[schema(maximum = 10, default = 4)]
    pub impossible_travel: u32,
    /// An hour of the day (UTC) at which the user does not sign in, learned from at least
    /// five earlier sign-ins (0 to 10).
    #[schema(maximum = 10, default = 1)]
    pub unusual_hour: u32,
    /// Recent failures: at least `account_failures_at` failed attempts on the account, or
    /// `client_failures_at` from the client address, in the rate limiter's window; counted
    /// once when both fire (0 to 10).
    #[schema(maximum = 10, default = 1)]
    pub recent_failures: u32,
    /// Failures on the account that count as a signal (1 to 100).
    #[schema(minimum = 1, maximum = 100, default = 3)]
    pub account_failures_at: u32,
    /// Failures from the client address that count as a signal (1 to 1000).
    #[schema(minimum = 1, maximum = 1000, default = 10)]
    pub client_failures_at: u32,
    /// Speed above which travel is impossible, km/h (100 to 5000).
    #[schema(minimum = 100, maximum = 5000, default = 1000)]
    pub max_speed_kmh: u32,
    /// Distance under which travel never counts, km, for the coarse country points
    /// (0 to 5000).
    #[schema(maximum = 5000, default = 500)]
    pub min_travel_km: u32,
    /// Score from which a sign-in is medium risk (1 to 100).
    #[schema(minimum = 1, maximum = 100, default = 3)]
    pub medium_at: u32,
    /// Score from which a sign-in is high risk (at least `medium_at`, at most 100).
    #[schema(minimum = 1, maximum = 100, default = 6)]
    pub high_at: u32,
}

impl Default for RiskRules {
    fn default() -> Self {
        RiskRules {
            new_device: 1,
            new_country: 2,
            impossible_travel: 4,
            unusual_hour: 1,
            recent_failures: 1,
            account_failures_at: 3,
            client_failures_at: 10,
            max_speed_kmh: 1000,
            min_travel_km: 500,
            medium_at: 3,
            high_at: 6,
        }
    }
}

impl RiskRules {
    /// The level a score falls in.
    pub fn level(&self, score: u32) -> RiskLevel {
        if score >= self.high_at {
            RiskLevel::High
        } else if score >= self.medium_at {
            RiskLevel::Medium
        } else {
            RiskLevel::Low
        }
    }

    /// The first field out of range, with what it must be.
    pub fn invalid_field(&self) -> Option<(&'static str, &'static str)> {
        let weights = [
            ("rules.new_device", self.new_device),
            ("rules.new_country", self.new_country),
            ("rules.impossible_travel", self.impossible_travel),
            ("rules.unusual_hour", self.unusual_hour),
            ("rules.recent_failures", self.recent_failures),
        ];
        if let Some((name, _)) = weights.iter().find(|(_, w)| *w > 10) {
            return Some((name, "must be between 0 and 10"));
        }
        let ranges: [(&'static str, u32, u32, u32, &'static str); 6] = [
            (
                "rules.account_failures_at",
                self.account_failures_at,
                1,
                100,
                "must be between 1 and 100",
            ),
            (
                "rules.client_failures_at",
                self.client_failures_at,
                1,
                1000,
                "must be between 1 and 1000",
            ),
            (
                "rules.max_speed_kmh",
                self.max_speed_kmh,
                100,
                5000,
                "must be between 100 and 5000",
            ),
            (
                "rules.min_travel_km",
                self.min_travel_km,
                0,
                5000,
                "must be between 0 and 5000",
            ),
            (
                "rules.medium_at",
                self.medium_at,
                1,
                100,
                "must be between 1 and 100",
            ),
            (
                "rules.high_at",
                self.high_at,
                self.medium_at,
                100,
                "must be between medium_at and 100",
            ),
        ];
        ranges
            .iter()
            .find(|(_, v, lo, hi, _)| v < lo || v > hi)
            .map(|(name, _, _, _, msg)| (*name, *msg))
    }
}

/// One earlier completed sign-in of the user: what the rules compare with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastSignIn {
    /// When (unix ms).
    pub at_ms: i64,
    /// Its device hash, if one was named.
    pub device_hash: Option<String>,
    /// Its country, if known.
    pub country: Option<String>,
}

/// What is known of a sign-in and of the user's history, gathered before the rules run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    /// Now (unix ms).
    pub now_ms: i64,
    /// The device hash of this sign-in, if a device was named.
    pub device_hash: Option<String>,
    /// Whether that device is one of the user's known devices.
    pub device_known: bool,
    /// The country of this sign-in, if the runtime vouches for one.
    pub country: Option<String>,
    /// The user's completed sign-ins, newest first (a bounded recent window).
    pub history: Vec<PastSignIn>,
    /// Failed attempts on the account in the rate limiter's window.
    pub account_failures: i64,
    /// Failed attempts from the client address in the rate limiter's window.
    pub client_failures: i64,
}

/// A signal that fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// A device the user never completed a sign-in from (or none named).
    NewDevice,
    /// A country the user never completed a sign-in from.
    NewCountry,
    /// Faster than possible from the previous sign-in's country.
    ImpossibleTravel,
    /// An hour at which the user does not sign in.
    UnusualHour,
    /// Recent failures on the account.
    AccountFailures,
    /// Recent failures from the client address.
    ClientFailures,
}

impl Signal {
    /// The stored and reported name.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::NewDevice => "new_device",
            Signal::NewCountry => "new_country",
            Signal::ImpossibleTravel => "impossible_travel",
            Signal::UnusualHour => "unusual_hour",
            Signal::AccountFailures => "account_failures",
            Signal::ClientFailures => "client_failures",
        }
    }
}

/// The rules' verdict on one sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// The signals that fired (with a non-zero weight).
    pub signals: Vec<Signal>,
    /// Their weighted sum.
    pub score: u32,
    /// The level the score falls in.
    pub level: RiskLevel,
}

/// Earlier sign-ins needed before the hour of day means anything.
pub const MIN_HISTORY_FOR_HOURS: usize = 5;

const HOUR_MS: i64 = 3_600_000;

/// Runs the rules on what was observed. A user without any completed sign-in has no baseline:
/// the device, country, travel and hour rules need one and do not fire (the first sign-in
/// after an invitation is not a risk in itself); failures still count.
pub fn assess(rules: &RiskRules, o: &Observed) -> Assessment {
    let has_baseline = !o.history.is_empty();
    let fired = [
        (
            Signal::NewDevice,
            rules.new_device,
            has_baseline && !o.device_known,
        ),
        (
            Signal::NewCountry,
            rules.new_country,
            has_baseline && is_new_country(o),
        ),
        (
            Signal::ImpossibleTravel,
            rules.impossible_travel,
            is_impossible_travel(rules, o),
        ),
        (Signal::UnusualHour, rules.unusual_hour, is_unusual_hour(o)),
    ];
    let mut signals = Vec::new();
    let mut score = 0u32;
    for (signal, weight, on) in fired {
        if on && weight > 0 {
            signals.push(signal);
            score = score.saturating_add(weight);
        }
    }
    // The failures on the account and from the address are one signal's worth together.
    let failures = [
        (
            Signal::AccountFailures,
            o.account_failures >= i64::from(rules.account_failures_at),
        ),
        (
            Signal::ClientFailures,
            o.client_failures >= i64::from(rules.client_failures_at),
        ),
    ];
    if rules.recent_failures > 0 && failures.iter().any(|(_, on)| *on) {
        signals.extend(failures.iter().filter(|(_, on)| *on).map(|(s, _)| *s));
        score = score.saturating_add(rules.recent_failures);
    }
    let level = rules.level(score);
    Assessment {
        signals,
        score,
        level,
    }
}

/// A known country none of the user's sign-ins came from. An unknown country is not new:
/// nothing vouches for where the request came from.
fn is_new_country(o: &Observed) -> bool {
    let Some(country) = &o.country else {
        return false;
    };
    !o.history
        .iter()
        .any(|s| s.country.as_deref() == Some(country.as_str()))
}

/// The previous sign-in with a country was in another country too far away to have come from
/// in the time since.
fn is_impossible_travel(rules: &RiskRules, o: &Observed) -> bool {
    let Some(country) = &o.country else {
        return false;
    };
    let Some((prev_at, prev_country)) = o
        .history
        .iter()
        .find_map(|s| s.country.as_ref().map(|c| (s.at_ms, c)))
    else {
        return false;
    };
    if prev_country == country {
        return false;
    }
    let Some(km) = super::geo::distance_km(prev_country, country) else {
        return false;
    };
    if km < f64::from(rules.min_travel_km) {
        return false;
    }
    // At least a minute: two sign-ins in the same instant are as impossible as one a minute on.
    let hours = ((o.now_ms - prev_at).max(60_000) as f64) / HOUR_MS as f64;
    km / hours > f64::from(rules.max_speed_kmh)
}

/// With enough history, no earlier sign-in within an hour of this one's hour of day (UTC,
/// wrapping at midnight): a weak signal.
fn is_unusual_hour(o: &Observed) -> bool {
    if o.history.len() < MIN_HISTORY_FOR_HOURS {
        return false;
    }
    let hour = hour_of_day(o.now_ms);
    !o.history.iter().any(|s| {
        let d = (hour_of_day(s.at_ms) - hour).rem_euclid(24);
        d <= 1 || d >= 23
    })
}

fn hour_of_day(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS).rem_euclid(24)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000 - 1_700_000_000_000 % (24 * HOUR_MS);

    fn past(at_ms: i64, device: &str, country: &str) -> PastSignIn {
        PastSignIn {
            at_ms,
            device_hash: Some(device.into()),
            country: Some(country.into()),
        }
    }

    fn seen_from(device: &str, country: &str, at_ms: i64) -> Observed {
        Observed {
            now_ms: T0 + 10 * HOUR_MS,
            history: vec![past(at_ms, device, country)],
            ..Observed::default()
        }
    }

    #[test]
    fn nfr_sec_006_a_first_sign_in_has_no_baseline_and_is_low() {
        let o = Observed {
            now_ms: T0,
            country: Some("DE".into()),
            ..Observed::default()
        };
        let a = assess(&RiskRules::default(), &o);
        assert_eq!((a.level, a.score, a.signals), (RiskLevel::Low, 0, vec![]));
    }

    #[test]
    fn nfr_sec_006_a_new_device_in_a_new_country_is_medium_the_known_device_is_low() {
        let rules = RiskRules::default();
        let mut o = seen_from("d1", "US", T0);
        o.device_hash = Some("d2".into());
        o.country = Some("CA".into());
        let a = assess(&rules, &o);
        assert_eq!(a.signals, vec![Signal::NewDevice, Signal::NewCountry]);
        assert_eq!((a.score, a.level), (3, RiskLevel::Medium));

        o.device_known = true;
        o.country = Some("US".into());
        let a = assess(&rules, &o);
        assert_eq!((a.level, a.signals), (RiskLevel::Low, vec![]));
        // A new device alone stays low.
        o.device_known = false;
        assert_eq!(assess(&rules, &o).level, RiskLevel::Low);
    }

    #[test]
    fn nfr_sec_006_impossible_travel_is_flagged_and_possible_travel_is_not() {
        let rules = RiskRules::default();
        // US an hour ago, Australia now: ~13,000 km in an hour.
        let mut o = seen_from("d1", "US", T0 + 9 * HOUR_MS);
        o.device_known = true;
        o.country = Some("AU".into());
        let a = assess(&rules, &o);
        assert_eq!(
            a.signals,
            vec![Signal::NewCountry, Signal::ImpossibleTravel]
        );
        assert_eq!(a.level, RiskLevel::High);
        // The same trip over two days is possible (but the country is still new).
        let mut o = seen_from("d1", "US", T0 + 10 * HOUR_MS - 48 * HOUR_MS);
        o.device_known = true;
        o.country = Some("AU".into());
        assert_eq!(assess(&rules, &o).signals, vec![Signal::NewCountry]);
        // Neighbours within the coarse points' error never count.
        let mut o = seen_from("d1", "BE", T0 + 10 * HOUR_MS - 60_000);
        o.device_known = true;
        o.country = Some("NL".into());
        assert!(!assess(&rules, &o)
            .signals
            .contains(&Signal::ImpossibleTravel));
    }

    #[test]
    fn nfr_sec_006_an_unusual_hour_needs_history_and_wraps_at_midnight() {
        let rules = RiskRules::default();
        let at = |h: i64| past(T0 - 24 * HOUR_MS + h * HOUR_MS, "d1", "US");
        let mut o = Observed {
            now_ms: T0 + 12 * HOUR_MS,
            device_hash: Some("d1".into()),
            device_known: true,
            country: Some("US".into()),
            history: (0..4).map(|_| at(23)).collect(),
            ..Observed::default()
        };
        assert!(assess(&rules, &o).signals.is_empty(), "four are not enough");
        o.history.push(at(23));
        assert_eq!(assess(&rules, &o).signals, vec![Signal::UnusualHour]);
        assert_eq!(assess(&rules, &o).level, RiskLevel::Low, "a weak signal");
        o.now_ms = T0 + 24 * HOUR_MS; // 00:00, an hour after 23:00
        assert!(assess(&rules, &o).signals.is_empty());
    }

    #[test]
    fn nfr_sec_006_recent_failures_count_from_their_thresholds() {
        let rules = RiskRules::default();
        let mut o = Observed {
            now_ms: T0,
            account_failures: 2,
            client_failures: 9,
            ..Observed::default()
        };
        assert!(assess(&rules, &o).signals.is_empty());
        o.account_failures = 3;
        o.client_failures = 10;
        let a = assess(&rules, &o);
        assert_eq!(
            a.signals,
            vec![Signal::AccountFailures, Signal::ClientFailures]
        );
        assert_eq!(a.score, 1, "counted once together");
        o.account_failures = 0;
        assert_eq!(assess(&rules, &o).signals, vec![Signal::ClientFailures]);
    }

    #[test]
    fn nfr_sec_006_weights_and_thresholds_are_the_policys() {
        let rules = RiskRules {
            new_device: 0,
            medium_at: 2,
            high_at: 2,
            ..RiskRules::default()
        };
        let mut o = seen_from("d1", "US", T0);
        o.country = Some("CA".into());
        let a = assess(&rules, &o);
        assert_eq!(
            (a.signals, a.level),
            (vec![Signal::NewCountry], RiskLevel::High)
        );
        assert_eq!(RiskRules::default().invalid_field(), None);
        let bad = RiskRules {
            high_at: 2,
            ..RiskRules::default()
        };
        assert_eq!(bad.invalid_field().map(|f| f.0), Some("rules.high_at"));
        let bad = RiskRules {
            unusual_hour: 11,
            ..RiskRules::default()
        };
        assert_eq!(bad.invalid_field().map(|f| f.0), Some("rules.unusual_hour"));
    }
}
