//! Retention: which snapshots a policy removes, then garbage collection
//! (`gc`) of what only they referenced.
//!
//! The policy works like restic's: a snapshot is kept when any rule keeps it;
//! calendar rules keep the newest snapshot of each of the last N periods (in
//! UTC) that have snapshots. `maxUnused` tunes the collection: see `gc`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil::parse_iso8601_millis;
use crate::gc;
use crate::progress::ProgressFn;
use crate::repo::Repository;
use crate::snapshot::Manifest;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retention {
    pub keep_last: Option<u32>,
    pub keep_hourly: Option<u32>,
    pub keep_days: Option<u32>,
    pub keep_weeks: Option<u32>,
    pub keep_months: Option<u32>,
    pub keep_years: Option<u32>,
    pub keep_within: Option<String>,
    #[serde(default)]
    pub keep_tags: BTreeMap<String, String>,
    #[serde(default)]
    pub filter: Filter,
    /// Keys that split the snapshots into groups, each getting the policy on
    /// its own: "host" is the snapshot's host, any other name a tag key.
    /// `None`: the host and the whole tag set. `Some([])`: one group.
    pub group_by: Option<Vec<String>>,
    /// Fraction 0..1 of a pack's bytes that may be garbage before it is repacked.
    pub max_unused: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PruneReport {
    pub dry_run: bool,
    pub kept_snapshots: Vec<String>,
    pub removed_snapshots: Vec<String>,
    pub removed_packs: u64,
    pub repacked_packs: u64,
    pub freed_bytes: i64,
    pub reasons: BTreeMap<String, Vec<String>>,
    /// The policy's outcome per group, in group-key order.
    pub groups: Vec<PruneGroup>,
}

/// What identifies a group: the values of the `groupBy` keys (a tag a
/// snapshot lacks is absent from `tags`; `host` only when grouping by it).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl GroupKey {
    fn of(m: &Manifest, group_by: Option<&[String]>) -> GroupKey {
        match group_by {
            None => GroupKey {
                host: Some(m.host().to_string()),
                tags: m.tags.clone(),
            },
            Some(keys) => GroupKey {
                host: keys.iter().any(|k| k == "host").then(|| m.host().to_string()),
                tags: keys
                    .iter()
                    .filter(|k| *k != "host")
                    .filter_map(|k| m.tags.get(k).map(|v| (k.clone(), v.clone())))
                    .collect(),
            },
        }
    }
}

/// One group's snapshots the policy keeps (oldest first, with reasons) and removes.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PruneGroup {
    #[serde(flatten)]
    pub key: GroupKey,
    pub kept_snapshots: Vec<String>,
    pub removed_snapshots: Vec<String>,
    pub reasons: BTreeMap<String, Vec<String>>,
}

/// Parses `1y6m2w3d12h` (y = 365 d, m = 30 d, w = 7 d) to milliseconds.
pub fn parse_duration(s: &str) -> Result<i64> {
    let bad = || {
        Error::invalid(format!(
            "keepWithin {s:?} is not a duration; use e.g. '30d', '12h', '2w', '1y6m'"
        ))
    };
    let mut total: i64 = 0;
    let mut number = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: i64 = number.parse().map_err(|_| bad())?;
        number.clear();
        let hours = match c {
            'y' => 365 * 24,
            'm' => 30 * 24,
            'w' => 7 * 24,
            'd' => 24,
            'h' => 1,
            _ => return Err(bad()),
        };
        total = total
            .checked_add(n.checked_mul(hours * 3_600_000).ok_or_else(bad)?)
            .ok_or_else(bad)?;
    }
    if !number.is_empty() || s.trim().is_empty() {
        return Err(bad());
    }
    Ok(total)
}

impl Retention {
    fn has_keep_rule(&self) -> bool {
        [
            self.keep_last,
            self.keep_hourly,
            self.keep_days,
            self.keep_weeks,
            self.keep_months,
            self.keep_years,
        ]
        .iter()
        .any(|n| n.unwrap_or(0) > 0)
            || self.keep_within.is_some()
            || !self.keep_tags.is_empty()
    }

