//! One table's column rules, as its `TableMeta` carries them: each ruled
//! column's index and [`Rule`], and the [`HashKey`] with the cache of its
//! digests. What the rules are and which columns they match is
//! [`crate::column_rules`], which also applies them (`TableRules::apply`);
//! these are kept apart, below the schema, so that the schema, which holds
//! them, does not import what applies them.

mod hash;
mod rule;

pub(crate) use hash::write_digest;
pub use hash::{HashCache, HashKey};
pub use rule::Rule;

/// One table's rules: each ruled column's index and rule.
#[derive(Debug)]
pub struct TableRules {
    pub(crate) ruled: Vec<(usize, Rule)>,
    pub(crate) key: Option<HashKey>,
}
