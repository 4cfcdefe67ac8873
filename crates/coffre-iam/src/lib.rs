//! Who may do what: tenants, users, access keys, roles and their sessions (STS), and the
//! policy language (identity and bucket policies) evaluated on every request.
//!
//! Modules import downward only: `manage`, `federation` → `service` → `sts`, `jwt`, `fetch`,
//! `policy` → `pattern`, `principal`, `context` → `error`.
//!
//! The service stands on the metadata store (`coffre-meta`: its records and commands) and
//! the keyring (`coffre-crypto`), not on the engine: the policy language and every decision
//! are built and tested without the data path (`service/tests.rs`).

pub mod context;
pub mod error;
mod federation;
mod fetch;
pub mod jwt;
mod manage;
pub mod pattern;
pub mod policy;
pub mod principal;
pub mod service;
pub mod sts;

pub use context::Context;
pub use error::{IamError, IamResult};
pub use policy::{Decision, Policy, PolicyKind, Request};
pub use principal::Principal;
pub use service::{Caller, ContextSource, Iam, KeyInfo, RootKey, Target, TenantInfo};
