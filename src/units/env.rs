//! The environment as a lookup function, so that code reading variables runs in tests on a map
//! instead of the process's environment (which is shared by every test thread).

/// A source of environment variables (the process's, or a map in tests).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process's environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// An environment variable whose value cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("environment variable {var}={value:?}: {msg}")]
pub struct EnvError {
    /// The variable.
    pub var: String,
    /// Its value (`<redacted>` for secrets).
    pub value: String,
    /// What is wrong with it.
    pub msg: String,
}

/// An environment of the given pairs, for tests.
#[cfg(test)]
pub(crate) fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: std::collections::HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k| m.get(k).cloned()
}
