//! The change event: one JSON object per row, the contract every consumer
//! reads (documented in docs/EVENTS.md).
//!
//! Keys are written in sorted order, like the original's `sort_keys=True`:
//! `columnsChanged`, `delta`, `gtid`, `index`, `keys`, `newImage`, `oldImage`,
//! `partial`, `position`, `schema`, `table`, `timestamp`, `type`. Column names
//! inside `keys`, images and deltas are sorted too.

use serde::{Deserialize, Serialize};

use crate::column_rules::{HashCache, Overlay, Ruled};
use crate::decode::{Columns, RowImage};
use crate::definition::{HeldRows, TableDefinition};
use crate::json;
use crate::schema::TableMeta;
use crate::statement::StatementKind;

/// Which kind of change a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RowKind {
    #[serde(rename = "WriteRowsEvent")]
    Write,
    #[serde(rename = "UpdateRowsEvent")]
    Update,
    #[serde(rename = "DeleteRowsEvent")]
    Delete,
    /// A row that existed when the snapshot read it (see `snapshot`): an
    /// insert-or-replace at its `position`.
    #[serde(rename = "SnapshotRowEvent")]
    Snapshot,
}

impl RowKind {
    /// The name in the `type` field (the original's class names).
    pub fn name(self) -> &'static str {
        match self {
            RowKind::Write => "WriteRowsEvent",
            RowKind::Update => "UpdateRowsEvent",
            RowKind::Delete => "DeleteRowsEvent",
            RowKind::Snapshot => "SnapshotRowEvent",
        }
    }
}

/// Which row images an event carries, like DynamoDB Streams' view types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum View {
    /// Only `keys` (and `delta` for updates): the original's events.
    #[default]
    Keys,
    /// Also `newImage`: the row after the change (inserts, updates).
    New,
    /// Also `oldImage`: the row before the change (updates, deletes).
    Old,
    /// Both images.
    Both,
}

impl std::str::FromStr for View {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "keys" => Ok(View::Keys),
            "new" => Ok(View::New),
            "old" => Ok(View::Old),
            "both" => Ok(View::Both),
            other => Err(format!(
                "unknown view {other:?}: expected keys, new, old or both"
            )),
        }
    }
}

impl View {
    fn new_image(self) -> bool {
        matches!(self, View::New | View::Both)
    }
    fn old_image(self) -> bool {
        matches!(self, View::Old | View::Both)
    }
}

/// Everything about one row that goes into its event.
#[derive(Clone, Copy)]
pub(crate) struct RowRef<'a> {
    pub table: &'a TableMeta,
    pub kind: RowKind,
    pub timestamp: u32,
    /// `file:pos` of the rows event.
    pub position: &'a str,
    /// The row's index within its rows event.
    pub index: u32,
    pub gtid: Option<&'a str>,
    pub before: Option<&'a RowImage>,
    pub after: Option<&'a RowImage>,
}

/// Writes events as JSON, reusing its scratch space across rows.
#[derive(Default)]
pub(crate) struct EventWriter {
    changed: Vec<usize>,
    scratch: Vec<u8>,
    /// What a table's column rules put over the images (before, after).
    overlays: (Overlay, Overlay),
    hashes: HashCache,
}

impl EventWriter {
    /// Appends one event (without a newline) to `out`.
    pub fn write(&mut self, row: &RowRef<'_>, view: View, out: &mut Vec<u8>) {
        self.write_head(row, view, out);
        Self::write_tail(row, out);
    }

    /// The event's fields before `position` (from `{` on). Rows that share
    /// their position, table, timestamp and kind (a snapshot range's) share
    /// the rest: see [`EventWriter::write_tail`].
    pub(crate) fn write_head(&mut self, row: &RowRef<'_>, view: View, out: &mut Vec<u8>) {
        let Some(rules) = &row.table.rules else {
            return self.write_images(row, row.before, row.after, view, out);
        };
        // Under column rules the ruled images are written; which columns
        // changed is still decided on the clear ones.
        let (mut over_before, mut over_after) = std::mem::take(&mut self.overlays);
        let before = row.before.map(|clear| {
            rules.apply(clear, &mut over_before, &mut self.hashes);
            Ruled {
                clear,
                over: &over_before,
            }
        });
        let after = row.after.map(|clear| {
            rules.apply(clear, &mut over_after, &mut self.hashes);
            Ruled {
                clear,
                over: &over_after,
            }
        });
        self.write_images(row, before.as_ref(), after.as_ref(), view, out);
        self.overlays = (over_before, over_after);
    }

