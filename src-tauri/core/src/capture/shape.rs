//! Schema drift: per event type, the JSON paths seen and the kinds of value at each, and
//! what a new delivery adds, drops or retypes compared with everything before it. Pure:
//! the store keeps them (the `event_shapes` table).
//!
//! Paths use dots for object keys and `[]` for array items (`contact.tags[].name`). Two
//! variations are not drift: `null` where something else was seen (optional values), and
//! an empty `[]` or `{}` where the other container was seen (PHP encodes an empty map as
//! `[]`, so systeme.io's `fields` comes both ways).
//!
//! Open-keyed maps are learned as maps: their keys are data, not schema (the fields of an
//! order form, ids). An object is taken for one when its key is `fields`, `custom_fields`
//! or `customFields` (systeme.io's `customer.fields`, `contact.fields`, at any depth), or
//! when all its keys are numbers (a map by id). Its entries are learned under one path,
//! `customer.fields.*`: a key that comes or goes is no change, a value of another kind
//! is, and so is the map turning into something else.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Kinds of JSON value, as bits so a path can hold several in one delivery (array items).
pub const STRING: u8 = 1;
pub const NUMBER: u8 = 2;
pub const BOOLEAN: u8 = 4;
pub const NULL: u8 = 8;
pub const OBJECT: u8 = 16;
pub const ARRAY: u8 = 32;
/// An empty array or object: either container.
pub const EMPTY: u8 = 64;

const KIND_NAMES: [(u8, &str); 7] = [
    (STRING, "string"),
    (NUMBER, "number"),
    (BOOLEAN, "boolean"),
    (NULL, "null"),
    (OBJECT, "object"),
    (ARRAY, "array"),
    (EMPTY, "empty"),
];

/// Past this many paths or this depth a payload is not learned from (it is no webhook
/// schema, and its shape would bloat the store).
const MAX_PATHS: usize = 2_000;
const MAX_DEPTH: usize = 32;
/// A longer path (a key that is data, not a field name) is no schema either.
const MAX_PATH_BYTES: usize = 256;
/// Paths one type's stored shape keeps; beyond it new paths are still reported as drift
/// but no longer remembered (payloads keyed by ids would grow it without end).
const MAX_SHAPE_PATHS: usize = 5_000;

/// The paths of one delivery and the kinds of value at each. `None` when the payload is
/// too large or deep to be a shape worth learning.
pub type Paths = BTreeMap<String, u8>;

pub fn paths_of(json: &Value) -> Option<Paths> {
    let mut paths = Paths::new();
    walk(json, &mut String::new(), 0, &mut paths).then_some(paths)
}

fn walk(value: &Value, path: &mut String, depth: usize, out: &mut Paths) -> bool {
    if depth > MAX_DEPTH || out.len() > MAX_PATHS || path.len() > MAX_PATH_BYTES {
        return false;
    }
    if !path.is_empty() {
        *out.entry(path.clone()).or_default() |= kind_of(value);
    }
    let len = path.len();
    match value {
        Value::Object(map) if open_keyed(path, map) => map.values().all(|child| {
            path.push_str(".*");
            let ok = walk(child, path, depth + 1, out);
            path.truncate(len);
            ok
        }),
        Value::Object(map) => map.iter().all(|(key, child)| {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
            let ok = walk(child, path, depth + 1, out);
            path.truncate(len);
            ok
        }),
        Value::Array(items) => items.iter().all(|child| {
            path.push_str("[]");
            let ok = walk(child, path, depth + 1, out);
            path.truncate(len);
            ok
        }),
        _ => true,
    }
}

/// Keys whose object holds data keyed by name (an order form's fields), not a schema.
const MAP_KEYS: [&str; 3] = ["fields", "custom_fields", "customFields"];

/// Whether the object at `path` is an open-keyed map (see the module's doc).
fn open_keyed(path: &str, map: &serde_json::Map<String, Value>) -> bool {
    let key = path.rsplit('.').next().unwrap_or(path);
    let key = key.trim_end_matches("[]");
    MAP_KEYS.contains(&key)
        || (!map.is_empty()
            && map
                .keys()
                .all(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit())))
}

fn kind_of(value: &Value) -> u8 {
    match value {
        Value::String(_) => STRING,
        Value::Number(_) => NUMBER,
        Value::Bool(_) => BOOLEAN,
        Value::Null => NULL,
        Value::Object(map) if map.is_empty() => EMPTY,
        Value::Array(items) if items.is_empty() => EMPTY,
        Value::Object(_) => OBJECT,
        Value::Array(_) => ARRAY,
    }
}

