//! User names for `process.owner`, from the host's `/etc/passwd` (a line per user, the name
//! first and the uid third):
//!
//! ```text
//! alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often `/etc/passwd` may be read again for a user id not found in it.
const PASSWD_REFRESH: Duration = Duration::from_secs(60);

/// Parses `/etc/passwd` into uid → user name (the first name of a uid wins, as getpwuid).
pub fn parse_passwd(text: &str) -> HashMap<u32, Arc<str>> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut f = line.split(':');
        let (Some(name), Some(_), Some(uid)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if name.is_empty() || name.starts_with('#') || name.starts_with('+') {
            continue;
        }
        if let Ok(uid) = uid.parse() {
            out.entry(uid).or_insert_with(|| Arc::from(name));
        }
    }
    out
}

/// User names from the host's `/etc/passwd`, read on the first lookup and again (at most once a
/// minute) when a user id is not found.
pub(super) struct Users {
    pub(super) path: PathBuf,
    pub(super) names: HashMap<u32, Arc<str>>,
    pub(super) read_at: Option<Instant>,
}

impl Users {
    pub(super) fn name(&mut self, uid: u32) -> Arc<str> {
        if let Some(n) = self.names.get(&uid) {
            return n.clone();
        }
        if self.read_at.is_none_or(|t| t.elapsed() >= PASSWD_REFRESH) {
            self.read_at = Some(Instant::now());
            match crate::procfs::read_to_string(&self.path) {
                Ok(text) => self.names = parse_passwd(&text),
                Err(e) => tracing::debug!(error = %e, "cannot read user names"),
            }
            if let Some(n) = self.names.get(&uid) {
                return n.clone();
            }
        }
        Arc::from(uid.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_names_from_passwd_first_name_winning() {
        let u = parse_passwd("root:x:0:0::/root:/bin/sh\n# c\n+nis::::::\ntoor:x:0:0::/:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nbad line\n");
        assert_eq!(u.get(&0).map(|s| &**s), Some("root"));
        assert_eq!(u.get(&1000).map(|s| &**s), Some("alice"));
        assert_eq!(u.len(), 2);
    }
}
