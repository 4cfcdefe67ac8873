//! Who may do what: tenants, users, access keys, roles and their sessions (STS), and the
//! policy language (identity and bucket policies) evaluated on every request.
//!
//! Modules import downward only: `service` → `sts`, `jwt`, `fetch`, `policy` → `pattern`,
//! `principal`, `context` → `error`.

pub mod context;
pub mod error;
mod fetch;
pub mod jwt;
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
