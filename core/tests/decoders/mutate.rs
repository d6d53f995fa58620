//! Mutations of valid files: byte edits, and for JSON files edits of the
//! parsed value (huge or negative numbers, wrong types, unknown fields).

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Map, Value};

/// One edit of a file's bytes.
#[derive(Debug, Clone)]
pub enum ByteEdit {
    Flip(Index, u8),
    Set(Index, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    /// Copies a run of the file elsewhere (repeated entries, shifted fields).
    Duplicate(Index, Index, usize),
    /// Overwrites a known length/count field (`fields[i]`) with an extreme value.
    Field(Index, u64, bool),
}

fn extreme_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(u32::MAX as u64),
        Just(u32::MAX as u64 - 1),
        Just(0x8000_0000),
        Just(u64::MAX),
        Just(i64::MAX as u64),
        0u64..64,
        any::<u64>(),
    ]
}

pub fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        1 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| ByteEdit::Flip(i, b)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Set(i, b)),
        1 => any::<Index>().prop_map(ByteEdit::Truncate),
        1 => (any::<Index>(), vec(any::<u8>(), 1..16)).prop_map(|(i, b)| ByteEdit::Insert(i, b)),
        1 => (any::<Index>(), 1usize..64).prop_map(|(i, n)| ByteEdit::Remove(i, n)),
        1 => (any::<Index>(), any::<Index>(), 1usize..96).prop_map(|(a, b, n)| ByteEdit::Duplicate(a, b, n)),
        3 => (any::<Index>(), extreme_u64(), any::<bool>()).prop_map(|(i, v, w)| ByteEdit::Field(i, v, w)),
    ]
}

pub fn byte_edits() -> impl Strategy<Value = Vec<ByteEdit>> {
    vec(byte_edit(), 1..4)
}

/// Applies `edits`; `fields` are offsets of length/count fields in the unedited file.
pub fn apply(bytes: &mut Vec<u8>, fields: &[usize], edits: &[ByteEdit]) {
    for edit in edits {
        let len = bytes.len();
        match edit {
            ByteEdit::Flip(i, bit) if len > 0 => bytes[i.index(len)] ^= 1 << bit,
            ByteEdit::Set(i, b) if len > 0 => bytes[i.index(len)] = *b,
            ByteEdit::Truncate(i) => bytes.truncate(i.index(len + 1)),
            ByteEdit::Insert(i, extra) => {
                let at = i.index(len + 1);
                bytes.splice(at..at, extra.iter().copied());
            }
            ByteEdit::Remove(i, n) if len > 0 => {
                let at = i.index(len);
                bytes.drain(at..(at + n).min(len));
            }
            ByteEdit::Duplicate(from, to, n) if len > 0 => {
                let from = from.index(len);
                let run: Vec<u8> = bytes[from..(from + n).min(len)].to_vec();
                let to = to.index(len + 1);
                bytes.splice(to..to, run);
            }
            ByteEdit::Field(i, value, wide) if !fields.is_empty() => {
                let at = fields[i.index(fields.len())];
                let raw = value.to_le_bytes();
                let width = if *wide { 8 } else { 4 };
                for (k, b) in raw[..width].iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(at + k) {
                        *slot = *b;
                    }
                }
            }
            _ => {}
        }
    }
}

/// One edit of a JSON document's value.
#[derive(Debug, Clone)]
pub enum JsonEdit {
    /// Replaces the `i`th node (pre-order) with a strange value.
    Replace(Index, Value),
    /// Adds an unknown field to the `i`th object.
    AddField(Index, String, Value),
    /// Removes a field of the `i`th object.
    RemoveField(Index, Index),
}

fn strange_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(1u64 << 32)),
        Just(json!(1e300)),
        Just(json!(0.5)),
        Just(Value::Null),
        Just(json!(true)),
        Just(json!("")),
        Just(json!([])),
        Just(json!({})),
        Just(json!({ "unknown": { "nested": [1, { "deeper": null }] } })),
        Just(json!(["x", 1, null])),
        (0u64..300).prop_map(|n| json!(n)),
        "[a-f0-9]{0,70}".prop_map(Value::String),
        vec(any::<char>(), 0..12).prop_map(|c| Value::String(c.into_iter().collect())),
    ]
}

pub fn json_edit() -> impl Strategy<Value = JsonEdit> {
    prop_oneof![
        3 => (any::<Index>(), strange_value()).prop_map(|(i, v)| JsonEdit::Replace(i, v)),
        1 => (any::<Index>(), "[a-zA-Z]{1,10}", strange_value()).prop_map(|(i, k, v)| JsonEdit::AddField(i, k, v)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(i, k)| JsonEdit::RemoveField(i, k)),
    ]
}

pub fn json_edits() -> impl Strategy<Value = Vec<JsonEdit>> {
    vec(json_edit(), 1..4)
}

/// JSON pointers of every node in pre-order ("" is the root), and whether it is an object.
fn pointers(value: &Value, here: String, out: &mut Vec<(String, bool)>) {
    out.push((here.clone(), value.is_object()));
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                pointers(v, format!("{here}/{}", k.replace('~', "~0").replace('/', "~1")), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pointers(v, format!("{here}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// The `i`th object node of `value`, if it has any.
fn pick_object<'a>(value: &'a mut Value, all: &[(String, bool)], i: &Index) -> Option<&'a mut Map<String, Value>> {
    let objects: Vec<&String> = all.iter().filter(|(_, obj)| *obj).map(|(p, _)| p).collect();
    if objects.is_empty() {
        return None;
    }
    value.pointer_mut(objects[i.index(objects.len())])?.as_object_mut()
}

pub fn apply_json(value: &mut Value, edits: &[JsonEdit]) {
    for edit in edits {
        let mut all = Vec::new();
        pointers(value, String::new(), &mut all);
        match edit {
            JsonEdit::Replace(i, v) => {
                let at = &all[i.index(all.len())].0;
                *value.pointer_mut(at).expect("pointer from the walk") = v.clone();
            }
            JsonEdit::AddField(i, k, v) => {
                if let Some(map) = pick_object(value, &all, i) {
                    map.insert(k.clone(), v.clone());
                }
            }
            JsonEdit::RemoveField(i, which) => {
                if let Some(map) = pick_object(value, &all, i).filter(|m| !m.is_empty()) {
                    let key = map.keys().nth(which.index(map.len())).cloned().expect("in range");
                    map.remove(&key);
                }
            }
        }
    }
}
