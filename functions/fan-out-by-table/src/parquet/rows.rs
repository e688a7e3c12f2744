//! One row group's rows: each change event line read (serde, borrowing
//! from the line) and spread over the leaves in the schema's order
//! (`schema.rs`): the event's fields, the row after the change, then
//! `_cdc_old`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::leaves::{Leaf, Values};
use super::schema::{ObjectColumns, Storage};
use super::values::{self, Cell};

/// A row image's columns and values, in the event's (name) order; the
/// names borrowed from the line unless they hold escapes.
struct Image<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Image<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = Image<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a row image")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Image<'de>, M::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(Name(name)) = map.next_key()? {
                    pairs.push((name, map.next_value()?));
                }
                Ok(Image(pairs))
            }
        }
        d.deserialize_map(Pairs)
    }
}

/// A column name: borrowed from the line when it has no escapes.
struct Name<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Name<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Str;
        impl<'de> Visitor<'de> for Str {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a column name")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(Str)
    }
}

/// The fields of a change event the object holds (docs/EVENTS.md).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    kind_of_event: Cow<'a, str>,
    #[serde(borrow)]
    position: Cow<'a, str>,
    index: i64,
    #[serde(default, borrow)]
    gtid: Option<Cow<'a, str>>,
    timestamp: i64,
    #[serde(default, borrow)]
    keys: Option<Image<'a>>,
    #[serde(default, borrow)]
    new_image: Option<Image<'a>>,
    #[serde(default, borrow)]
    old_image: Option<Image<'a>>,
    #[serde(default, borrow)]
    columns_changed: Option<Vec<Cow<'a, str>>>,
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    #[serde(default)]
    partial: bool,
    #[serde(default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    snapshot_needed: Option<bool>,
    #[serde(default, borrow)]
    new_schema: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    new_table: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    columns_added: Option<Image<'a>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow)]
    before: Cow<'a, str>,
}

/// The event fields' leaves, in the schema's order.
const EVENT_LEAVES: usize = 14;

/// Rows buffered for the next row group.
pub struct Rows {
    columns: ObjectColumns,
    /// Column indexes by name, for finding an image's names.
    by_name: Vec<usize>,
    leaves: Vec<Leaf>,
    pub count: usize,
}

/// Why a line could not be a row: what, and the column when one is named.
#[derive(Debug)]
pub struct BadValue {
    pub position: String,
    pub column: Option<String>,
    pub msg: String,
}

/// Each table column's value in one image (`None`: absent).
type Slots<'a> = Vec<Option<&'a RawValue>>;

impl Rows {
    pub fn new(columns: ObjectColumns) -> Self {
        let (req, opt) = (false, true);
        let bytes = Values::bytes;
        let mut leaves = vec![
            Leaf::new(bytes(), req, false),                  // _cdc_type
            Leaf::new(bytes(), req, false),                  // _cdc_file
            Leaf::new(Values::I64(Vec::new()), req, false),  // _cdc_pos
            Leaf::new(Values::I64(Vec::new()), req, false),  // _cdc_index
            Leaf::new(bytes(), opt, true),                   // _cdc_keys
            Leaf::new(bytes(), opt, false),                  // _cdc_gtid
            Leaf::new(Values::I64(Vec::new()), req, false),  // _cdc_timestamp
            Leaf::new(bytes(), opt, true),                   // _cdc_columns_changed
            Leaf::new(Values::Bool(Vec::new()), req, false), // _cdc_partial
            Leaf::new(bytes(), opt, false),                  // _cdc_kind
            Leaf::new(Values::Bool(Vec::new()), opt, false), // _cdc_snapshot_needed
            Leaf::new(bytes(), opt, false),                  // _cdc_new_schema
            Leaf::new(bytes(), opt, false),                  // _cdc_new_table
            Leaf::new(bytes(), opt, false),                  // _cdc_event
        ];
        debug_assert_eq!(leaves.len(), EVENT_LEAVES);
        for _image in 0..2 {
            for c in &columns.columns {
                leaves.push(table_leaf(c.storage));
            }
            leaves.push(Leaf::new(bytes(), opt, false)); // _cdc_as_json
        }
        let mut by_name: Vec<usize> = (0..columns.columns.len()).collect();
        by_name.sort_by(|&a, &b| columns.columns[a].name.cmp(&columns.columns[b].name));
        Rows {
            columns,
            by_name,
            leaves,
            count: 0,
        }
    }

