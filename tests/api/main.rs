//! Edgeplane's end-to-end contract suite: one HTTP contract, run against every runtime.
//!
//! For each runtime in `EDGEPLANE_RUNTIMES` (default `workerd,spin`) the runner starts the built
//! application once (fresh state directory, random cron secret), runs every selected contract
//! test against it in order, stops it, and prints one line per test. A missing build artifact
//! is a failure naming the `make` target that builds it, never a silent skip; deliberate skips
//! are listed in [`SKIPS`] with their reason and printed.
//!
//! `cargo test -p edgeplane-tests -- <filter>` runs the tests whose full name
//! (`<runtime>::<module>::<test>`) contains `<filter>`; `-- --list` lists them.

// A test binary with `harness = false` is not compiled with `cfg(test)`, so clippy's
// allow-*-in-tests settings do not reach it; the suite does not unwrap or panic on purpose.
// `Instant::now` is banned workspace-wide for core's sake (Clock port); a native test runner
// measuring its own durations is not core.
#![allow(clippy::disallowed_methods)]

/// Returns `Err(message)` from the enclosing test unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+));
        }
    };
}

/// Returns `Err` showing both values from the enclosing test unless they are equal.
macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($arg:tt)+) => {{
        let (left, right) = (&$left, &$right);
        if left != right {
            return Err(format!(
                "{}\n    expected: {:?}\n    actual:   {:?}",
                format!($($arg)+),
                right,
                left
            ));
        }
    }};
}

mod adaptive;
mod alerts;
mod anomalies;
mod app_health;
mod apps;
mod auth;
mod events;
mod flags;
mod health;
mod helpers;
mod http_contract;
mod journeys;
mod mail;
mod oidc;
mod scheduled;
mod sso;
mod tenant_admin;
mod tenants;
mod webauthn;

use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

use helpers::{spawn_app, Runtime, TestApp};

/// A contract test: `Ok(())` passes, `Err(why)` fails with a readable reason.
pub type TestFn = fn(&TestApp) -> Result<(), String>;

/// One named contract test of a module.
pub struct Test {
    /// The function's name; the runner prefixes runtime and module.
    pub name: &'static str,
    /// The test itself.
    pub run: TestFn,
}

/// Declares a module's `TESTS` table from its test functions, in run order.
#[macro_export]
macro_rules! contract_tests {
    ($($test:ident),* $(,)?) => {
        /// This module's contract tests, in run order.
        pub const TESTS: &[$crate::Test] = &[$($crate::Test { name: stringify!($test), run: $test }),*];
    };
}

/// Every module of the suite, in run order.
const SUITES: &[(&str, &[Test])] = &[
    ("health", health::TESTS),
    ("http_contract", http_contract::TESTS),
    ("scheduled", scheduled::TESTS),
    ("tenants", tenants::TESTS),
    ("apps", apps::TESTS),
    ("app_health", app_health::TESTS),
    ("flags", flags::TESTS),
    ("auth", auth::TESTS),
    ("adaptive", adaptive::TESTS),
    ("events", events::TESTS),
    ("tenant_admin", tenant_admin::TESTS),
    ("sso", sso::TESTS),
    ("webauthn", webauthn::TESTS),
    ("oidc", oidc::TESTS),
    ("mail", mail::TESTS),
    ("journeys", journeys::TESTS),
    ("alerts", alerts::TESTS),
    ("anomalies", anomalies::TESTS),
];

/// Deliberate skips: (runtime or `*`, `module::test`, reason). Printed on every run.
const SKIPS: &[(&str, &str, &str)] = &[
    (
        "spin",
        "scheduled::backup_restores_into_a_fresh_database_nfr_ops_004",
        "the drill restores with wrangler d1 execute into Miniflare state; Spin's backup is in its own SQLite (backup::tests restores one natively)",
    ),
    (
        "spin",
        "scheduled::cron_triggers_run_on_workers",
        "Spin has no cron trigger; POST /internal/scheduled is its scheduler (scheduled::*)",
    ),
    (
        "spin",
        "events::durable_object_alarm_archives_the_tail_on_workers",
        "Spin has no Durable Objects; its tail is archived by POST /internal/scheduled",
    ),
    (
        "spin",
        "events::own_changes_are_forwarded_after_the_request_on_workers",
        "Spin cannot work after answering (no waitUntil); POST /internal/scheduled forwards",
    ),
];

fn skip_reason(runtime: Runtime, name: &str) -> Option<&'static str> {
    SKIPS
        .iter()
        .find(|(rt, test, _)| (*rt == "*" || *rt == runtime.name()) && *test == name)
        .map(|(_, _, reason)| *reason)
}

/// The message of the last panic on this thread, captured by the hook installed in `main`.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

enum Outcome {
    Passed,
    Failed(String),
    Skipped(&'static str),
}

struct Failure {
    test: String,
    message: String,
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: usize,
    failures: Vec<Failure>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let list_only = args.iter().any(|a| a == "--list");
    // Flags cargo or habit may pass (`--nocapture`, `--test-threads=1`) are accepted and ignored.
    let filter = args.iter().find(|a| !a.starts_with('-')).cloned();

