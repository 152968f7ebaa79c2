//! gridcc's wire protocol.
//!
//! - [`v1`]: the generated `gridcc.v1` messages and tonic clients/servers
//!   (from `proto/gridcc/v1/gridcc.proto`).
//! - [`payload`]: how large blobs travel: zstd, fixed-size chunks, size and
//!   digest checks on arrival, a hard size limit.
//! - [`lease`]: signing and checking the leases the coordinator hands out, so a
//!   worker can trust a lease without asking the coordinator.
//! - [`auth`]: the grid's token: loading it, sending it with every call,
//!   refusing calls without it (constant-time check).
//! - [`tls`]: server certificates, the CA clients check servers with, the
//!   endpoint a client builds from an `http://` or `https://` URL.
//! - [`serve`]: the server builder (TLS, token check), accept stream and
//!   signal handling both servers share.
//! - [`metrics`]: Prometheus text exposition, histograms and the plain-HTTP
//!   `/metrics` responder both servers share.

pub mod auth;
pub mod lease;
pub mod metrics;
pub mod payload;
pub mod serve;
pub mod tls;

#[allow(unreachable_pub, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("gridcc.v1");
}

/// Version string shared by all binaries.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
