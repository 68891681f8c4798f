//! The operator's overrides, compiled.
//!
//! [`crate::ClassifyConfig::build`] validates the `severity` and
//! `actionable` lists and compiles each into an [`OverrideSet`]: exact
//! action names go into a hash map, glob patterns into one
//! [`globset::GlobSet`]. Per event, [`OverrideSet::last_match`] finds the
//! last entry (in configuration order) that matches the action and passes
//! the caller's filter.
//!
//! Cost per event: one hash lookup, and one glob-set test when patterns are
//! configured. Events that no pattern matches allocate nothing; an event a
//! pattern does match pays one small allocation (globset's list of matching
//! patterns), which only operator-selected events incur.

use std::collections::HashMap;

use globset::{Candidate, Glob, GlobSet, GlobSetBuilder};
use keytrail_core::Severity;

use crate::ClassifyBuildError;

/// How an override picks its events.
#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    /// The event's action, exactly.
    Action(String),
    /// A glob over the event's action.
    Pattern(String),
}

/// A compiled `severity` override.
#[derive(Debug, Clone)]
pub(crate) struct SeverityRule {
    /// The severity to set.
    pub(crate) severity: Severity,
    /// Only events with this status code, when set.
    pub(crate) status_code: Option<u32>,
}

/// A compiled `actionable` override.
#[derive(Debug, Clone)]
pub(crate) struct ActionableRule {
    /// The hint to set instead of the built-in one, when set.
    pub(crate) remediation: Option<String>,
    /// Only events at least this severe, when set.
    pub(crate) min_severity: Option<Severity>,
}

/// One list of overrides, indexed for lookup by action.
#[derive(Debug)]
pub(crate) struct OverrideSet<R> {
    /// The rules, in configuration order.
    rules: Vec<R>,
    /// Exact action → indices of the rules naming it, ascending.
    exact: HashMap<String, Vec<usize>>,
    /// Every pattern, compiled together.
    globs: GlobSet,
    /// Glob index in `globs` → rule index.
    glob_rules: Vec<usize>,
}

impl<R> Default for OverrideSet<R> {
    fn default() -> Self {
        OverrideSet {
            rules: Vec::new(),
            exact: HashMap::new(),
            globs: GlobSet::empty(),
            glob_rules: Vec::new(),
        }
    }
}

impl<R> OverrideSet<R> {
    /// Compiles a validated list. `section` names the configuration list in
    /// errors.
    pub(crate) fn compile(
        section: &'static str,
        entries: Vec<(Matcher, R)>,
    ) -> Result<OverrideSet<R>, ClassifyBuildError> {
        let mut set = OverrideSet::default();
        let mut builder = GlobSetBuilder::new();
        for (index, (matcher, rule)) in entries.into_iter().enumerate() {
            match matcher {
                Matcher::Action(action) => set.exact.entry(action).or_default().push(index),
                Matcher::Pattern(pattern) => {
                    let glob = Glob::new(&pattern).map_err(|source| {
                        ClassifyBuildError::InvalidPattern {
                            section,
                            index,
                            pattern: pattern.clone(),
                            source,
                        }
                    })?;
                    builder.add(glob);
                    set.glob_rules.push(index);
                }
            }
            set.rules.push(rule);
        }
        set.globs = builder
            .build()
            .map_err(|source| ClassifyBuildError::PatternSet { section, source })?;
        Ok(set)
    }

    /// True when the list is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules, in configuration order.
    pub(crate) fn rules(&self) -> &[R] {
        &self.rules
    }

    /// The last rule, in configuration order, whose matcher matches
    /// `action` and that `accept` accepts.
    pub(crate) fn last_match(&self, action: &str, accept: impl Fn(&R) -> bool) -> Option<&R> {
        if self.rules.is_empty() {
            return None;
        }
        let mut best = self.exact.get(action).and_then(|indices| {
            indices
                .iter()
                .rev()
                .copied()
                .find(|&i| accept(&self.rules[i]))
        });
        let candidate = Candidate::from_bytes(action);
        if self.globs.is_match_candidate(&candidate) {
            for glob in self.globs.matches_candidate(&candidate) {
                let index = self.glob_rules[glob];
                if best.is_none_or(|b| index > b) && accept(&self.rules[index]) {
                    best = Some(index);
                }
            }
        }
        best.map(|i| &self.rules[i])
    }
}