    /// The head of `row`'s event with `before` and `after` as its images
    /// (`row`'s own, or as its column rules make them).
    fn write_images<I: Columns>(
        &mut self,
        row: &RowRef<'_>,
        before: Option<&I>,
        after: Option<&I>,
        view: View,
        out: &mut Vec<u8>,
    ) {
        let t = row.table;
        // The image that identifies the row: after for inserts and updates
        // (the original's choice), before for deletes.
        let key_image = match row.kind {
            RowKind::Delete => before,
            _ => after.or(before),
        };
        let partial = row.before.is_some_and(|i| i.partial) || row.after.is_some_and(|i| i.partial);

        out.push(b'{');
        if let (RowKind::Update, Some(clear_before), Some(clear_after), Some(before), Some(after)) =
            (row.kind, row.before, row.after, before, after)
        {
            self.changed.clear();
            for &i in &t.by_name {
                let shown = after.get(i).is_some();
                if let Some(a) = clear_after.get(i).filter(|_| shown) {
                    if clear_before.get(i) != Some(a) {
                        self.changed.push(i);
                    }
                }
            }
            out.extend_from_slice(b"\"columnsChanged\":[");
            for (n, &i) in self.changed.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&t.json_names[i]);
            }
            out.extend_from_slice(b"],\"delta\":{\"after\":");
            self.delta_string(t, after, out);
            out.extend_from_slice(b",\"before\":");
            self.delta_string(t, before, out);
            out.extend_from_slice(b"},");
        }
        write_gtid_and_index(row.gtid, row.index, out);
        out.extend_from_slice(b",\"keys\":");
        match key_image {
            Some(img) if !t.key_by_name.is_empty() => object(t, img, &t.key_by_name, out),
            Some(img) => object(t, img, &t.by_name, out),
            None => out.extend_from_slice(b"{}"),
        }
        // A snapshot row always carries its image: it is the row.
        if view.new_image() || row.kind == RowKind::Snapshot {
            if let Some(img) = after {
                out.extend_from_slice(b",\"newImage\":");
                object(t, img, &t.by_name, out);
            }
        }
        if view.old_image() {
            if let Some(img) = before {
                out.extend_from_slice(b",\"oldImage\":");
                object(t, img, &t.by_name, out);
            }
        }
        if partial {
            out.extend_from_slice(b",\"partial\":true");
        }
    }

    /// The event's fields from `position` on, to its closing `}`.
    pub(crate) fn write_tail(row: &RowRef<'_>, out: &mut Vec<u8>) {
        let t = row.table;
        out.extend_from_slice(b",\"position\":\"");
        out.extend_from_slice(row.position.as_bytes());
        out.extend_from_slice(b"\",\"schema\":");
        json::write_str(out, &t.schema);
        out.extend_from_slice(b",\"table\":");
        json::write_str(out, &t.table);
        out.extend_from_slice(b",\"timestamp\":");
        json::write_u64(out, row.timestamp as u64);
        out.extend_from_slice(b",\"type\":\"");
        out.extend_from_slice(row.kind.name().as_bytes());
        out.extend_from_slice(b"\"}");
    }

    /// The changed columns of `img` as a JSON object, written as a JSON string.
    fn delta_string(&mut self, t: &TableMeta, img: &impl Columns, out: &mut Vec<u8>) {
        self.scratch.clear();
        self.scratch.push(b'{');
        let mut first = true;
        for &i in &self.changed {
            if let Some(v) = img.get(i) {
                if !first {
                    self.scratch.push(b',');
                }
                first = false;
                self.scratch.extend_from_slice(&t.json_names[i]);
                self.scratch.push(b':');
                self.scratch.extend_from_slice(v);
            }
        }
        self.scratch.push(b'}');
        out.push(b'"');
        json::write_escaped_body(out, &self.scratch);
        out.push(b'"');
    }
}

