//! The request context conditions are evaluated against: condition keys (case-insensitive,
//! kept lower-case) and their values. A request builds only the keys its policies read
//! (`Policy::reads`), so it holds a handful: a list is all it needs.

#[derive(Clone, Debug, Default)]
pub struct Context {
    values: Vec<(String, Vec<String>)>,
}

impl Context {
    /// Sets a single-valued key (`aws:SourceIp`, `s3:prefix`…).
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        let key = key.to_ascii_lowercase();
        let value = vec![value.into()];
        match self.values.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None => self.values.push((key, value)),
        }
    }

    /// Adds a value to a multi-valued key.
    pub fn add(&mut self, key: &str, value: impl Into<String>) {
        let key = key.to_ascii_lowercase();
        match self.values.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(value.into()),
            None => self.values.push((key, vec![value.into()])),
        }
    }

    /// The values of a key (`key` lower-case), if the request carries it.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_slice())
    }

    /// The value of a single-valued key (`key` lower-case).
    pub fn single(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some([v]) => Some(v.as_str()),
            _ => None,
        }
    }
}
