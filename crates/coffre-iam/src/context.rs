//! The request context conditions are evaluated against: condition keys (case-insensitive)
//! and their values.

use std::collections::HashMap;

#[derive(Clone, Debug, Default)]
pub struct Context {
    values: HashMap<String, Vec<String>>,
}

impl Context {
    /// Sets a single-valued key (`aws:SourceIp`, `s3:prefix`…).
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(key.to_ascii_lowercase(), vec![value.into()]);
    }

    /// Adds a value to a multi-valued key.
    pub fn add(&mut self, key: &str, value: impl Into<String>) {
        self.values
            .entry(key.to_ascii_lowercase())
            .or_default()
            .push(value.into());
    }

    /// The values of a key (`key` lower-case), if the request carries it.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.values.get(key).map(Vec::as_slice)
    }

    /// The value of a single-valued key (`key` lower-case).
    pub fn single(&self, key: &str) -> Option<&str> {
        match self.values.get(key).map(Vec::as_slice) {
            Some([v]) => Some(v.as_str()),
            _ => None,
        }
    }
}
