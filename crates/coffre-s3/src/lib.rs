//! The S3 protocol: routing, SigV4, bodies, XML, errors, and one module per operation group.
//! The object engine below does the storage; this crate only speaks S3.
//!
//! Modules import downward only:
//! `server` → `operations` (the table of S3 operations) → the handlers (`bucket`, `cors`,
//! `object`, `multipart`, `list`, `post`, `iam_api`) → `acl` → `router`, `context`, `body`,
//! `http`, `sse`, `xml` → `auth` → `encoding`, `error`
//! (tests/module_graph.rs checks that no module imports one above it).

mod acl;
mod attributes;
mod audit;
pub mod auth;
pub mod body;
mod bucket;
pub mod context;
mod copy;
mod cors;
mod document;
pub mod encoding;
pub mod error;
pub mod http;
mod iam_api;
mod kms;
mod lifecycle;
mod list;
pub mod metrics;
mod multipart;
mod object;
pub mod operations;
mod post;
pub mod router;
pub mod server;
mod sse;
mod veeam;
mod versioning;
pub mod xml;

pub use context::{Config, Gateway};
pub use error::S3Error;
pub use server::{serve, tls_config};
