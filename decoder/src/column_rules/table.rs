//! One table's rules, as its `TableMeta` carries them: each ruled column's
//! index and rule, and the key. Applied in [`crate::column_rules`]
//! (`TableRules::apply`); kept apart so that the schema, which holds them,
//! does not import what applies them.

use super::hash::HashKey;
use super::rule::Rule;

/// One table's rules: each ruled column's index and rule.
#[derive(Debug)]
pub struct TableRules {
    pub(super) ruled: Vec<(usize, Rule)>,
    pub(super) key: Option<HashKey>,
}
