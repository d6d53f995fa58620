//! Choosing a snapshot by what an operator types: `latest`, a full id, or a
//! unique id prefix, narrowed by tags and host. The API and the CLI both come
//! here, so they accept exactly the same things.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::repo::Repository;
use crate::snapshot::{is_valid_snapshot_id, Manifest};
use crate::storage::objects::names;

/// The shortest id prefix accepted: 8 hex digits make accidental matches rare.
pub const MIN_PREFIX: usize = 8;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SnapshotFilter {
    /// Every tag listed must be present with this value.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub host: Option<String>,
}

impl SnapshotFilter {
    pub fn matches(&self, m: &Manifest) -> bool {
        self.host.as_deref().is_none_or(|h| m.host() == h) && self.tags.iter().all(|(k, v)| m.tags.get(k) == Some(v))
    }

    fn is_empty(&self) -> bool {
        self.tags.is_empty() && self.host.is_none()
    }

    /// " with tags a=b, host x", for messages.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.tags.is_empty() {
            let tags: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            parts.push(format!("tags {}", tags.join(",")));
        }
        if let Some(h) = &self.host {
            parts.push(format!("host {h:?}"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" with {}", parts.join(" and "))
        }
    }
}

/// Resolves `spec` (`latest`, a 64-digit id or a unique prefix of at least
/// [`MIN_PREFIX`] hex digits) to the snapshot it names among those matching
/// `filter`. An ambiguous prefix is `ERR_INVALID_ARGUMENT` listing the matches.
pub fn resolve_snapshot(repo: &Repository, spec: &str, filter: &SnapshotFilter) -> Result<Manifest> {
    if spec == "latest" {
        // list_snapshots is oldest first.
        return repo
            .list_snapshots()?
            .into_iter()
            .rev()
            .find(|m| filter.matches(m))
            .ok_or_else(|| Error::SnapshotNotFound(format!("'latest'{} (no snapshot matches)", filter.describe())));
    }
    // Ids are lowercase hex, as listed; anything else never reaches the filesystem.
    let id = spec;
    if id.len() < MIN_PREFIX || id.len() > 64 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(Error::invalid(format!(
            "{spec:?} is not a snapshot id; give 'latest', a full id, or a unique prefix of at least {MIN_PREFIX} lowercase hex digits of one (see listSnapshots())"
        )));
    }
    if id.len() == 64 {
        let m = repo.load_snapshot(id)?;
        if !filter.matches(&m) {
            return Err(Error::SnapshotNotFound(format!("{id}{}", filter.describe())));
        }
        return Ok(m);
    }
    let mut matches = Vec::new();
    for name in names(&**repo.storage(), crate::repo::SNAPSHOTS_DIR)? {
        if is_valid_snapshot_id(&name) && name.starts_with(id) {
            match repo.load_snapshot(&name) {
                Ok(m) if filter.matches(&m) => matches.push(m),
                Ok(_) | Err(Error::SnapshotNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    match matches.len() {
        0 => Err(Error::SnapshotNotFound(format!(
            "with an id starting {id}{}",
            filter.describe()
        ))),
        1 => Ok(matches.remove(0)),
        n => {
            matches.sort_by(|a, b| a.id.cmp(&b.id));
            let ids: Vec<&str> = matches.iter().map(|m| m.id.as_str()).collect();
            Err(Error::invalid(format!(
                "{spec:?} matches {n} snapshots ({}); give more digits of the id{}",
                ids.join(", "),
                if filter.is_empty() {
                    ", or narrow it with tags"
                } else {
                    ""
                }
            )))
        }
    }
}
