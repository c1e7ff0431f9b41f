//! The functions a template can call: Go's builtins (`and`, `or`, `not`, `len`, `index`,
//! `slice`, `print`, `printf`, `println`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `html`, `js`,
//! `urlquery`) and Docker's (`json`, `split`, `join`, `title`, `lower`, `upper`, `pad`,
//! `truncate`), with Docker's header variants that leave a column name as it is.

use std::cmp::Ordering;

use super::printf::sprintf;
use super::value::Value;

const NAMES: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne", "lt",
    "le", "gt", "ge", "html", "js", "urlquery", "call", "json", "split", "join", "title", "lower",
    "upper", "pad", "truncate",
];

/// Whether a template may call `name`.
pub(super) fn exists(name: &str) -> bool {
    NAMES.contains(&name)
}

/// Calls `name` (not `and`/`or`, which the executor evaluates lazily). `header` selects
/// Docker's header functions, under which the text functions return their first argument.
pub(super) fn call(name: &str, args: &[Value], header: bool) -> Result<Value, String> {
    let want = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!(
                "wrong number of args for {name}: want {n} got {}",
                args.len()
            ))
        }
    };
    let at_least = |n: usize| {
        if args.len() >= n {
            Ok(())
        } else {
            Err(format!(
                "wrong number of args for {name}: want at least {n} got {}",
                args.len()
            ))
        }
    };
    if header {
        let arity = match name {
            "json" | "title" | "lower" | "upper" => Some(1),
            "split" | "join" | "truncate" => Some(2),
            _ => None,
        };
        if let Some(n) = arity {
            want(n)?;
            return Ok(Value::Str(string(&args[0])?));
        }
    }
    match name {
        "not" => {
            want(1)?;
            Ok(Value::Bool(!args[0].truthy()))
        }
        "len" => {
            want(1)?;
            len(&args[0])
        }
        "index" => {
            at_least(1)?;
            args[1..]
                .iter()
                .try_fold(args[0].clone(), |item, i| index(&item, i))
        }
        "slice" => {
            at_least(1)?;
            slice(&args[0], &args[1..])
        }
        "print" => Ok(Value::Str(sprint(args))),
        "println" => Ok(Value::Str(sprintln(args))),
        "printf" => {
            at_least(1)?;
            Ok(Value::Str(sprintf(&string(&args[0])?, &args[1..])))
        }
        "eq" => {
            at_least(1)?;
            if args.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            let mut any = false;
            for b in &args[1..] {
                any |= equal(&args[0], b)?;
            }
            Ok(Value::Bool(any))
        }
        "ne" => {
            want(2)?;
            Ok(Value::Bool(!equal(&args[0], &args[1])?))
        }
        "lt" | "le" | "gt" | "ge" => {
            want(2)?;
            let o = order(&args[0], &args[1])?;
            Ok(Value::Bool(match name {
                "lt" => o == Ordering::Less,
                "le" => o != Ordering::Greater,
                "gt" => o == Ordering::Greater,
                _ => o != Ordering::Less,
            }))
        }
        "html" => Ok(Value::Str(html(&eval_args(args)))),
        "js" => Ok(Value::Str(js(&eval_args(args)))),
        "urlquery" => Ok(Value::Str(urlquery(&eval_args(args)))),
        "call" => {
            Err("call of a function is not supported: template data holds no functions".into())
        }
        "json" => {
            want(1)?;
            Ok(Value::Str(json(&args[0])))
        }
        "split" => {
            want(2)?;
            Ok(Value::List(split(&string(&args[0])?, &string(&args[1])?)))
        }
        "join" => {
            want(2)?;
            let Value::List(items) = &args[0] else {
                return Err(wrong("[]string", &args[0]));
            };
            let parts = items.iter().map(string).collect::<Result<Vec<_>, _>>()?;
            Ok(Value::Str(parts.join(&string(&args[1])?)))
        }
        "title" => {
            want(1)?;
            Ok(Value::Str(title(&string(&args[0])?)))
        }
        "lower" => {
            want(1)?;
            Ok(Value::Str(string(&args[0])?.to_lowercase()))
        }
        "upper" => {
            want(1)?;
            Ok(Value::Str(string(&args[0])?.to_uppercase()))
        }
        "pad" => {
            want(3)?;
            let s = string(&args[0])?;
            if s.is_empty() {
                return Ok(Value::Str(s));
            }
            let (pre, post) = (int(&args[1])?, int(&args[2])?);
            let n = |i: i64| " ".repeat(usize::try_from(i).unwrap_or(0));
            Ok(Value::Str(format!("{}{s}{}", n(pre), n(post))))
        }
        "truncate" => {
            want(2)?;
            let s = string(&args[0])?;
            let n = usize::try_from(int(&args[1])?).map_err(|_| "truncate: negative length")?;
            if s.len() < n {
                return Ok(Value::Str(s));
            }
            let mut cut = n;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            Ok(Value::Str(s[..cut].to_owned()))
        }
        other => Err(format!("function {other:?} not defined")),
    }
}