    /// Moves `other`'s rows (of the same columns) after these.
    pub fn append(&mut self, other: &mut Rows) {
        for (leaf, theirs) in self.leaves.iter_mut().zip(other.leaves.iter_mut()) {
            leaf.append(theirs);
        }
        self.count += std::mem::take(&mut other.count);
    }

    pub fn leaves(&mut self) -> &mut [Leaf] {
        &mut self.leaves
    }

    /// Adds the event `line` as a row.
    pub fn add(&mut self, line: &str) -> Result<(), BadValue> {
        let bad = |column: Option<String>, msg: String| BadValue {
            position: position_of(line),
            column,
            msg,
        };
        let ev: Event<'_> = serde_json::from_str(line)
            .map_err(|e| bad(None, format!("not a change event: {e}")))?;
        let (file, pos) = ev
            .position
            .rsplit_once(':')
            .and_then(|(f, p)| Some((f, p.parse::<i64>().ok()?)))
            .ok_or_else(|| bad(None, format!("position {:?} is not file:pos", ev.position)))?;
        let statement = ev.kind_of_event == "SchemaChangeEvent";
        // The row after the change, or its key (a statement's: the values
        // of the columns it added); and the row before it.
        let after = match ev.new_image.as_ref().or(ev.keys.as_ref()) {
            Some(img) => Some(self.slots(img).map_err(|c| unknown(&bad, c))?),
            // A column a statement added may be in no layout of the run
            // (no row event followed it): its value stays in `_cdc_event`.
            None => ev.columns_added.as_ref().map(|img| self.known_slots(img)),
        };
        let changed = changed_before(&ev).map_err(|m| bad(None, m))?;
        let before = self
            .before(&ev, changed.as_ref())
            .map_err(|c| unknown(&bad, c))?;
        let key_names: Option<Vec<&str>> = ev
            .keys
            .as_ref()
            .map(|k| k.0.iter().map(|(n, _)| n.as_ref()).collect());
        let [ty, f, p, i, keys, gtid, ts, cols_changed, partial, kind, snap, nschema, ntable, event, rest @ ..] =
            &mut self.leaves[..]
        else {
            return Err(bad(None, "the row has too few columns".into()));
        };
        push_text(ty, 0, Some(&ev.kind_of_event));
        push_text(f, 0, Some(file));
        push_i64(p, pos);
        push_i64(i, ev.index);
        push_texts(keys, 0, key_names.as_deref());
        push_text(gtid, 0, ev.gtid.as_deref());
        push_i64(ts, ev.timestamp * 1000);
        push_texts(cols_changed, 0, ev.columns_changed.as_deref());
        push_bool(partial, 0, Some(ev.partial));
        push_text(kind, 0, ev.kind.as_deref());
        push_bool(snap, 0, ev.snapshot_needed);
        push_text(nschema, 0, ev.new_schema.as_deref());
        push_text(ntable, 0, ev.new_table.as_deref());
        push_text(event, 0, statement.then_some(line));
        let n = self.columns.columns.len();
        let (new_leaves, old_leaves) = rest.split_at_mut(n + 1);
        fill_image(&self.columns, new_leaves, after.as_deref(), 0)
            .map_err(|(c, m)| bad(Some(c), m))?;
        match before.as_ref() {
            Some(slots) => fill_image(&self.columns, old_leaves, Some(slots), 1)
                .map_err(|(c, m)| bad(Some(c), m))?,
            None => old_leaves.iter_mut().for_each(|l| l.null(0)),
        }
        self.count += 1;
        Ok(())
    }

