//! The `gridcc` compiler wrapper and client commands.
//!
//! - [`args`]: the gcc/clang command-line model: what a command compiles,
//!   whether it can run remotely (and why not), the preprocess and remote
//!   compile command lines.
//! - [`compiler`]: finding the real compiler (masquerade-safe).
//! - [`compile`]: the compile path: preprocess, look up the cache, send,
//!   write the object, fall back to the local compiler on any grid failure.
//! - [`cache`]: the local object cache: keys, the checksummed entry format,
//!   atomic stores, LRU eviction.
//! - [`direct`]: direct mode: manifests (files read, include-path probes,
//!   dependency file) that answer a hit without preprocessing.
//! - [`hermetic`]: a hermetic job's input tree (every file the compile may
//!   read, by digest) and the command line a worker sandbox runs.
//! - [`stats`]: `gridcc stats`, counters shared by all wrapper processes.
//! - [`remote`]: the coordinator and worker calls, with typed errors.
//! - `interrupt`: Ctrl-C and SIGTERM during the grid calls: cancel, clean
//!   up, die of the signal.
//! - [`idle`]: the client's idle CPUs, sent with each placement request.
//! - [`joblog`]: `GRIDCC_JOB_LOG`, one JSON line per compile handled.
//! - [`status`]: `gridcc status`.
//! - [`terminal`]: a worker's output without terminal controls but colour.
//! - [`cli`]: dispatch of `gridcc`'s own subcommands.

pub mod args;
pub mod cache;
pub mod cli;
pub mod compile;
pub mod compiler;
pub mod direct;
pub mod hermetic;
pub mod idle;
mod interrupt;
pub mod joblog;
pub mod remote;
pub mod stats;
pub mod status;
pub mod terminal;