    pub fn validate(&self) -> Result<()> {
        if !self.has_keep_rule() {
            return Err(Error::invalid(
                "the retention policy has no keep rule, so it would remove every snapshot; give at least one of keepLast, keepHourly, keepDays, keepWeeks, keepMonths, keepYears (> 0), keepWithin or keepTags",
            ));
        }
        if let Some(w) = &self.keep_within {
            parse_duration(w)?;
        }
        if let Some(keys) = &self.group_by {
            let mut seen = std::collections::BTreeSet::new();
            for k in keys {
                if k.is_empty() || !seen.insert(k) {
                    return Err(Error::invalid(format!(
                        "groupBy lists {k:?} {}; give distinct names: 'host' or tag keys",
                        if k.is_empty() { "as a key" } else { "twice" }
                    )));
                }
            }
        }
        if let Some(m) = self.max_unused {
            if !(0.0..=1.0).contains(&m) {
                return Err(Error::invalid(format!(
                    "maxUnused {m} must be a fraction between 0 and 1 (or a percentage string)"
                )));
            }
        }
        Ok(())
    }
}

fn civil(ms: i64) -> (i64, u32) {
    let date = crate::fsutil::iso8601_from_millis(ms);
    (date[0..4].parse().unwrap_or(0), date[5..7].parse().unwrap_or(1))
}

/// Applies the policy to each group of in-scope snapshots (`filter` first,
/// then `groupBy`): which it keeps (with reasons) and removes.
pub fn apply_policy(snapshots: &[Manifest], r: &Retention) -> Result<Vec<PruneGroup>> {
    r.validate()?;
    let mut groups: BTreeMap<GroupKey, Vec<(&Manifest, i64)>> = BTreeMap::new();
    for s in snapshots
        .iter()
        .filter(|s| r.filter.tags.iter().all(|(k, v)| s.tags.get(k) == Some(v)))
    {
        let t = parse_iso8601_millis(&s.created_at)
            .ok_or_else(|| Error::corrupt(format!("snapshot {}", s.id), "createdAt is not a timestamp"))?;
        groups
            .entry(GroupKey::of(s, r.group_by.as_deref()))
            .or_default()
            .push((s, t));
    }
    groups
        .into_iter()
        .map(|(key, scope)| {
            let (reasons, kept, removed) = policy_for_group(scope, r)?;
            Ok(PruneGroup {
                key,
                kept_snapshots: kept,
                removed_snapshots: removed,
                reasons,
            })
        })
        .collect()
}

type GroupOutcome = (BTreeMap<String, Vec<String>>, Vec<String>, Vec<String>);