    /// `img`'s values by column; `Err` names a column the object lacks.
    /// Events write names in order, so each is looked for from where the
    /// last one was found (one comparison, usually), then anywhere.
    fn slots<'a>(&self, img: &Image<'a>) -> Result<Slots<'a>, String> {
        let cols = &self.columns.columns;
        let name_at = |k: usize| cols[self.by_name[k]].name.as_str();
        let mut slots = vec![None; cols.len()];
        let mut next = 0;
        for (name, v) in &img.0 {
            let found = match (next..self.by_name.len()).find(|&k| name_at(k) >= name.as_ref()) {
                Some(k) if name_at(k) == name => k,
                _ => self
                    .by_name
                    .binary_search_by(|&c| cols[c].name.as_str().cmp(name))
                    .map_err(|_| name.to_string())?,
            };
            slots[self.by_name[found]] = Some(*v);
            next = found + 1;
        }
        Ok(slots)
    }

    /// [`Rows::slots`] of the names the object has; the others left out.
    fn known_slots<'a>(&self, img: &Image<'a>) -> Slots<'a> {
        let mut slots = vec![None; self.columns.columns.len()];
        for (name, v) in &img.0 {
            if let Some(at) = self.columns.index(name) {
                slots[at] = Some(*v);
            }
        }
        slots
    }

    /// The row before the change: `oldImage`, or else (updates and
    /// deletes) the key before it: `keys`, with an update's changed key
    /// columns from `delta.before`.
    fn before<'a>(
        &self,
        ev: &Event<'a>,
        changed: Option<&'a BTreeMap<String, Box<RawValue>>>,
    ) -> Result<Option<Slots<'a>>, String> {
        if let Some(old) = &ev.old_image {
            return self.slots(old).map(Some);
        }
        let (Some(keys), "UpdateRowsEvent" | "DeleteRowsEvent") =
            (ev.keys.as_ref(), ev.kind_of_event.as_ref())
        else {
            return Ok(None);
        };
        let mut slots = self.slots(keys)?;
        for (name, v) in changed.into_iter().flatten() {
            if keys.0.iter().any(|(k, _)| k == name) {
                let at = self.columns.index(name).ok_or_else(|| name.clone())?;
                slots[at] = Some(v);
            }
        }
        Ok(Some(slots))
    }
}

/// A column in an image the table's layouts never had.
fn unknown(bad: &impl Fn(Option<String>, String) -> BadValue, column: String) -> BadValue {
    bad(
        Some(column),
        "the column is in no layout of the table".into(),
    )
}

/// An update's changed columns before it (`delta.before`, JSON text inside
/// a string), when the event has no `oldImage` to take its old key from.
fn changed_before(ev: &Event<'_>) -> Result<Option<BTreeMap<String, Box<RawValue>>>, String> {
    match (&ev.old_image, &ev.delta) {
        (None, Some(delta)) => serde_json::from_str(&delta.before)
            .map(Some)
            .map_err(|e| format!("delta.before is not a JSON object: {e}")),
        _ => Ok(None),
    }
}

fn table_leaf(storage: Storage) -> Leaf {
    let values = match storage {
        Storage::Int32(_) | Storage::Date => Values::I32(Vec::new()),
        Storage::Int64 | Storage::Timestamp(_) | Storage::Micros => Values::I64(Vec::new()),
        Storage::Decimal { precision, .. } => Values::Fixed {
            data: Vec::new(),
            width: Storage::decimal_bytes(precision),
        },
        Storage::Float | Storage::Floats => Values::F32(Vec::new()),
        Storage::Double => Values::F64(Vec::new()),
        Storage::Text | Storage::Json | Storage::Bytes | Storage::Wkb | Storage::Texts => {
            Values::bytes()
        }
    };
    let list = matches!(storage, Storage::Floats | Storage::Texts);
    Leaf::new(values, true, list)
}

/// `position` of a line, for an error about it.
fn position_of(line: &str) -> String {
    #[derive(Deserialize)]
    struct At {
        position: String,
    }
    serde_json::from_str::<At>(line)
        .map(|a| a.position)
        .unwrap_or_else(|_| "an event without a position".into())
}

fn push_i64(leaf: &mut Leaf, v: i64) {
    if let Values::I64(vals) = &mut leaf.values {
        vals.push(v);
    }
    leaf.defined(0, true);
}

fn push_bool(leaf: &mut Leaf, base: i16, v: Option<bool>) {
    match (v, &mut leaf.values) {
        (Some(v), Values::Bool(vals)) => {
            vals.push(v);
            leaf.defined(base + 1, true);
        }
        _ => leaf.null(base),
    }
}

fn push_text(leaf: &mut Leaf, base: i16, v: Option<&str>) {
    match v {
        Some(s) => {
            leaf.values.push_bytes(s.as_bytes());
            leaf.defined(base + 1, true);
        }
        None => leaf.null(base),
    }
}

/// A LIST<STRING>: NULL, empty, or its elements.
fn push_texts<S: AsRef<str>>(leaf: &mut Leaf, base: i16, v: Option<&[S]>) {
    let Some(items) = v else {
        return leaf.null(base);
    };
    if items.is_empty() {
        return leaf.null(base + 1);
    }
    for (k, s) in items.iter().enumerate() {
        leaf.values.push_bytes(s.as_ref().as_bytes());
        leaf.defined(base + 2, k == 0);
    }
}