fn wrong(want: &str, got: &Value) -> String {
    match got {
        Value::Missing => format!("invalid value; expected {want}"),
        _ => format!(
            "wrong type for value; expected {want}; got {}",
            got.type_name()
        ),
    }
}

/// A string argument, as Go converts a value for a `string` parameter.
fn string(v: &Value) -> Result<String, String> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        _ => Err(wrong("string", v)),
    }
}

fn int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Uint(u) => i64::try_from(*u).map_err(|_| wrong("int", v)),
        _ => Err(wrong("int", v)),
    }
}

fn len(v: &Value) -> Result<Value, String> {
    let n = match v {
        Value::Str(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Map(m) => m.len(),
        Value::Missing | Value::Nil => return Err("len of nil pointer".into()),
        _ => return Err(format!("len of type {}", v.type_name())),
    };
    Ok(Value::Int(n as i64))
}

fn index(item: &Value, i: &Value) -> Result<Value, String> {
    match item {
        Value::List(l) => {
            let n = int(i).map_err(|_| "cannot index slice/array with nil".to_string())?;
            usize::try_from(n)
                .ok()
                .and_then(|n| l.get(n))
                .cloned()
                .ok_or_else(|| format!("index out of range: {n}"))
        }
        Value::Str(s) => {
            let n = int(i)?;
            usize::try_from(n)
                .ok()
                .and_then(|n| s.as_bytes().get(n))
                .map(|b| Value::Int(i64::from(*b)))
                .ok_or_else(|| format!("index out of range: {n}"))
        }
        Value::Map(m) => {
            let key = string(i)?;
            Ok(m.get(&key).cloned().unwrap_or_else(|| zero_of(m)))
        }
        Value::Missing | Value::Nil => Err("index of untyped nil".into()),
        _ => Err(format!("can't index item of type {}", item.type_name())),
    }
}

/// What `index` gives for a key a map lacks: Go's zero value of the map's element type, taken
/// as "" for maps of strings (labels, options) and nil otherwise.
fn zero_of(m: &std::collections::BTreeMap<String, Value>) -> Value {
    if m.values().all(|v| matches!(v, Value::Str(_))) {
        Value::Str(String::new())
    } else {
        Value::Nil
    }
}

fn slice(item: &Value, idx: &[Value]) -> Result<Value, String> {
    let ints = idx.iter().map(int).collect::<Result<Vec<_>, _>>()?;
    let len = match item {
        Value::Str(s) => s.len(),
        Value::List(l) => l.len(),
        _ => return Err(format!("can't slice item of type {}", item.type_name())),
    };
    let from = ints.first().copied().unwrap_or(0);
    let to = ints.get(1).copied().unwrap_or(len as i64);
    if ints.len() > 2 || from < 0 || to < from || to as usize > len {
        return Err(format!("index out of range: {to}"));
    }
    let (from, to) = (from as usize, to as usize);
    Ok(match item {
        Value::Str(s) => Value::Str(s.get(from..to).unwrap_or_default().to_owned()),
        Value::List(l) => Value::List(l[from..to].to_vec()),
        _ => Value::Missing,
    })
}

/// Go's fmt.Sprint: spaces between operands when neither is a string.
pub(super) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        let is_str = |v: &Value| matches!(v, Value::Str(_));
        if i > 0 && !is_str(a) && !is_str(&args[i - 1]) {
            out.push(' ');
        }
        out.push_str(&a.print());
    }
    out
}