/// The policy on one group: reasons per kept id, kept and removed ids (oldest first).
fn policy_for_group(mut scope: Vec<(&Manifest, i64)>, r: &Retention) -> Result<GroupOutcome> {
    // Newest first: the first snapshot met in a period is that period's newest.
    scope.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.id.cmp(&a.0.id)));
    let mut reasons: HashMap<String, Vec<String>> = HashMap::new();
    let mut keep = |id: &str, why: &str| reasons.entry(id.to_string()).or_default().push(why.to_string());

    let day = |t: i64| t.div_euclid(86_400_000);
    type Bucket<'a> = (&'a str, Option<u32>, Box<dyn Fn(i64) -> i64>);
    let rules: Vec<Bucket> = vec![
        ("last", r.keep_last, Box::new(|_| 0)),
        ("hourly", r.keep_hourly, Box::new(|t: i64| t.div_euclid(3_600_000))),
        ("daily", r.keep_days, Box::new(move |t| day(t))),
        // Weeks start on Monday; 1970-01-01 was a Thursday.
        ("weekly", r.keep_weeks, Box::new(move |t| (day(t) + 3).div_euclid(7))),
        (
            "monthly",
            r.keep_months,
            Box::new(|t| {
                let (y, m) = civil(t);
                y * 12 + m as i64
            }),
        ),
        ("yearly", r.keep_years, Box::new(|t| civil(t).0)),
    ];
    for (name, count, bucket) in rules {
        let mut left = count.unwrap_or(0);
        let mut last_bucket = None;
        for (i, (s, t)) in scope.iter().enumerate() {
            if left == 0 {
                break;
            }
            // keepLast: every snapshot is its own period.
            let b = if name == "last" { i as i64 } else { bucket(*t) };
            if last_bucket != Some(b) {
                keep(&s.id, name);
                left -= 1;
                last_bucket = Some(b);
            }
        }
    }
    if let (Some(within), Some((_, newest))) = (&r.keep_within, scope.first()) {
        let cutoff = newest - parse_duration(within)?;
        for (s, t) in &scope {
            if *t >= cutoff {
                keep(&s.id, "within");
            }
        }
    }
    for (s, _) in &scope {
        if s.tags.iter().any(|(k, v)| r.keep_tags.get(k) == Some(v)) {
            keep(&s.id, "tags");
        }
    }
    let mut why_kept = BTreeMap::new();
    let (mut kept, mut removed) = (Vec::new(), Vec::new());
    for (s, _) in scope.iter().rev() {
        match reasons.remove(&s.id) {
            Some(why) => {
                why_kept.insert(s.id.clone(), why);
                kept.push(s.id.clone());
            }
            None => removed.push(s.id.clone()),
        }
    }
    Ok((why_kept, kept, removed))
}

pub fn prune(
    repo: &Repository,
    retention: &Retention,
    dry_run: bool,
    progress: ProgressFn<'_>,
    lock_timeout: Duration,
) -> Result<PruneReport> {
    prune_with(repo, retention, dry_run, progress, lock_timeout, &crate::cancel::NEVER)
}