pub fn kind_names(kinds: u8) -> Vec<&'static str> {
    KIND_NAMES
        .iter()
        .filter(|(bit, _)| kinds & bit != 0)
        .map(|(_, name)| *name)
        .collect()
}

/// What has been seen of one event type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    pub deliveries: i64,
    pub paths: BTreeMap<String, PathStats>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PathStats {
    /// Deliveries that had this path.
    pub seen: i64,
    /// Kind name → deliveries in which the path held that kind.
    pub kinds: BTreeMap<String, i64>,
}

impl PathStats {
    fn kinds_mask(&self) -> u8 {
        KIND_NAMES
            .iter()
            .filter(|(_, name)| self.kinds.contains_key(*name))
            .fold(0, |mask, (bit, _)| mask | bit)
    }
}

/// One difference between a delivery and the shape before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[ts(rename = "DriftChange")]
pub struct Change {
    pub path: String,
    /// `added`, `dropped` or `retyped`.
    #[ts(type = "'added' | 'dropped' | 'retyped'")]
    pub change: String,
    /// Kinds seen before (dropped, retyped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub was: Vec<String>,
    /// Kinds in this delivery (added, retyped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub now: Vec<String>,
}

fn parent(path: &str) -> Option<&str> {
    if let Some(stripped) = path.strip_suffix("[]") {
        return Some(stripped);
    }
    path.rfind(['.', '['])
        .map(|i| &path[..i])
        .filter(|p| !p.is_empty())
}

fn compatible(now: u8, was: u8) -> bool {
    if was & !NULL == 0 {
        return true; // only ever null (or nothing): the first real value tells
    }
    // Optional values and PHP's empty map/list are not drift.
    let mut allowed = was | NULL;
    if was & (OBJECT | ARRAY) != 0 {
        allowed |= EMPTY;
    }
    if was & !(EMPTY | NULL) == 0 {
        allowed |= OBJECT | ARRAY; // only ever empty: the first filled one shows its kind
    }
    now & !allowed == 0
}

impl Shape {
    /// How `paths` differs from what was seen before; empty for the first delivery.
    pub fn compare(&self, paths: &Paths) -> Vec<Change> {
        if self.deliveries == 0 {
            return Vec::new();
        }
        let mut changes = Vec::new();
        for (path, &now) in paths {
            match self.paths.get(path) {
                None => {
                    // Report where the new part starts, not every path inside it; and the
                    // contents of a container only ever seen empty (`fields: []`) are
                    // what it always could hold, not drift.
                    let inside_known = parent(path).is_some_and(|p| match self.paths.get(p) {
                        None => paths.contains_key(p),
                        Some(stats) => stats.kinds_mask() & !(EMPTY | NULL) == 0,
                    });
                    if !inside_known {
                        changes.push(Change {
                            path: path.clone(),
                            change: "added".into(),
                            was: vec![],
                            now: names(now),
                        });
                    }
                }
                Some(stats) => {
                    let was = stats.kinds_mask();
                    if !compatible(now, was) {
                        changes.push(Change {
                            path: path.clone(),
                            change: "retyped".into(),
                            was: names(was),
                            now: names(now),
                        });
                    }
                }
            }
        }
        for (path, stats) in &self.paths {
            if stats.seen < self.deliveries || paths.contains_key(path) {
                continue; // optional, or present
            }
            // Only where the missing part starts, and not inside a container that came
            // empty or null this time.
            let reported_above = match parent(path) {
                None => false,
                // Missing above, empty or null above, or above no longer a container (its
                // retype says it all).
                Some(p) => match paths.get(p) {
                    None => true,
                    Some(&kinds) => kinds & (OBJECT | ARRAY) == 0,
                },
            };
            if !reported_above {
                changes.push(Change {
                    path: path.clone(),
                    change: "dropped".into(),
                    was: names(stats.kinds_mask()),
                    now: vec![],
                });
            }
        }
        changes
    }

    pub fn learn(&mut self, paths: &Paths) {
        self.learn_many(paths, 1);
    }

    /// Learns `count` deliveries that all had `paths`.
    fn learn_many(&mut self, paths: &Paths, count: i64) {
        self.deliveries += count;
        for (path, &kinds) in paths {
            if !self.paths.contains_key(path) && self.paths.len() >= MAX_SHAPE_PATHS {
                continue;
            }
            let stats = self.paths.entry(path.clone()).or_default();
            stats.seen += count;
            for name in kind_names(kinds) {
                *stats.kinds.entry(name.to_string()).or_default() += count;
            }
        }
    }
}

