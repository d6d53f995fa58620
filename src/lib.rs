//! N-API bridge for the containerarchive engine (`containerarchive-core`).
//! This crate only converts types, bridges Node streams and maps errors.

mod archive;
mod cancel;
mod error;
mod events;
mod file_source;
mod ingest_bridge;
mod location;
mod restore_bridge;