/// `prune` that stops with `Error::Cancelled` when `cancel` is set before it
/// starts rewriting packs (see `gc::collect`); after that it runs to its end.
pub fn prune_with(
    repo: &Repository,
    retention: &Retention,
    dry_run: bool,
    progress: ProgressFn<'_>,
    lock_timeout: Duration,
    cancel: &AtomicBool,
) -> Result<PruneReport> {
    retention.validate()?;
    repo.ensure_layout()?;
    let _lock = crate::lock::acquire_until(repo.storage(), true, lock_timeout, cancel)?;
    let snapshots = gc::load_snapshots(repo, "prune()")?;
    let groups = apply_policy(&snapshots, retention)?;
    let mut kept: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut removed_set: HashSet<String> = HashSet::new();
    for g in &groups {
        kept.extend(g.reasons.iter().map(|(id, why)| (id.clone(), why.clone())));
        removed_set.extend(g.removed_snapshots.iter().cloned());
    }
    // Oldest first across groups, like the snapshot list.
    let removed: Vec<String> = snapshots
        .iter()
        .filter(|s| removed_set.contains(&s.id))
        .map(|s| s.id.clone())
        .collect();
    let kept_ids: Vec<String> = snapshots
        .iter()
        .filter(|s| kept.contains_key(&s.id))
        .map(|s| s.id.clone())
        .collect();
    let max_unused = retention.max_unused.unwrap_or(gc::DEFAULT_MAX_UNUSED);
    let outcome = gc::collect(repo, &snapshots, &removed, max_unused, dry_run, progress, cancel)?;
    Ok(PruneReport {
        dry_run,
        kept_snapshots: kept_ids,
        removed_snapshots: removed,
        removed_packs: outcome.removed_packs,
        repacked_packs: outcome.repacked_packs,
        freed_bytes: outcome.freed_bytes,
        reasons: kept,
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::iso8601_from_millis;

    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;
    /// 2026-01-05 00:00 UTC, a Monday.
    const T0: i64 = 1_767_571_200_000;

    fn snap(n: usize, at: i64, tags: &[(&str, &str)]) -> Manifest {
        Manifest {
            version: 1,
            id: format!("{n:064x}"),
            created_at: iso8601_from_millis(at),
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            host: None,
            user: None,
            items: vec![],
            new_chunks: 0,
            reused_chunks: 0,
            original_size: 0,
            stored_size: 0,
        }
    }

    /// The groups' outcomes merged: reasons per kept id, removed ids.
    fn merged(snaps: &[Manifest], r: &Retention) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
        let mut reasons = BTreeMap::new();
        let mut removed = Vec::new();
        for g in apply_policy(snaps, r).unwrap() {
            reasons.extend(g.reasons);
            removed.extend(g.removed_snapshots);
        }
        (reasons, removed)
    }

    fn kept(snaps: &[Manifest], r: Retention) -> Vec<usize> {
        let (kept, _) = merged(snaps, &r);
        snaps
            .iter()
            .enumerate()
            .filter(|(_, s)| kept.contains_key(&s.id))
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn an_empty_policy_is_refused() {
        let snaps = vec![snap(1, T0, &[])];
        for r in [
            Retention::default(),
            Retention {
                keep_last: Some(0),
                ..Default::default()
            },
        ] {
            assert_eq!(apply_policy(&snaps, &r).unwrap_err().code(), "ERR_INVALID_ARGUMENT");
        }
    }

    #[test]
    fn keep_last_and_calendar_rules_pick_the_newest_per_period() {
        // Two snapshots a day for 10 days, at 01:00 and 13:00.
        let snaps: Vec<Manifest> = (0..20)
            .map(|i| snap(i, T0 + (i as i64 / 2) * DAY + HOUR + (i as i64 % 2) * 12 * HOUR, &[]))
            .collect();
        assert_eq!(
            kept(
                &snaps,
                Retention {
                    keep_last: Some(3),
                    ..Default::default()
                }
            ),
            vec![17, 18, 19]
        );
        assert_eq!(
            kept(
                &snaps,
                Retention {
                    keep_days: Some(3),
                    ..Default::default()
                }
            ),
            vec![15, 17, 19]
        );
        assert_eq!(
            kept(
                &snaps,
                Retention {
                    keep_hourly: Some(2),
                    ..Default::default()
                }
            ),
            vec![18, 19]
        );
        // Days 0..6 are one week (Mon..Sun), days 7..9 the next.
        assert_eq!(
            kept(
                &snaps,
                Retention {
                    keep_weeks: Some(5),
                    ..Default::default()
                }
            ),
            vec![13, 19]
        );
        assert_eq!(
            kept(
                &snaps,
                Retention {
                    keep_months: Some(2),
                    ..Default::default()
                }
            ),
            vec![19]
        );
        assert_eq!(
            kept(
                &snaps,
                Retention {
                    keep_years: Some(1),
                    ..Default::default()
                }
            ),
            vec![19]
        );
        let both = Retention {
            keep_last: Some(1),
            keep_days: Some(2),
            ..Default::default()
        };
        let (reasons, removed) = merged(&snaps, &both);
        assert_eq!(reasons[&snaps[19].id], vec!["last", "daily"]);
        assert_eq!(reasons[&snaps[17].id], vec!["daily"]);
        assert_eq!(removed.len(), 18);
    }

    #[test]
    fn within_tags_and_filter() {
        let snaps = vec![
            snap(1, T0, &[("kind", "full")]),
            snap(2, T0 + 10 * DAY, &[("svc", "db")]),
            snap(3, T0 + 20 * DAY, &[("svc", "db")]),
            snap(4, T0 + 29 * DAY, &[("svc", "web")]),
        ];
        // One policy across the repository (groupBy: false).
        let within = Retention {
            keep_within: Some("10d".into()),
            group_by: Some(vec![]),
            ..Default::default()
        };
        assert_eq!(kept(&snaps, within), vec![2, 3]);
        let tags = Retention {
            keep_last: Some(1),
            keep_tags: [("kind".to_string(), "full".to_string())].into(),
            group_by: Some(vec![]),
            ..Default::default()
        };
        assert_eq!(kept(&snaps, tags), vec![0, 3]);
        let scoped = Retention {
            keep_last: Some(1),
            filter: Filter {
                tags: [("svc".to_string(), "db".to_string())].into(),
            },
            ..Default::default()
        };
        let (reasons, removed) = merged(&snaps, &scoped);
        assert_eq!(
            removed,
            vec![snaps[1].id.clone()],
            "only in-scope snapshots are removed"
        );
        assert_eq!(reasons.keys().cloned().collect::<Vec<_>>(), vec![snaps[2].id.clone()]);
    }

    #[test]
    fn each_group_gets_the_policy_on_its_own() {
        // The reproduction: postgres x2 and nextcloud x1, keepDays 1.
        let snaps = vec![
            snap(1, T0, &[("service", "postgres")]),
            snap(2, T0 + DAY, &[("service", "postgres")]),
            snap(3, T0 + HOUR, &[("service", "nextcloud")]),
        ];
        let daily = |group_by: Option<Vec<String>>| Retention {
            keep_days: Some(1),
            group_by,
            ..Default::default()
        };
        assert_eq!(kept(&snaps, daily(None)), vec![1, 2], "nextcloud's only snapshot stays");
        let groups = apply_policy(&snaps, &daily(None)).unwrap();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].key.host.as_deref(), Some(""), "old manifests read as host ''");
        assert_eq!(groups[0].key.tags["service"], "nextcloud");
        assert_eq!(groups[1].kept_snapshots, vec![snaps[1].id.clone()]);
        assert_eq!(groups[1].removed_snapshots, vec![snaps[0].id.clone()]);
        assert_eq!(groups[1].reasons[&snaps[1].id], vec!["daily"]);
        // groupBy: false -> one policy for the whole repository.
        assert_eq!(kept(&snaps, daily(Some(vec![]))), vec![1]);
        // groupBy ['host'] -> all share host '' -> one group, keyed by host only.
        let by_host = apply_policy(&snaps, &daily(Some(vec!["host".into()]))).unwrap();
        assert_eq!(by_host.len(), 1);
        assert_eq!(by_host[0].key.host.as_deref(), Some(""));
        assert!(by_host[0].key.tags.is_empty());

        // groupBy ['service'] ignores other tags; a snapshot without the tag forms its own group.
        let more = vec![
            snap(1, T0, &[("service", "db"), ("run", "a")]),
            snap(2, T0 + DAY, &[("service", "db"), ("run", "b")]),
            snap(3, T0 + 2 * DAY, &[("run", "c")]),
        ];
        assert_eq!(
            kept(&more, daily(None)),
            vec![0, 1, 2],
            "default: every tag set is a group"
        );
        let by_service = apply_policy(&more, &daily(Some(vec!["service".into()]))).unwrap();
        assert_eq!(by_service.len(), 2);
        assert!(by_service[0].key.tags.is_empty() && by_service[0].key.host.is_none());
        assert_eq!(by_service[1].key.tags["service"], "db");
        assert_eq!(by_service[1].kept_snapshots, vec![more[1].id.clone()]);

        for bad in [vec!["".to_string()], vec!["host".into(), "host".into()]] {
            let err = apply_policy(&snaps, &daily(Some(bad))).unwrap_err();
            assert_eq!(err.code(), "ERR_INVALID_ARGUMENT");
        }
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("12h").unwrap(), 12 * HOUR);
        assert_eq!(parse_duration("1y6m").unwrap(), (365 + 180) * DAY);
        assert_eq!(parse_duration("2w3d").unwrap(), 17 * DAY);
        for bad in ["", "12", "3x", "d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
