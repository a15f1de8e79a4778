//! A small JSON-schema-like validator. Each API module declares its request
//! schemas as static [`Schema`] values transcribed from the vendor specs;
//! this checks a parsed body against one and collects every problem by
//! field path (`home_address.country_code`), the way Kota's `errors` map and
//! Noyo's messages report them.

use std::collections::BTreeMap;

use serde_json::Value;

/// Field path -> messages.
pub type Errors = BTreeMap<String, Vec<String>>;

/// The type of a field.
#[derive(Debug)]
pub enum Ty {
    /// Any string.
    Str,
    /// A string that must not be empty (spec: "Must not be empty", minLength 1).
    NonEmpty,
    /// `YYYY-MM-DD`.
    Date,
    /// RFC 3339 date-time.
    DateTime,
    /// A string with a prefix pattern (`er_.+`).
    Prefixed(&'static str),
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// A boolean.
    Bool,
    /// A UUID.
    Uuid,
    /// An object of string values (Kota metadata).
    StrMap,
    /// A nested object.
    Object(&'static Schema),
}

/// A field of an object schema.
#[derive(Debug)]
pub struct Field {
    /// JSON name.
    pub name: &'static str,
    /// Type.
    pub ty: Ty,
    /// Must be present.
    pub required: bool,
    /// `null` is accepted (and means "not given").
    pub nullable: bool,
}

impl Field {
    /// A required, non-null field.
    pub const fn req(name: &'static str, ty: Ty) -> Field {
        Field {
            name,
            ty,
            required: true,
            nullable: false,
        }
    }

    /// An optional field that may also be `null`.
    pub const fn opt(name: &'static str, ty: Ty) -> Field {
        Field {
            name,
            ty,
            required: false,
            nullable: true,
        }
    }

    /// An optional field that must not be `null` when present.
    pub const fn opt_non_null(name: &'static str, ty: Ty) -> Field {
        Field {
            name,
            ty,
            required: false,
            nullable: false,
        }
    }
}

/// An object schema. All sandbox schemas are closed
/// (`additionalProperties: false`): unknown fields are errors.
#[derive(Debug)]
pub struct Schema {
    /// Known fields.
    pub fields: &'static [Field],
}

/// Parses a body as JSON, reporting a parse failure under `body`.
pub fn parse_body(body: &[u8]) -> Result<Value, Errors> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(one("body", "A non-empty request body is required."));
    }
    serde_json::from_slice(body).map_err(|e| one("body", &format!("Invalid JSON: {e}")))
}

/// One error.
pub fn one(path: &str, message: &str) -> Errors {
    let mut e = Errors::new();
    push(&mut e, path, message);
    e
}

/// Adds an error.
pub fn push(errors: &mut Errors, path: &str, message: &str) {
    errors
        .entry(path.to_string())
        .or_default()
        .push(message.to_string());
}

/// Checks `value` against `schema`; returns every problem found.
pub fn check(value: &Value, schema: &Schema) -> Errors {
    let mut errors = Errors::new();
    check_object(value, schema, "", &mut errors);
    errors
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn check_object(value: &Value, schema: &Schema, prefix: &str, errors: &mut Errors) {
    let Some(obj) = value.as_object() else {
        let at = if prefix.is_empty() { "body" } else { prefix };
        push(errors, at, "Must be a JSON object.");
        return;
    };
    for key in obj.keys() {
        if !schema.fields.iter().any(|f| f.name == key) {
            push(errors, &join(prefix, key), "Unknown field.");
        }
    }
    for field in schema.fields {
        let path = join(prefix, field.name);
        match obj.get(field.name) {
            None if field.required => push(errors, &path, "This field is required."),
            None => {}
            Some(Value::Null) if field.nullable && !field.required => {}
            Some(Value::Null) => push(errors, &path, "Must not be null."),
            Some(v) => check_value(v, &field.ty, &path, errors),
        }
    }
}

fn check_value(v: &Value, ty: &Ty, path: &str, errors: &mut Errors) {
    let text = v.as_str();
    match ty {
        Ty::Object(schema) => check_object(v, schema, path, errors),
        Ty::Bool => {
            if !v.is_boolean() {
                push(errors, path, "Must be a boolean.");
            }
        }
        Ty::StrMap => match v.as_object() {
            Some(map) => {
                for (k, val) in map {
                    if !val.is_string() {
                        push(errors, &join(path, k), "Must be a string.");
                    }
                }
            }
            None => push(errors, path, "Must be an object of strings."),
        },
        _ => {
            let Some(s) = text else {
                push(errors, path, "Must be a string.");
                return;
            };
            if let Some(msg) = check_str(s, ty) {
                push(errors, path, &msg);
            }
        }
    }
}

fn check_str(s: &str, ty: &Ty) -> Option<String> {
    match ty {
        Ty::Str => None,
        Ty::NonEmpty => s.trim().is_empty().then(|| "Must not be empty.".into()),
        Ty::Date => parse_date(s)
            .is_none()
            .then(|| "Must be a date in the format YYYY-MM-DD.".into()),
        Ty::DateTime => chrono::DateTime::parse_from_rfc3339(s)
            .is_err()
            .then(|| "Must be an RFC 3339 date-time.".into()),
        Ty::Prefixed(prefix) => (!(s.len() > prefix.len() && s.starts_with(prefix)))
            .then(|| format!("Must match the pattern {prefix}.+")),
        Ty::Enum(allowed) => {
            (!allowed.contains(&s)).then(|| format!("Must be one of: {}.", allowed.join(", ")))
        }
        Ty::Uuid => uuid::Uuid::parse_str(s)
            .is_err()
            .then(|| "Must be a valid UUID.".into()),
        Ty::Bool | Ty::StrMap | Ty::Object(_) => None,
    }
}

/// A strict `YYYY-MM-DD` date (chrono alone accepts unpadded fields).
pub fn parse_date(s: &str) -> Option<chrono::NaiveDate> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return None;
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static INNER: Schema = Schema {
        fields: &[Field::req("city", Ty::NonEmpty)],
    };
    static OUTER: Schema = Schema {
        fields: &[
            Field::req("id", Ty::Prefixed("er_")),
            Field::opt("on", Ty::Date),
            Field::req("kind", Ty::Enum(&["a", "b"])),
            Field::opt("addr", Ty::Object(&INNER)),
            Field::opt("meta", Ty::StrMap),
        ],
    };

    #[test]
    fn collects_every_problem_by_path() {
        let e = check(
            &json!({"id": "er_", "on": "2020-1-01", "kind": "c", "addr": {"x": 1}, "meta": {"k": 1}, "zz": true}),
            &OUTER,
        );
        let keys: Vec<&str> = e.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["addr.city", "addr.x", "id", "kind", "meta.k", "on", "zz"]
        );
    }

    #[test]
    fn accepts_valid_and_nulls() {
        let e = check(
            &json!({"id": "er_1", "on": null, "kind": "a", "addr": {"city": "X"}}),
            &OUTER,
        );
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn strict_dates() {
        assert!(parse_date("2020-02-29").is_some());
        assert!(parse_date("2021-02-29").is_none());
        assert!(parse_date("2020-2-01").is_none());
        assert!(parse_date("20200201").is_none());
    }
}