/// Variants of a type's payload: most deliveries of a type share their exact set of paths
/// and kinds, so a type is stored as its distinct variants with a count each. A delivery
/// like one seen before costs a hash lookup and cannot drift (every path and kind in it
/// was seen, and no path it lacks can have been in every earlier delivery); only a new
/// variant is compared with the whole shape.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Learned {
    pub variants: Vec<Variant>,
    /// Deliveries past [`MAX_VARIANTS`] distinct variants, summed path by path.
    #[serde(default)]
    pub others: Shape,
    #[serde(skip)]
    index: HashMap<u64, usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Variant {
    pub count: i64,
    /// Path → kinds bits.
    pub paths: Paths,
}

/// Distinct variants one type keeps; beyond, deliveries are summed into `others`.
const MAX_VARIANTS: usize = 200;

/// A variant's identity, kept with each event (`events.variant`) so that a type's shape can
/// be learned again without decoding bodies: stable across versions and processes.
pub fn fingerprint(paths: &Paths) -> u64 {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for (path, kinds) in paths {
        hash.update(path.as_bytes());
        hash.update([0, *kinds]);
    }
    u64::from_le_bytes(hash.finalize()[..8].try_into().expect("eight bytes"))
}

impl Learned {
    pub fn deliveries(&self) -> i64 {
        self.variants.iter().map(|v| v.count).sum::<i64>() + self.others.deliveries
    }

    /// Every path with how often it appeared and with which kinds.
    pub fn shape(&self) -> Shape {
        let mut shape = self.others.clone();
        for variant in &self.variants {
            shape.learn_many(&variant.paths, variant.count);
        }
        shape
    }

    /// The paths of a variant this shape keeps, by its fingerprint.
    pub fn variant_paths(&self, fingerprint: u64) -> Option<&Paths> {
        self.index
            .get(&fingerprint)
            .map(|&i| &self.variants[i].paths)
    }

    /// Rebuilds the variant index after deserialising.
    pub fn reindex(&mut self) {
        self.index = self
            .variants
            .iter()
            .enumerate()
            .map(|(i, v)| (fingerprint(&v.paths), i))
            .collect();
    }

    /// Learns a delivery; returns how it differs from everything before (unless `quiet`).
    pub fn record(&mut self, paths: &Paths, quiet: bool) -> Vec<Change> {
        self.record_variant(paths, fingerprint(paths), quiet)
    }

    /// [`Learned::record`] for paths whose [`fingerprint`] is `key`, made already.
    pub fn record_variant(&mut self, paths: &Paths, key: u64, quiet: bool) -> Vec<Change> {
        debug_assert_eq!(key, fingerprint(paths));
        if let Some(&i) = self.index.get(&key) {
            self.variants[i].count += 1;
            return Vec::new();
        }
        let changes = if quiet {
            Vec::new()
        } else {
            self.shape().compare(paths)
        };
        if self.variants.len() < MAX_VARIANTS {
            self.index.insert(key, self.variants.len());
            self.variants.push(Variant {
                count: 1,
                paths: paths.clone(),
            });
        } else {
            self.others.learn(paths);
        }
        changes
    }
}