/// `"gtid":...,"index":N` (the GTID when there is one): every event's.
fn write_gtid_and_index(gtid: Option<&str>, index: u32, out: &mut Vec<u8>) {
    if let Some(g) = gtid {
        out.extend_from_slice(b"\"gtid\":");
        json::write_str(out, g);
        out.push(b',');
    }
    out.extend_from_slice(b"\"index\":");
    json::write_u64(out, index as u64);
}

/// `{"col":value,...}` over `cols`, skipping columns absent from the image.
pub(crate) fn object(t: &TableMeta, img: &impl Columns, cols: &[usize], out: &mut Vec<u8>) {
    out.push(b'{');
    let mut first = true;
    for &i in cols {
        if let Some(v) = img.get(i) {
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(&t.json_names[i]);
            out.push(b':');
            out.extend_from_slice(v);
        }
    }
    out.push(b'}');
}

/// The name in the `type` field of a statement's event.
pub(crate) const SCHEMA_CHANGE: &str = "SchemaChangeEvent";

/// Everything about one table a logged statement changed (see
/// [`crate::statement`]) that goes into its `SchemaChangeEvent`.
pub(crate) struct StatementRef<'a> {
    pub kind: StatementKind,
    pub schema: &'a str,
    /// `None` for a statement about every table of the schema.
    pub table: Option<&'a str>,
    pub renamed_to: Option<(&'a str, &'a str)>,
    /// Whether a consumer must read the table anew (see
    /// [`StatementKind::needs_snapshot`]; also a rename into the included set).
    pub snapshot_needed: bool,
    /// The table's definition after the statement, when known.
    pub definition: Option<&'a TableDefinition>,
    /// An ALTER that only added and dropped columns: how held rows follow.
    pub columns: Option<&'a HeldRows>,
    /// The statement as logged.
    pub statement: &'a str,
    pub timestamp: u32,
    pub position: &'a str,
    /// The table's place in its statement (0, 1, ...).
    pub index: u32,
    pub gtid: Option<&'a str>,
}

