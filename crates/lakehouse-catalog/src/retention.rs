//! Retention of old versions (docs/decisions.md, "Garbage collection and retention"): which versions of
//! a dataset are still served, and so which objects garbage collection must keep.
//!
//! A version past retention keeps its manifest (the audit trail, a few hundred bytes) but
//! answers 410 `gone`, and its objects become garbage collection candidates unless a retained
//! version shares them.

use chrono::{DateTime, Utc};
use lakehouse_api::Manifest;

/// How long old versions are kept: catalogd's `retain_versions` and `retain_ms`.
///
/// Rules, in order:
/// 1. The latest version is always retained, whatever the settings.
/// 2. A rule set to 0 is off. With both off (the default), every version is retained.
/// 3. Otherwise a version is retained when ANY rule that is on keeps it: it is one of the
///    last `retain_versions` versions (by number: `version > latest - retain_versions`), or
///    it is younger than `retain_ms` (by its manifest's `created_at`). The more generous rule
///    wins, so adding a rule never removes a version another rule keeps.
///
/// A `created_at` that does not parse counts as *now* (kept): an unreadable age never
/// expires a version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Keep the last this many versions; 0 = this rule is off.
    pub retain_versions: u64,
    /// Keep versions younger than this many milliseconds; 0 = this rule is off.
    pub retain_ms: u64,
}

impl RetentionPolicy {
    /// Every version is retained (both rules off): the default.
    pub const KEEP_ALL: RetentionPolicy = RetentionPolicy {
        retain_versions: 0,
        retain_ms: 0,
    };

    /// True when no version ever expires (both rules off).
    pub fn keeps_all(&self) -> bool {
        self.retain_versions == 0 && self.retain_ms == 0
    }

    /// Whether `manifest` is retained at `now` when the dataset's latest version is
    /// `latest_version` (rules of [`RetentionPolicy`]).
    pub fn is_retained(
        &self,
        manifest: &Manifest,
        latest_version: u64,
        now: DateTime<Utc>,
    ) -> bool {
        self.is_retained_at(manifest.version, &manifest.created_at, latest_version, now)
    }

    /// [`RetentionPolicy::is_retained`] of version `version` committed at `created_at`
    /// (RFC 3339).
    pub fn is_retained_at(
        &self,
        version: u64,
        created_at: &str,
        latest_version: u64,
        now: DateTime<Utc>,
    ) -> bool {
        if self.keeps_all() || version >= latest_version {
            return true;
        }
        let by_count = self.retain_versions > 0
            && version > latest_version.saturating_sub(self.retain_versions);
        let by_age = self.retain_ms > 0 && {
            let created = DateTime::parse_from_rfc3339(created_at)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or(now);
            let age_ms = now.signed_duration_since(created).num_milliseconds();
            age_ms < i64::try_from(self.retain_ms).unwrap_or(i64::MAX)
        };
        by_count || by_age
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lakehouse_api::{CsvOptions, DatasetName, Schema, Source};

    fn manifest(version: u64, created_at: &str) -> Manifest {
        Manifest {
            key: None,
            operation: None,
            name: DatasetName::new("d").unwrap(),
            version,
            schema_fingerprint: Schema { fields: vec![] }.fingerprint(),
            schema: Schema { fields: vec![] },
            objects: vec![],
            row_count: 0,
            created_at: created_at.into(),
            inference_version: 1,
            options: CsvOptions::default(),
            source: Source::default(),
            columns: Vec::new(),
            partition_spec: None,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-01-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    const OLD: &str = "2025-01-01T00:00:00Z"; // 12 h before now()
    const NEW: &str = "2025-01-01T11:59:00Z"; // 1 min before now()

    #[test]
    fn keep_all_keeps_everything() {
        let policy = RetentionPolicy::KEEP_ALL;
        assert!(policy.is_retained(&manifest(1, OLD), 100, now()));
    }

    #[test]
    fn latest_is_always_retained() {
        let policy = RetentionPolicy {
            retain_versions: 1,
            retain_ms: 1,
        };
        assert!(policy.is_retained(&manifest(7, OLD), 7, now()));
        assert!(!policy.is_retained(&manifest(6, OLD), 7, now()));
    }

    #[test]
    fn count_rule_keeps_the_last_n() {
        let policy = RetentionPolicy {
            retain_versions: 3,
            retain_ms: 0,
        };
        let kept: Vec<u64> = (1..=10)
            .filter(|v| policy.is_retained(&manifest(*v, OLD), 10, now()))
            .collect();
        assert_eq!(kept, vec![8, 9, 10]);
    }

    /// Fewer versions than the count rule keeps: all of them (no underflow of
    /// `latest - retain_versions`, which panicked in a debug build under a GC race).
    #[test]
    fn count_rule_keeps_every_version_of_a_young_dataset() {
        let policy = RetentionPolicy {
            retain_versions: 5,
            retain_ms: 0,
        };
        let kept: Vec<u64> = (1..=2)
            .filter(|v| policy.is_retained(&manifest(*v, OLD), 2, now()))
            .collect();
        assert_eq!(kept, vec![1, 2]);
    }

    #[test]
    fn age_rule_keeps_young_versions() {
        let policy = RetentionPolicy {
            retain_versions: 0,
            retain_ms: 3_600_000,
        };
        assert!(policy.is_retained(&manifest(1, NEW), 5, now()));
        assert!(!policy.is_retained(&manifest(2, OLD), 5, now()));
        assert!(policy.is_retained(&manifest(3, "not a time"), 5, now()));
    }

    #[test]
    fn either_rule_keeps_a_version_when_both_are_set() {
        let policy = RetentionPolicy {
            retain_versions: 1,
            retain_ms: 3_600_000,
        };
        assert!(policy.is_retained(&manifest(1, NEW), 5, now()), "young");
        assert!(
            !policy.is_retained(&manifest(4, OLD), 5, now()),
            "old, not last"
        );
        let policy = RetentionPolicy {
            retain_versions: 2,
            retain_ms: 1,
        };
        assert!(policy.is_retained(&manifest(4, OLD), 5, now()), "last 2");
    }
}