fn push_floats(leaf: &mut Leaf, base: i16, items: &[f32]) {
    if items.is_empty() {
        return leaf.null(base + 1);
    }
    for (k, f) in items.iter().enumerate() {
        if let Values::F32(vals) = &mut leaf.values {
            vals.push(*f);
        }
        leaf.defined(base + 2, k == 0);
    }
}

/// Fills one image's leaves (the table's columns, then `_cdc_as_json`) at
/// `base` (0 at top level, 1 inside `_cdc_old`); a column the image lacks
/// is NULL. An error names the column.
fn fill_image(
    cols: &ObjectColumns,
    leaves: &mut [Leaf],
    slots: Option<&[Option<&RawValue>]>,
    base: i16,
) -> Result<(), (String, String)> {
    let n = cols.columns.len();
    let mut as_json: Vec<(&str, &RawValue)> = Vec::new();
    for (k, (c, leaf)) in cols.columns.iter().zip(leaves.iter_mut()).enumerate() {
        let Some(raw) = slots.and_then(|s| s[k]) else {
            leaf.null(base);
            continue;
        };
        let cell = match c.value {
            Some(ty) => values::read(ty, raw).map_err(|m| (c.name.clone(), m))?,
            None => Cell::Text(Cow::Borrowed(raw.get())),
        };
        if put(leaf, c.storage, cell, base).map_err(|m| (c.name.clone(), m))? {
            as_json.push((&c.name, raw));
        }
    }
    let json_leaf = &mut leaves[n];
    if as_json.is_empty() {
        json_leaf.null(base);
    } else {
        let map: BTreeMap<&str, &RawValue> = as_json.into_iter().collect();
        let text = serde_json::to_string(&map).map_err(|e| (String::new(), e.to_string()))?;
        push_text(json_leaf, base, Some(&text));
    }
    Ok(())
}

/// Puts `cell` into `leaf`; returns whether the value also goes to
/// `_cdc_as_json` (a typed column cannot hold it whole).
fn put(leaf: &mut Leaf, storage: Storage, cell: Cell<'_>, base: i16) -> Result<bool, String> {
    let present = base + 1;
    match (cell, storage, &mut leaf.values) {
        (Cell::Null, ..) => leaf.null(base),
        (Cell::NotTyped, ..) => {
            leaf.null(base);
            return Ok(true);
        }
        (Cell::Int(v), Storage::Int32(_) | Storage::Date, Values::I32(vals)) => {
            vals.push(i32::try_from(v).map_err(|_| format!("{v} does not fit 32 bits"))?);
            leaf.defined(present, true);
        }
        (
            Cell::Int(v),
            Storage::Int64 | Storage::Timestamp(_) | Storage::Micros,
            Values::I64(vals),
        ) => {
            vals.push(v);
            leaf.defined(present, true);
        }
        (Cell::Int(v), Storage::Decimal { precision, .. }, values) => {
            let (be, from) = decimal_bytes(v.into(), precision);
            values.push_bytes(&be[from..]);
            leaf.defined(present, true);
        }
        (Cell::Decimal(v), Storage::Decimal { precision, .. }, values) => {
            let (be, from) = decimal_bytes(v, precision);
            values.push_bytes(&be[from..]);
            leaf.defined(present, true);
        }
        (Cell::Float(v), Storage::Float, Values::F32(vals)) => {
            vals.push(v);
            leaf.defined(present, true);
        }
        (Cell::Double(v), Storage::Double, Values::F64(vals)) => {
            vals.push(v);
            leaf.defined(present, true);
        }
        (Cell::Text(s), Storage::Text | Storage::Json, values) => {
            values.push_bytes(s.as_bytes());
            leaf.defined(present, true);
        }
        (Cell::Bytes(b), Storage::Bytes, values) => {
            values.push_bytes(&b);
            leaf.defined(present, true);
        }
        (Cell::Geometry { srid, wkb }, Storage::Wkb, values) => {
            values.push_bytes(&wkb);
            leaf.defined(present, true);
            return Ok(srid != 0);
        }
        (Cell::Floats(f), Storage::Floats, _) => push_floats(leaf, base, &f),
        (Cell::Texts(t), Storage::Texts, _) => push_texts(leaf, base, Some(&t)),
        (cell, storage, _) => {
            return Err(format!("a {cell:?} does not go in a {storage:?} column"));
        }
    }
    Ok(false)
}

/// A decimal's unscaled value as the big-endian two's complement of its
/// precision's width: the last bytes of the array, from the index given.
fn decimal_bytes(v: i128, precision: u8) -> ([u8; 16], usize) {
    (v.to_be_bytes(), 16 - Storage::decimal_bytes(precision))
}