/// Appends a statement's event (without a newline) to `out`, keys sorted
/// like a row event's.
pub(crate) fn write_statement(ev: &StatementRef<'_>, out: &mut Vec<u8>) {
    out.push(b'{');
    if let Some(rule) = ev.columns {
        out.extend_from_slice(b"\"columnsAdded\":{");
        for (i, (name, value)) in rule.added.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::write_str(out, name);
            out.push(b':');
            out.extend_from_slice(value.to_string().as_bytes());
        }
        out.extend_from_slice(b"},\"columnsDropped\":[");
        for (i, name) in rule.dropped.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::write_str(out, name);
        }
        out.extend_from_slice(b"],\"columnsRenamed\":{");
        for (i, (old, new)) in rule.renamed.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::write_str(out, old);
            out.push(b':');
            json::write_str(out, new);
        }
        out.extend_from_slice(b"},");
    }
    if let Some(d) = ev.definition {
        out.extend_from_slice(b"\"definition\":");
        // A definition's fields are declared in sorted order; writing into
        // a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, d);
        out.push(b',');
    }
    write_gtid_and_index(ev.gtid, ev.index, out);
    out.extend_from_slice(b",\"kind\":");
    json::write_str(out, ev.kind.name());
    if let Some((schema, table)) = ev.renamed_to {
        out.extend_from_slice(b",\"newSchema\":");
        json::write_str(out, schema);
        out.extend_from_slice(b",\"newTable\":");
        json::write_str(out, table);
    }
    out.extend_from_slice(b",\"position\":");
    json::write_str(out, ev.position);
    out.extend_from_slice(b",\"schema\":");
    json::write_str(out, ev.schema);
    out.extend_from_slice(b",\"snapshotNeeded\":");
    out.extend_from_slice(if ev.snapshot_needed {
        b"true"
    } else {
        b"false"
    });
    out.extend_from_slice(b",\"statement\":");
    json::write_str(out, ev.statement);
    if let Some(t) = ev.table {
        out.extend_from_slice(b",\"table\":");
        json::write_str(out, t);
    }
    out.extend_from_slice(b",\"timestamp\":");
    json::write_u64(out, ev.timestamp as u64);
    out.extend_from_slice(b",\"type\":\"");
    out.extend_from_slice(SCHEMA_CHANGE.as_bytes());
    out.extend_from_slice(b"\"}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::column_rules::{ColumnRules, HashKey};
    use crate::schema::{ColumnKind, ColumnMeta};

    fn image(values: &[Option<&str>]) -> RowImage {
        let mut img = RowImage::default();
        img.reset(values.len());
        for (i, v) in values.iter().enumerate() {
            let text = v.unwrap_or("null");
            img.push_with(|o| {
                o.extend_from_slice(text.as_bytes());
                Ok(())
            })
            .unwrap();
            if v.is_none() {
                img.set_absent(i);
            }
        }
        img
    }

    /// crm.people (email, name, password, card), keyed by email, under
    /// rules that hash the key, exclude the password and mask the card.
    fn people() -> TableMeta {
        let columns = ["email", "name", "password", "card"]
            .iter()
            .map(|n| ColumnMeta {
                name: n.to_string(),
                kind: ColumnKind::Null,
            })
            .collect();
        let mut t = TableMeta::from_columns("crm", "people", columns, vec![0]);
        let entries: Vec<String> = ["*.email=hash", "*.password=exclude", "*.card=mask"]
            .iter()
            .map(|e| e.to_string())
            .collect();
        let key = HashKey::new(b"0123456789abcdef-key").unwrap();
        t.rules = ColumnRules::new(&entries, Some(key))
            .unwrap()
            .for_table(&t)
            .unwrap();
        t
    }

    #[test]
    fn an_update_under_column_rules() {
        let t = people();
        let before = image(&[
            Some(r#""a@b.c""#),
            Some(r#""Ann""#),
            Some(r#""pw1""#),
            Some(r#""4111""#),
        ]);
        let after = image(&[
            Some(r#""a@b.c""#),
            Some(r#""Ann""#),
            Some(r#""pw2""#),
            Some(r#""4112""#),
        ]);
        let row = RowRef {
            table: &t,
            kind: RowKind::Update,
            timestamp: 7,
            position: "b.000001:4",
            index: 0,
            gtid: None,
            before: Some(&before),
            after: Some(&after),
        };
        let mut out = Vec::new();
        EventWriter::default().write(&row, View::Both, &mut out);
        // HMAC-SHA-256("0123456789abcdef-key", "a@b.c"), by Python's hmac.
        let h = "55b81ced15999428e2cf2c8be9cdce4128b7e475cdace2c48f3c953af58c369d";
        // The card changed (masked, still a change); the password changed
        // too, but it is excluded: in no image, delta or columnsChanged.
        let want = format!(
            concat!(
                r#"{{"columnsChanged":["card"],"delta":{{"after":"{{\"card\":\"****\"}}","before":"{{\"card\":\"****\"}}"}},"#,
                r#""index":0,"keys":{{"email":"{h}"}},"newImage":{{"card":"****","email":"{h}","name":"Ann"}},"#,
                r#""oldImage":{{"card":"****","email":"{h}","name":"Ann"}},"position":"b.000001:4","schema":"crm","#,
                r#""table":"people","timestamp":7,"type":"UpdateRowsEvent"}}"#
            ),
            h = h
        );
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn a_key_column_may_only_be_hashed() {
        let mut t = people();
        t.rules = None;
        let masked = ColumnRules::new(&["crm.people.email=mask".into()], None).unwrap();
        let e = masked.for_table(&t).unwrap_err();
        assert!(e.contains("crm.people.email is in the primary key"), "{e}");
        let unnamed = TableMeta {
            has_names: false,
            ..t.clone()
        };
        let e = masked.for_table(&unnamed).unwrap_err();
        assert!(e.contains("names are not known"), "{e}");
        let hashed = ColumnRules::for_planning(&["crm.people.name=hash".into()]).unwrap();
        assert!(hashed.for_table(&t).unwrap_err().contains("needs a key"));
    }
}