fn sprintln(args: &[Value]) -> String {
    let parts: Vec<String> = args.iter().map(Value::print).collect();
    parts.join(" ") + "\n"
}

/// The text of `html`, `js` and `urlquery`'s arguments (one string as it is).
fn eval_args(args: &[Value]) -> String {
    match args {
        [Value::Str(s)] => s.clone(),
        _ => sprint(args),
    }
}

fn html(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn js(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' | '>' | '&' | '=' => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn urlquery(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Docker's `json`: the value as compact JSON, HTML characters unescaped.
fn json(v: &Value) -> String {
    serde_json::to_string(&v.to_json()).unwrap_or_default()
}

/// Go's strings.Split: "" as separator splits into characters.
fn split(s: &str, sep: &str) -> Vec<Value> {
    if sep.is_empty() {
        return s.chars().map(|c| Value::Str(c.to_string())).collect();
    }
    s.split(sep).map(|p| Value::Str(p.to_owned())).collect()
}

/// Go's strings.Title: the first letter of each word in upper case.
fn title(s: &str) -> String {
    let mut out = String::new();
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        // Go's isSeparator: ASCII other than letters, digits and '_', and Unicode spaces.
        prev_sep = (c.is_whitespace() || c.is_ascii()) && c != '_' && !c.is_alphanumeric();
    }
    out
}

/// Go's basic kinds, for comparisons.
enum Basic<'a> {
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a str),
}

fn basic(v: &Value) -> Option<Basic<'_>> {
    match v {
        Value::Bool(b) => Some(Basic::Bool(*b)),
        Value::Int(i) => Some(Basic::Int(i128::from(*i))),
        Value::Uint(u) => Some(Basic::Int(i128::from(*u))),
        Value::Float(f) => Some(Basic::Float(*f)),
        Value::Str(s) => Some(Basic::Str(s)),
        _ => None,
    }
}

/// `eq`: Go's rules (no value and nil equal only each other; ints and floats do not mix).
fn equal(a: &Value, b: &Value) -> Result<bool, String> {
    let absent = |v: &Value| matches!(v, Value::Missing | Value::Nil);
    if absent(a) || absent(b) {
        return Ok(absent(a) && absent(b));
    }
    match (basic(a), basic(b)) {
        (Some(Basic::Bool(x)), Some(Basic::Bool(y))) => Ok(x == y),
        (Some(Basic::Int(x)), Some(Basic::Int(y))) => Ok(x == y),
        (Some(Basic::Float(x)), Some(Basic::Float(y))) => Ok(x == y),
        (Some(Basic::Str(x)), Some(Basic::Str(y))) => Ok(x == y),
        (Some(_), Some(_)) => Err("incompatible types for comparison".into()),
        _ => Err("non-comparable type".into()),
    }
}

