//! Billing and audit events (FR-BILL-001, FR-LOG-001): the durable event log they are appended
//! to before the API acknowledges them. [`SqlEventLog`] implements the
//! [`EventLog`](crate::ports::EventLog) port over any [`Sql`](crate::ports::Sql): a Durable
//! Object hosts it over its own SQLite storage on Workers, Spin and native tests over SQLite.

mod sql_log;

pub use sql_log::{SqlEventLog, SCHEMA};
