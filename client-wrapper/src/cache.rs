//! The wrapper's object cache in `GRIDCC_CACHE_DIR/objects` (and direct
//! mode's manifests beside it): the `gridcc-cache` crate, which the
//! workers' shared cache uses too.

pub use gridcc_cache::*;