    let runtimes = match selected_runtimes() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };

    if list_only {
        for runtime in &runtimes {
            for (module, tests) in SUITES {
                for test in tests.iter() {
                    let full = format!("{}::{module}::{}", runtime.name(), test.name);
                    if filter.as_deref().is_none_or(|f| full.contains(f)) {
                        println!("{full}: test");
                    }
                }
            }
        }
        return ExitCode::SUCCESS;
    }

    panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(non-string panic payload)".to_owned());
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(format!("panicked{location}: {payload}"));
        }
    }));

    let started = Instant::now();
    let mut tally = Tally::default();
    for runtime in runtimes {
        run_runtime(runtime, filter.as_deref(), &mut tally);
    }

    if !tally.failures.is_empty() {
        println!("\nfailures:");
        for failure in &tally.failures {
            println!("\n---- {} ----\n{}", failure.test, failure.message);
        }
        println!("\nfailures:");
        for failure in &tally.failures {
            println!("    {}", failure.test);
        }
    }
    let verdict = if tally.failed == 0 { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {verdict}. {} passed; {} failed; {} skipped; finished in {:.2}s\n",
        tally.passed,
        tally.failed,
        tally.skipped,
        started.elapsed().as_secs_f64()
    );
    if tally.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn selected_runtimes() -> Result<Vec<Runtime>, String> {
    let raw = std::env::var("EDGEPLANE_RUNTIMES").unwrap_or_else(|_| "workerd,spin".to_owned());
    let runtimes = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            Runtime::from_name(name).ok_or_else(|| {
                format!("EDGEPLANE_RUNTIMES names unknown runtime {name:?} (known: workerd, spin)")
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if runtimes.is_empty() {
        return Err("EDGEPLANE_RUNTIMES is empty (known: workerd, spin)".to_owned());
    }
    Ok(runtimes)
}

fn run_runtime(runtime: Runtime, filter: Option<&str>, tally: &mut Tally) {
    let selected: Vec<(String, &Test)> = SUITES
        .iter()
        .flat_map(|(module, tests)| {
            tests
                .iter()
                .map(move |t| (format!("{module}::{}", t.name), t))
        })
        .filter(|(name, _)| {
            filter.is_none_or(|f| format!("{}::{name}", runtime.name()).contains(f))
        })
        .collect();
    if selected.is_empty() {
        return;
    }
    let to_run = selected
        .iter()
        .filter(|(name, _)| skip_reason(runtime, name).is_none())
        .count();
    println!(
        "\nrunning {} tests on {} ({to_run} to run)",
        selected.len(),
        runtime.name()
    );

    // Start the server only if something will use it: skips must not need a build.
    let mut server = None;
    if to_run > 0 {
        let spawn_started = Instant::now();
        match spawn_app(runtime) {
            Ok(s) => {
                println!(
                    "{} server at {} (ready in {:.1}s)",
                    runtime.name(),
                    s.app.base_url,
                    spawn_started.elapsed().as_secs_f64()
                );
                server = Some(s);
            }
            Err(e) => {
                let test = format!("{}::<server start>", runtime.name());
                println!("test {test} ... FAILED");
                tally.failed += 1;
                tally.failures.push(Failure {
                    test,
                    message: format!("{e}\n({to_run} tests of {} not run)", runtime.name()),
                });
            }
        }
    }

    let mut failed_here = false;
    for (name, test) in &selected {
        let full = format!("{}::{name}", runtime.name());
        let outcome = match (skip_reason(runtime, name), &server) {
            (Some(reason), _) => Outcome::Skipped(reason),
            (None, Some(server)) => run_one(test, &server.app),
            // The server did not start: reported once above.
            (None, None) => continue,
        };
        match outcome {
            Outcome::Passed => {
                println!("test {full} ... ok");
                tally.passed += 1;
            }
            Outcome::Skipped(reason) => {
                println!("test {full} ... skipped ({reason})");
                tally.skipped += 1;
            }
            Outcome::Failed(message) => {
                println!("test {full} ... FAILED");
                tally.failed += 1;
                failed_here = true;
                tally.failures.push(Failure {
                    test: full,
                    message,
                });
            }
        }
        let _ = std::io::stdout().flush();
    }

    if let Some(server) = server {
        let stop = server.stop(failed_here);
        if let Some(note) = stop.note {
            println!("{note}");
        }
        if let Some(err) = stop.error {
            let test = format!("{}::<server stop>", runtime.name());
            println!("test {test} ... FAILED");
            tally.failed += 1;
            tally.failures.push(Failure { test, message: err });
        }
    }
}

fn run_one(test: &Test, app: &TestApp) -> Outcome {
    if let Ok(mut last) = LAST_PANIC.lock() {
        *last = None;
    }
    match panic::catch_unwind(AssertUnwindSafe(|| (test.run)(app))) {
        Ok(Ok(())) => Outcome::Passed,
        Ok(Err(message)) => Outcome::Failed(message),
        Err(_) => {
            let message = LAST_PANIC
                .lock()
                .ok()
                .and_then(|mut last| last.take())
                .unwrap_or_else(|| "panicked".to_owned());
            Outcome::Failed(message)
        }
    }
}
