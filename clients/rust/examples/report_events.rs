//! Reports numbered billing events through [`EventReporter`], a chunk at a time, as a process
//! of its own: what `tests/reliability/reporter-sigkill.mjs` drives while it kills Edgeplane.
//!
//! ```text
//! report_events <base_url> <api_key> <tenant_id> <count> <from> <max_queue> <chunk>
//! ```
//!
//! Events `from .. from + count` carry `metadata.seq` and no id, so only the reporter's
//! `Idempotency-Key` keeps a retried batch from being stored twice. After each chunk it prints
//! `reported N` (events given to the reporter so far) and flushes; each dropped event prints
//! `dropped SEQ REASON`. At the end it prints `done` once standard input is closed, so the
//! driver decides when the reporter's work is over.

use std::io::{BufRead, Write};
use std::time::Duration;

use edgeplane_client::http::NativeHttp;
use edgeplane_client::time::NativeSleep;
use edgeplane_client::{BillingEvent, DropReason, EventReporter, ReporterOptions};

fn main() {
    if let Err(e) = run() {
        eprintln!("report_events: {e}");
        std::process::exit(2);
    }
}

fn arg(args: &[String], i: usize, name: &str) -> Result<String, String> {
    args.get(i)
        .cloned()
        .ok_or_else(|| format!("missing <{name}>"))
}

fn number(args: &[String], i: usize, name: &str) -> Result<usize, String> {
    arg(args, i, name)?
        .parse()
        .map_err(|_| format!("<{name}> must be a number"))
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // The driver reads lines; a closed pipe means it is gone, and so is the point of going on.
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(3);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (base, key, tenant) = (
        arg(&args, 0, "base_url")?,
        arg(&args, 1, "api_key")?,
        arg(&args, 2, "tenant_id")?,
    );
    let (count, from) = (number(&args, 3, "count")?, number(&args, 4, "from")?);
    let (max_queue, chunk) = (number(&args, 5, "max_queue")?, number(&args, 6, "chunk")?);

    let options = ReporterOptions {
        max_batch: 50,
        max_queue,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(500),
        ..ReporterOptions::default()
    };
    let reporter = EventReporter::<BillingEvent, _, _>::with_seams(
        NativeHttp::new(Duration::from_secs(10)),
        NativeSleep,
        &base,
        &key,
        options,
    )
    .on_drop(|events, why| {
        let reason = match why {
            DropReason::QueueFull => "queue_full",
            DropReason::Rejected { .. } => "rejected",
            DropReason::RetriesExhausted { .. } => "retries_exhausted",
        };
        for e in events {
            let seq = e
                .metadata
                .as_ref()
                .and_then(|m| m.get("seq"))
                .map_or_else(|| "?".to_owned(), serde_json::Value::to_string);
            say(&format!("dropped {seq} {reason}"));
        }
    });

    futures_executor::block_on(async {
        let mut reported = 0;
        while reported < count {
            let n = chunk.max(1).min(count - reported);
            for seq in from + reported..from + reported + n {
                let mut metadata = serde_json::Map::new();
                metadata.insert("seq".into(), seq.into());
                let event = BillingEvent {
                    id: None,
                    tenant_id: Some(tenant.clone()),
                    event_type: "reporter.check".into(),
                    quantity: 1,
                    timestamp: "2026-01-01T00:00:00Z".into(),
                    metadata: Some(metadata),
                };
                reporter.report(event).map_err(|e| e.to_string())?;
            }
            reported += n;
            say(&format!("reported {reported}"));
            reporter.flush().await;
        }
        Ok::<_, String>(())
    })?;
    // Wait for the driver's end of input, then flush whatever is left and finish.
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
    }
    futures_executor::block_on(reporter.flush());
    say("done");
    Ok(())
}
