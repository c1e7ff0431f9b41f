//! The values a template sees: JSON data read as Docker's Go types would be (objects are
//! structs, except the fields Docker declares as maps), and Go's way of printing them.

use std::collections::BTreeMap;

/// A value during execution.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value at all (a missing map key): prints `<no value>`.
    Missing,
    /// JSON null, a nil pointer in Docker's types: prints `<nil>`.
    Nil,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    /// A Go map (Labels, Networks, Ports, ...): a missing key is `<no value>`.
    Map(BTreeMap<String, Value>),
    /// A Go struct: a missing field is an error. Fields in the JSON's order.
    Struct(Vec<(String, Value)>),
}

/// Object fields that Docker's API types declare as Go maps (`map[string]...`): their keys are
/// data (label names, network names, ports), so a missing key is `<no value>`, not an error.
/// Every other JSON object is read as a struct.
pub const MAP_FIELDS: &[&str] = &[
    "Annotations",
    "Containers",
    "Data",
    "Details",
    "DriverOpts",
    "ExposedPorts",
    "IndexConfigs",
    "Labels",
    "Networks",
    "Options",
    "PortBindings",
    "Ports",
    "Runtimes",
    "Status",
    "StorageOpt",
    "Sysctls",
    "Tmpfs",
    "Volumes",
];

impl Value {
    /// Reads JSON data: the top-level object as a struct, objects under [`MAP_FIELDS`] as maps.
    pub fn from_json(v: &serde_json::Value) -> Value {
        Value::convert(v, false)
    }

    /// Reads a JSON object as a Go map (its keys are data), e.g. a table's header names.
    pub fn map_from_json(v: &serde_json::Value) -> Value {
        Value::convert(v, true)
    }

    fn convert(v: &serde_json::Value, as_map: bool) -> Value {
        use serde_json::Value as J;
        match v {
            J::Null if as_map => Value::Map(BTreeMap::new()),
            J::Null => Value::Nil,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => Value::Int(i),
                (None, Some(u), _) => Value::Uint(u),
                (_, _, f) => Value::Float(f.unwrap_or(f64::NAN)),
            },
            J::String(s) => Value::Str(s.clone()),
            J::Array(a) => Value::List(a.iter().map(|e| Value::convert(e, false)).collect()),
            J::Object(o) if as_map => Value::Map(
                o.iter()
                    .map(|(k, e)| (k.clone(), Value::convert(e, false)))
                    .collect(),
            ),
            J::Object(o) => Value::Struct(
                o.iter()
                    .map(|(k, e)| {
                        (
                            k.clone(),
                            Value::convert(e, MAP_FIELDS.contains(&k.as_str())),
                        )
                    })
                    .collect(),
            ),
        }
    }

    /// The value as JSON (for the `json` function); no value is `null`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Missing | Value::Nil => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Uint(u) => J::from(*u),
            // Go writes integral floats without a fraction (1e6 as 1000000).
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => J::from(*f as i64),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::List(l) => J::Array(l.iter().map(Value::to_json).collect()),
            Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
            Value::Struct(f) => {
                J::Object(f.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    /// Go's name for the value's type, in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Missing | Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Uint(_) => "uint64",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::Struct(_) => "struct",
        }
    }

    /// Go's truth: false, 0, "", empty lists and maps, nil and no value are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Missing | Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Uint(u) => *u != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Struct(_) => true,
        }
    }

    /// The value as `{{.}}` prints it (Go's `%v`).
    pub fn print(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Value::Missing => out.push_str("<no value>"),
            Value::Nil => out.push_str("<nil>"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Uint(u) => out.push_str(&u.to_string()),
            Value::Float(f) => out.push_str(&go_float(*f)),
            Value::Str(s) => out.push_str(s),
            Value::List(l) => {
                out.push('[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.write(out);
                }
                out.push(']');
            }
            Value::Map(m) => {
                out.push_str("map[");
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.write(out);
                }
                out.push(']');
            }
            Value::Struct(f) => {
                out.push('{');
                for (i, (_, v)) in f.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(f, 'g', -1, 64)`): the shortest digits, with
/// an exponent below 1e-4 and from 1e+06.
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{f:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    format!("{f}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_are_structs_except_docker_maps() {
        let v = Value::from_json(
            &json!({"Name": "a", "Labels": {"x": "1"}, "Config": {"Labels": null}}),
        );
        let Value::Struct(f) = &v else {
            panic!("{v:?}")
        };
        assert!(matches!(f[1].1, Value::Map(_)));
        assert!(matches!(f[0].1, Value::Struct(_)));
        let Value::Struct(cfg) = &f[0].1 else {
            panic!()
        };
        assert_eq!(cfg[0].1, Value::Map(BTreeMap::new()));
    }

    #[test]
    fn prints_as_go_does() {
        let v =
            Value::from_json(&json!({"A": [1, "b", true, null], "Labels": {"z": "1", "a": "2"}}));
        assert_eq!(v.print(), "{[1 b true <nil>] map[a:2 z:1]}");
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(1234567.0), "1.234567e+06");
        assert_eq!(go_float(0.000012345), "1.2345e-05");
    }
}
