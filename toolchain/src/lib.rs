//! Compiler identity and discovery, shared by the wrapper and the worker so
//! that both name a compiler the same way.
//!
//! - [`identity`]: the digest that says two compilers produce the same
//!   objects (driver, `cc1`/`cc1plus` and `-v` output), cached on disk.
//! - [`discover`]: finding the compilers a worker can offer on its `PATH`.

pub mod discover;
pub mod identity;

pub use discover::{discover, Discovered};
pub use identity::{identify, Identity, IdentityCache};

use std::path::PathBuf;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum ToolchainError {
    #[error("cannot read compiler {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run {path} -v: {source}")]
    Run {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} -v failed; it does not look like gcc or clang")]
    NotACompiler { path: PathBuf },
}

/// gridcc's cache directory: `GRIDCC_CACHE_DIR`, else `$XDG_CACHE_HOME/gridcc`,
/// else `~/.cache/gridcc`, else a per-user directory under the temp dir.
pub fn cache_dir() -> PathBuf {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("GRIDCC_CACHE_DIR") {
        return dir;
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return dir.join("gridcc");
    }
    if let Some(home) = var("HOME") {
        return home.join(".cache").join("gridcc");
    }
    std::env::temp_dir().join(format!("gridcc-cache-{}", std::process::id()))
}
