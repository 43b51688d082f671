//! ARM items kept as compact JSON text instead of `serde_json::Value` trees.
//!
//! A `Value` costs 7–8 times its compact JSON (every object a `BTreeMap`, every key and string
//! its own allocation): 142 MB of list pages became 1.2 GB (BENCHMARKS.md, scenario 4). The world
//! therefore holds each ARM item as one compact string ([`RawValue`]) and parses it when asked
//! ([`crate::ArmResource::value`]). Reading what every consumer needs up front (id, type,
//! location) takes one pass over the item without building a tree.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::{ENVELOPE, USAGE_TYPE};

/// Removes insignificant whitespace from valid JSON text (strings, escapes included, are kept
/// byte for byte). Text without a line break is returned as is: JSON strings cannot hold a raw
/// line break, so only laid-out (pretty) JSON has one, and ARM's own answers never do; the check
/// is a `memchr`, so the live path pays nothing for it.
pub fn compact(text: &str) -> Cow<'_, str> {
    if !text.contains('\n') {
        return Cow::Borrowed(text);
    }
    // Byte-wise: whitespace and quotes are ASCII, and no byte of a multi-byte UTF-8 sequence is.
    let mut out = Vec::with_capacity(text.len());
    let mut in_str = false;
    let mut esc = false;
    for &b in text.as_bytes() {
        if in_str {
            out.push(b);
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
            }
        } else if b == b'"' {
            in_str = true;
            out.push(b);
        } else if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            out.push(b);
        }
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        // Cannot happen (only ASCII bytes were dropped); keep the input rather than fail.
        Err(_) => Cow::Borrowed(text),
    }
}

/// `raw` as compact JSON (a copy only when it has whitespace to lose).
pub fn compacted(raw: Box<RawValue>) -> Box<RawValue> {
    match compact(raw.get()) {
        Cow::Borrowed(_) => raw,
        Cow::Owned(s) => RawValue::from_string(s).unwrap_or(raw),
    }
}

/// A JSON value as compact raw text.
pub fn to_raw(v: &Value) -> Box<RawValue> {
    // Serialising a `Value` cannot fail (its map keys are strings).
    serde_json::value::to_raw_value(v)
        .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("valid JSON"))
}

/// What one pass over an ARM item learns: its envelope strings and whether it needs the slow
/// path (nesting `az`'s flattened properties).
#[derive(Debug, Default)]
struct Head {
    id: Option<String>,
    type_: Option<String>,
    location: Option<String>,
    has_properties: bool,
    has_current_value: bool,
    has_extra: bool,
}

impl<'de> Deserialize<'de> for Head {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Head, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Head;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Head, A::Error> {
                let mut h = Head::default();
                while let Some(k) = m.next_key::<Cow<'de, str>>()? {
                    match k.as_ref() {
                        "id" => h.id = m.next_value::<Option<AnyStr>>()?.and_then(|s| s.0),
                        "type" => h.type_ = m.next_value::<Option<AnyStr>>()?.and_then(|s| s.0),
                        "location" => h.location = m.next_value::<Option<AnyStr>>()?.and_then(|s| s.0),
                        other => {
                            match other {
                                "properties" => h.has_properties = true,
                                "currentValue" => h.has_current_value = true,
                                k if !ENVELOPE.contains(&k) => h.has_extra = true,
                                _ => {}
                            }
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(h)
            }
        }
        d.deserialize_map(V)
    }
}

/// A string, or `None` for any other JSON value (as `Value::as_str` would say).
struct AnyStr(Option<String>);

