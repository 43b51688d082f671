//! Lenient JSON access for real ARM and Kubernetes bodies.
//!
//! Real responses differ from the schemas: keys in other capitals (`az` output, Go's
//! case-insensitive decoding upstream), integers as floats (`8.0`), numbers as strings, missing
//! optional fields. These helpers accept all of that so that one odd field never loses a page.

use std::collections::BTreeMap;

use serde_json::Value;

/// Looks up `key` in an object: exact match first, then ASCII case-insensitive.
pub fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let o = v.as_object()?;
    if let Some(x) = o.get(key) {
        return Some(x);
    }
    o.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, x)| x)
}

/// Follows a path of keys, e.g. `path(v, &["properties", "ipConfiguration", "id"])`.
pub fn path<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for k in keys {
        cur = get(cur, k)?;
    }
    if cur.is_null() { None } else { Some(cur) }
}

/// A non-empty string at a path.
pub fn str_at(v: &Value, keys: &[&str]) -> Option<String> {
    match path(v, keys)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A number at a path: integers, floats (`8.0`) and numeric strings.
pub fn f64_at(v: &Value, keys: &[&str]) -> Option<f64> {
    match path(v, keys)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A non-negative integer at a path (floats with no fraction and numeric strings accepted).
pub fn u64_at(v: &Value, keys: &[&str]) -> Option<u64> {
    let f = f64_at(v, keys)?;
    if f >= 0.0 && f.fract() == 0.0 && f <= u64::MAX as f64 {
        Some(f as u64)
    } else {
        None
    }
}

pub fn u32_at(v: &Value, keys: &[&str]) -> Option<u32> {
    u64_at(v, keys).and_then(|n| u32::try_from(n).ok())
}

/// A bool at a path (`true`, `"true"`, case-insensitive).
pub fn bool_at(v: &Value, keys: &[&str]) -> Option<bool> {
    match path(v, keys)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.trim().parse::<bool>().ok().or_else(|| {
            if s.eq_ignore_ascii_case("true") {
                Some(true)
            } else if s.eq_ignore_ascii_case("false") {
                Some(false)
            } else {
                None
            }
        }),
        _ => None,
    }
}

/// The array at a path, or an empty slice.
pub fn arr_at<'a>(v: &'a Value, keys: &[&str]) -> &'a [Value] {
    match path(v, keys) {
        Some(Value::Array(a)) => a,
        _ => &[],
    }
}

/// `[{"id": ...}, ...]` → ids.
pub fn ids_at(v: &Value, keys: &[&str]) -> Vec<String> {
    arr_at(v, keys)
        .iter()
        .filter_map(|x| str_at(x, &["id"]))
        .collect()
}

/// Strings of an array (non-strings skipped).
pub fn strings_at(v: &Value, keys: &[&str]) -> Vec<String> {
    arr_at(v, keys)
        .iter()
        .filter_map(|x| x.as_str().filter(|s| !s.is_empty()).map(str::to_string))
        .collect()
}

/// A string map (`tags`, `labels`, `annotations`); non-string values are stringified.
pub fn map_at(v: &Value, keys: &[&str]) -> BTreeMap<String, String> {
    match path(v, keys) {
        Some(Value::Object(o)) => o
            .iter()
            .filter_map(|(k, x)| match x {
                Value::String(s) => Some((k.clone(), s.clone())),
                Value::Null => None,
                other => Some((k.clone(), other.to_string())),
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lenient_reads() {
        let v = json!({"Properties": {"currentValue": 8.0, "limit": "50", "flag": "True", "x": null, "tags": {"a": "b", "n": 1}}});
        assert_eq!(u64_at(&v, &["properties", "currentValue"]), Some(8));
        assert_eq!(u64_at(&v, &["properties", "limit"]), Some(50));
        assert_eq!(bool_at(&v, &["properties", "flag"]), Some(true));
        assert_eq!(str_at(&v, &["properties", "x"]), None);
        assert_eq!(map_at(&v, &["properties", "tags"])["n"], "1");
        assert_eq!(u64_at(&json!({"a": 1.5}), &["a"]), None);
        assert!(arr_at(&v, &["nope"]).is_empty());
    }
}