fn names(kinds: u8) -> Vec<String> {
    kind_names(kinds).into_iter().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(json: &str) -> Paths {
        paths_of(&serde_json::from_str(json).unwrap()).unwrap()
    }

    fn shape_of(samples: &[&str]) -> Shape {
        let mut shape = Shape::default();
        for sample in samples {
            shape.learn(&paths(sample));
        }
        shape
    }

    fn changes(shape: &Shape, json: &str) -> Vec<(String, String)> {
        shape
            .compare(&paths(json))
            .into_iter()
            .map(|c| (c.path, c.change))
            .collect()
    }

    #[test]
    fn paths_name_keys_and_array_items() {
        let p = paths(r#"{"a":{"b":1,"c":[{"d":"x"},{"d":null}]},"e":[]}"#);
        assert_eq!(p["a"], OBJECT);
        assert_eq!(p["a.b"], NUMBER);
        assert_eq!(p["a.c"], ARRAY);
        assert_eq!(p["a.c[].d"], STRING | NULL);
        assert_eq!(p["e"], EMPTY);
        assert!(
            paths_of(
                &serde_json::from_str(&format!("{}1{}", "[".repeat(40), "]".repeat(40))).unwrap()
            )
            .is_none()
        );
        // A key that is data, not a field name: not a schema.
        let long_key = format!(r#"{{"{}":{{"a":1}}}}"#, "k".repeat(300));
        assert!(paths_of(&serde_json::from_str(&long_key).unwrap()).is_none());
    }

    #[test]
    fn added_dropped_and_retyped_are_reported_where_they_start() {
        let shape = shape_of(&[
            r#"{"contact":{"id":1,"email":"a@b.c","tags":[{"id":1,"name":"x"}]}}"#,
            r#"{"contact":{"id":2,"email":"d@e.f","tags":[]}}"#,
        ]);
        assert!(changes(&shape, r#"{"contact":{"id":3,"email":"g@h.i","tags":[]}}"#).is_empty());
        assert_eq!(
            changes(
                &shape,
                r#"{"contact":{"id":"3","email":"g@h.i","phone":{"n":"1"}}}"#
            ),
            vec![
                ("contact.id".to_string(), "retyped".to_string()),
                ("contact.phone".to_string(), "added".to_string()),
                ("contact.tags".to_string(), "dropped".to_string()),
            ],
            "the tag items were optional, so only tags itself is dropped; phone.n is inside the addition"
        );
        assert_eq!(
            changes(&shape, r#"{"contact":{"email":"g@h.i","tags":[]}}"#),
            vec![("contact.id".to_string(), "dropped".to_string())]
        );
        assert_eq!(
            changes(&shape, r#"{"other":1}"#),
            vec![
                ("other".to_string(), "added".to_string()),
                ("contact".to_string(), "dropped".to_string()),
            ]
        );
    }

    #[test]
    fn variants_are_counted_and_only_new_ones_compared() {
        let mut learned = Learned::default();
        let a = paths(r#"{"id":1,"email":"a@b.c"}"#);
        let b = paths(r#"{"id":1,"email":"a@b.c","phone":"1"}"#);
        assert!(
            learned.record(&a, false).is_empty(),
            "the first is the baseline"
        );
        assert!(learned.record(&a, false).is_empty());
        assert_eq!(learned.record(&b, false).len(), 1, "phone added");
        assert!(
            learned.record(&b, false).is_empty(),
            "a variant seen before"
        );
        // Missing an always-present field is drift even after many deliveries.
        assert_eq!(
            learned.record(&paths(r#"{"email":"a@b.c"}"#), false)[0].change,
            "dropped"
        );
        assert_eq!(learned.variants.len(), 3);
        assert_eq!(learned.deliveries(), 5);
        let shape = learned.shape();
        assert_eq!(shape.paths["phone"].seen, 2);
        assert_eq!(shape.paths["id"].seen, 4);
        // Stored and loaded again, it still recognises its variants.
        let mut again: Learned =
            serde_json::from_str(&serde_json::to_string(&learned).unwrap()).unwrap();
        again.reindex();
        assert!(again.record(&b, false).is_empty());
        assert_eq!(again.deliveries(), 6);
    }

    #[test]
    fn known_variants_are_not_drift() {
        // `fields` as an object, then as PHP's empty list; an optional value coming null.
        let shape = shape_of(&[
            r#"{"fields":{"first_name":"A"},"coupon":{"code":"X"}}"#,
            r#"{"fields":{"first_name":"B"},"coupon":{"code":"Y"}}"#,
        ]);
        assert!(changes(&shape, r#"{"fields":[],"coupon":null}"#).is_empty());
        let empty_first = shape_of(&[r#"{"fields":[]}"#]);
        assert!(changes(&empty_first, r#"{"fields":{"first_name":"A"}}"#).is_empty());
        // `fields` is a map: which fields an order form has is data, not a shape change;
        // a value of another kind, or the map turning into something else, still is.
        let filled = shape_of(&[r#"{"customer":{"fields":{"first_name":"A","postcode":"1"}}}"#]);
        assert!(
            changes(
                &filled,
                r#"{"customer":{"fields":{"first_name":"A","phone":"1"}}}"#
            )
            .is_empty(),
            "a field added and one dropped"
        );
        assert_eq!(
            changes(&filled, r#"{"customer":{"fields":{"first_name":5}}}"#),
            vec![("customer.fields.*".to_string(), "retyped".to_string())]
        );
        assert_eq!(
            changes(&filled, r#"{"customer":{"fields":"none"}}"#),
            vec![("customer.fields".to_string(), "retyped".to_string())]
        );
        // Keyed by ids: a map too.
        let by_id = shape_of(&[r#"{"items":{"17":{"qty":1}}}"#]);
        assert!(changes(&by_id, r#"{"items":{"18":{"qty":2},"19":{"qty":1}}}"#).is_empty());
        assert!(
            shape_of(&[]).compare(&paths(r#"{"x":1}"#)).is_empty(),
            "nothing to compare with"
        );
    }
}