impl<'de> Deserialize<'de> for AnyStr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<AnyStr, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AnyStr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<AnyStr, E> {
                Ok(AnyStr(Some(s.to_string())))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<AnyStr, E> {
                Ok(AnyStr(Some(s)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<AnyStr, E> {
                Ok(AnyStr(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<AnyStr, E> {
                Ok(AnyStr(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<AnyStr, E> {
                Ok(AnyStr(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<AnyStr, E> {
                Ok(AnyStr(None))
            }
            fn visit_unit<E>(self) -> Result<AnyStr, E> {
                Ok(AnyStr(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<AnyStr, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(AnyStr(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<AnyStr, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(AnyStr(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A normalised ARM item: id, type, location and the compact JSON.
#[derive(Debug)]
pub struct Normalised {
    pub id: String,
    pub type_: String,
    pub location: Option<String>,
    pub raw: Box<RawValue>,
}

/// [`crate::normalise_arm`] without building a tree for items in ARM's REST shape (all of
/// them, in practice); `az`-shaped items take the tree path.
pub fn normalise(raw: Box<RawValue>) -> Result<Normalised, String> {
    if !raw.get().trim_start().starts_with('{') {
        return Err("not a JSON object".into());
    }
    let h: Head = serde_json::from_str(raw.get()).map_err(|e| format!("not a JSON object: {e}"))?;
    let id = match h.id {
        Some(id) if !id.is_empty() => id,
        _ => return Err("no `id`".into()),
    };
    let type_ = match h.type_ {
        Some(t) => t,
        None => crate::derive_type(&id, h.has_current_value)?,
    };
    if type_ != USAGE_TYPE && !h.has_properties && h.has_extra {
        // `az`'s flattened shape: nest it (rare; snapshots written by `az` only).
        let v: Value = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
        let (id, type_, v) = crate::normalise_arm(v)?;
        return Ok(Normalised {
            id,
            type_,
            location: h.location,
            raw: to_raw(&v),
        });
    }
    Ok(Normalised {
        id,
        type_,
        location: h.location,
        raw: compacted(raw),
    })
}

/// The items of an ARM file: an array of resources, a list page (`{"value": [...]}` without an
/// `id`), or one resource.
pub fn file_items(bytes: &[u8]) -> Result<Vec<Box<RawValue>>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    let t = text.trim_start();
    if t.starts_with('[') {
        return serde_json::from_str::<Vec<Box<RawValue>>>(text).map_err(|e| format!("not valid JSON: {e}"));
    }
    if !t.starts_with('{') {
        // Validate first, so that a broken file says "not valid JSON".
        serde_json::from_str::<IgnoredAny>(text).map_err(|e| format!("not valid JSON: {e}"))?;
        return Err("neither an ARM resource, a list page nor an array of resources".into());
    }
    #[derive(Deserialize)]
    struct Top<'a> {
        #[serde(borrow, default)]
        value: Option<&'a RawValue>,
        #[serde(default)]
        id: Option<IgnoredAny>,
    }
    let top: Top<'_> = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    match top.value {
        Some(v) if top.id.is_none() && v.get().trim_start().starts_with('[') => {
            serde_json::from_str::<Vec<Box<RawValue>>>(v.get()).map_err(|e| format!("not valid JSON: {e}"))
        }
        _ => Ok(vec![
            RawValue::from_string(text.to_string()).map_err(|e| e.to_string())?,
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(v: &Value) -> Box<RawValue> {
        RawValue::from_string(serde_json::to_string_pretty(v).unwrap()).unwrap()
    }

    #[test]
    fn compact_keeps_strings_and_drops_layout() {
        let text = "{\n  \"a b\": \"x \\\" y\\\\\",\n  \"c\": [ 1, 2 ]\n}";
        assert_eq!(compact(text), r#"{"a b":"x \" y\\","c":[1,2]}"#);
        assert!(matches!(compact(r#"{"a":"b c"}"#), Cow::Borrowed(_)));
        let v: Value = serde_json::from_str(&compact("{ \"é\" :\n \"ü \\u00e9\" }")).unwrap();
        assert_eq!(v, json!({"é": "ü é"}));
    }

    #[test]
    fn normalise_agrees_with_the_tree_path() {
        let cases = [
            json!({"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb", "type": "Microsoft.Network/loadBalancers", "location": "westeurope", "properties": {"a": 1}}),
            json!({"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/p", "location": "x", "properties": {}}),
            json!({"id": "/subscriptions/s/providers/Microsoft.Network/locations/westus/usages/VirtualNetworks", "currentValue": 8.0, "limit": 50, "name": {"value": "VirtualNetworks"}}),
            json!({"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/p", "ipAddress": "1.2.3.4", "publicIpAllocationMethod": "Static", "resourceGroup": "rg"}),
            json!({"id": "/subscriptions/s/resourceGroups/rg", "location": "x"}),
            json!({"id": 5}),
            json!({"type": "x"}),
            json!({"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb", "type": null, "location": 3}),
            json!([1]),
        ];
        for c in cases {
            let tree = crate::normalise_arm(c.clone());
            let fast = normalise(raw(&c));
            match (tree, fast) {
                (Ok((id, t, v)), Ok(n)) => {
                    assert_eq!((id, t), (n.id, n.type_), "{c}");
                    assert_eq!(v, serde_json::from_str::<Value>(n.raw.get()).unwrap(), "{c}");
                    assert_eq!(v.get("location").and_then(Value::as_str), n.location.as_deref());
                    assert!(!n.raw.get().contains('\n'));
                }
                (Err(a), Err(b)) => assert_eq!(a, b, "{c}"),
                (a, b) => panic!("{c}: tree {a:?}, raw {b:?}"),
            }
        }
    }

    #[test]
    fn file_shapes() {
        let item = json!({"id": "/x", "type": "t"});
        let as_bytes = |v: Value| serde_json::to_vec(&v).unwrap();
        assert_eq!(
            file_items(&as_bytes(json!([item.clone(), item.clone()])))
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            file_items(&as_bytes(json!({"value": [item.clone()], "nextLink": "x"})))
                .unwrap()
                .len(),
            1
        );
        // A resource that has a `value` property is one resource.
        assert_eq!(
            file_items(&as_bytes(json!({"id": "/x", "value": [1, 2]})))
                .unwrap()
                .len(),
            1
        );
        assert_eq!(file_items(&as_bytes(json!({"value": 3}))).unwrap().len(), 1);
        assert!(
            file_items(b"{\"value\": [")
                .unwrap_err()
                .starts_with("not valid JSON")
        );
        assert!(file_items(b"42").unwrap_err().starts_with("neither"));
        assert!(file_items(b"4 2").unwrap_err().starts_with("not valid JSON"));
    }
}