/// `lt` and friends: numbers with numbers, strings with strings.
fn order(a: &Value, b: &Value) -> Result<Ordering, String> {
    match (basic(a), basic(b)) {
        (Some(Basic::Int(x)), Some(Basic::Int(y))) => Ok(x.cmp(&y)),
        (Some(Basic::Float(x)), Some(Basic::Float(y))) => x
            .partial_cmp(&y)
            .ok_or_else(|| "invalid type for comparison".into()),
        (Some(Basic::Str(x)), Some(Basic::Str(y))) => Ok(x.cmp(y)),
        (Some(Basic::Bool(_)), _) | (_, Some(Basic::Bool(_))) | (None, _) | (_, None) => {
            Err("invalid type for comparison".into())
        }
        _ => Err("incompatible types for comparison".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    fn c(name: &str, args: &[Value]) -> Result<Value, String> {
        call(name, args, false)
    }

    #[test]
    fn docker_functions() {
        assert_eq!(c("upper", &[s("aB")]), Ok(s("AB")));
        assert_eq!(c("lower", &[s("aB")]), Ok(s("ab")));
        assert_eq!(
            c("title", &[s("hello big-world")]),
            Ok(s("Hello Big-World"))
        );
        assert_eq!(
            c("split", &[s("a,b"), s(",")]),
            Ok(Value::List(vec![s("a"), s("b")]))
        );
        assert_eq!(
            c("join", &[Value::List(vec![s("a"), s("b")]), s("-")]),
            Ok(s("a-b"))
        );
        assert!(c("join", &[Value::List(vec![Value::Int(1)]), s("-")]).is_err());
        assert_eq!(
            c("pad", &[s("x"), Value::Int(1), Value::Int(2)]),
            Ok(s(" x  "))
        );
        assert_eq!(c("pad", &[s(""), Value::Int(1), Value::Int(2)]), Ok(s("")));
        assert_eq!(c("truncate", &[s("abcdef"), Value::Int(3)]), Ok(s("abc")));
        assert_eq!(c("truncate", &[s("ab"), Value::Int(3)]), Ok(s("ab")));
        assert_eq!(
            c("json", &[Value::List(vec![s("<a>"), Value::Int(1)])]),
            Ok(s(r#"["<a>",1]"#))
        );
        assert_eq!(c("json", &[Value::Missing]), Ok(s("null")));
        // Header variants keep the column name.
        assert_eq!(call("upper", &[s("Names")], true), Ok(s("Names")));
        assert_eq!(call("split", &[s("NAMES"), s(",")], true), Ok(s("NAMES")));
    }

    #[test]
    fn go_builtins() {
        assert_eq!(c("len", &[s("abc")]), Ok(Value::Int(3)));
        assert_eq!(
            c("len", &[]),
            Err("wrong number of args for len: want 1 got 0".into())
        );
        assert_eq!(
            c("index", &[s("default"), Value::Int(1)]),
            Ok(Value::Int(101))
        );
        assert_eq!(
            c("index", &[Value::List(vec![s("a")]), Value::Int(3)]),
            Err("index out of range: 3".into())
        );
        let labels = Value::map_from_json(&serde_json::json!({"a": "1"}));
        assert_eq!(c("index", &[labels.clone(), s("a")]), Ok(s("1")));
        assert_eq!(c("index", &[labels, s("zz")]), Ok(s("")));
        assert_eq!(
            c("slice", &[s("abcd"), Value::Int(1), Value::Int(3)]),
            Ok(s("bc"))
        );
        assert_eq!(c("not", &[s("")]), Ok(Value::Bool(true)));
        assert_eq!(c("eq", &[s("a"), s("b"), s("a")]), Ok(Value::Bool(true)));
        assert_eq!(c("eq", &[Value::Missing, s("a")]), Ok(Value::Bool(false)));
        assert_eq!(
            c("ne", &[Value::Int(1), Value::Uint(2)]),
            Ok(Value::Bool(true))
        );
        assert!(c("eq", &[Value::Int(1), Value::Float(1.0)]).is_err());
        assert_eq!(
            c("lt", &[Value::Int(1), Value::Int(2)]),
            Ok(Value::Bool(true))
        );
        assert_eq!(c("ge", &[s("b"), s("a")]), Ok(Value::Bool(true)));
        assert_eq!(
            c("le", &[Value::Float(2.0), Value::Float(2.0)]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            c("gt", &[Value::Int(1), Value::Int(2)]),
            Ok(Value::Bool(false))
        );
        assert!(c("lt", &[Value::Missing, Value::Int(2)]).is_err());
        assert_eq!(
            c(
                "print",
                &[Value::Int(1), Value::Int(2), s("a"), s("b"), Value::Int(3)]
            ),
            Ok(s("1 2ab3"))
        );
        assert_eq!(c("println", &[Value::Int(1), s("a")]), Ok(s("1 a\n")));
        assert_eq!(
            c("printf", &[s("%s-%d"), s("x"), Value::Int(2)]),
            Ok(s("x-2"))
        );
        assert_eq!(
            c("html", &[s("<a href='x'>")]),
            Ok(s("&lt;a href=&#39;x&#39;&gt;"))
        );
        assert_eq!(c("urlquery", &[s("a b&c")]), Ok(s("a+b%26c")));
        assert_eq!(c("js", &[s("a'<")]), Ok(s("a\\'\\u003C")));
    }
}
