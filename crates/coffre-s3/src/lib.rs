//! The S3 protocol: routing, SigV4, XML, errors, and one module per operation group.

pub mod admin;
pub mod auth;
pub mod body;
mod bucket;
pub mod checksum;
pub mod engine;
pub mod error;
mod list;
mod multipart;
mod object;
mod router;
pub mod server;
pub mod xml;

pub use engine::Engine;
pub use error::S3Error;
pub use server::{serve, tls_config, Config, Gateway};
