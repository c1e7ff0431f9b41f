//! `printf`: Go's fmt.Sprintf verbs, flags, width and precision over template values,
//! with Go's `%!verb(type=value)` marks for a wrong, missing or extra argument.

use super::value::{go_float, Value};

#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Formats `args` by `format` as Go's fmt.Sprintf does.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                _ => break,
            }
            chars.next();
        }
        spec.width = number_or_star(&mut chars, args, &mut next);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.prec = Some(number_or_star(&mut chars, args, &mut next).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        out.push_str(&one(verb, spec, arg));
    }
    if next < args.len() {
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| format!("{}={}", a.type_name(), a.print()))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

fn number_or_star(
    chars: &mut std::iter::Peekable<std::str::Chars>,
    args: &[Value],
    next: &mut usize,
) -> Option<usize> {
    if chars.peek() == Some(&'*') {
        chars.next();
        let v = args.get(*next);
        *next += 1;
        return match v {
            Some(Value::Int(i)) => usize::try_from(*i).ok(),
            Some(Value::Uint(u)) => usize::try_from(*u).ok(),
            _ => None,
        };
    }
    let mut n = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        n = Some(n.unwrap_or(0) * 10 + d as usize);
        chars.next();
    }
    n
}

fn bad(verb: char, v: &Value) -> String {
    match v {
        Value::Missing | Value::Nil => format!("%!{verb}(<nil>)"),
        _ => format!("%!{verb}({}={})", v.type_name(), v.print()),
    }
}

/// One verb applied to one argument.
fn one(verb: char, s: Spec, v: &Value) -> String {
    let int = match v {
        Value::Int(i) => Some(*i as i128),
        Value::Uint(u) => Some(*u as i128),
        _ => None,
    };
    let body = match (verb, v) {
        ('v', Value::Float(f)) => sign(s, *f < 0.0, go_float(f.abs())),
        ('v', _) if int.is_some() => return one('d', s, v),
        ('v', Value::Struct(_)) if s.plus => with_names(v),
        ('v', _) => v.print(),
        ('T', _) => v.type_name().to_owned(),
        ('s', Value::Str(x)) => truncate(x, s.prec),
        ('s', Value::List(_) | Value::Map(_) | Value::Struct(_)) => v.print(),
        ('q', Value::Str(x)) => quote(&truncate(x, s.prec)),
        ('x' | 'X', Value::Str(x)) => {
            let h: String = x.bytes().map(|b| format!("{b:02x}")).collect();
            if verb == 'X' {
                h.to_uppercase()
            } else {
                h
            }
        }
        ('t', Value::Bool(b)) => b.to_string(),
        ('d' | 'x' | 'X' | 'o' | 'O' | 'b', _) if int.is_some() => {
            let i = int.unwrap_or_default();
            let mag = i.unsigned_abs();
            let mut digits = match verb {
                'd' => mag.to_string(),
                'x' => format!("{mag:x}"),
                'X' => format!("{mag:X}"),
                'o' | 'O' => format!("{mag:o}"),
                _ => format!("{mag:b}"),
            };
            if let Some(p) = s.prec {
                while digits.len() < p {
                    digits.insert(0, '0');
                }
            }
            let prefix = match verb {
                'x' if s.sharp => "0x",
                'X' if s.sharp => "0X",
                'o' if s.sharp => "0",
                'O' => "0o",
                _ => "",
            };
            return pad_number(s, i < 0, &format!("{prefix}{digits}"));
        }
        ('c', _) if int.is_some() => char::from_u32(int.unwrap_or_default() as u32)
            .unwrap_or('\u{fffd}')
            .to_string(),
        ('q', _) if int.is_some() => {
            let c = char::from_u32(int.unwrap_or_default() as u32).unwrap_or('\u{fffd}');
            format!("'{}'", c.escape_default())
        }
        ('U', _) if int.is_some() => format!("U+{:04X}", int.unwrap_or_default()),
        ('e' | 'E' | 'f' | 'F' | 'g' | 'G', Value::Float(f)) => {
            let text = float(verb, s.prec, f.abs());
            return pad_number(s, *f < 0.0, &text);
        }
        _ => return bad(verb, v),
    };
    pad(s, &body)
}

/// `%+v`: structs with their field names, `{Name:web Id:1}`.
fn with_names(v: &Value) -> String {
    match v {
        Value::Struct(f) => {
            let parts: Vec<String> = f
                .iter()
                .map(|(k, v)| format!("{k}:{}", with_names(v)))
                .collect();
            format!("{{{}}}", parts.join(" "))
        }
        Value::List(l) => format!(
            "[{}]",
            l.iter().map(with_names).collect::<Vec<_>>().join(" ")
        ),
        other => other.print(),
    }
}

fn sign(s: Spec, neg: bool, body: String) -> String {
    if neg {
        format!("-{body}")
    } else if s.plus {
        format!("+{body}")
    } else if s.space {
        format!(" {body}")
    } else {
        body
    }
}

fn pad(s: Spec, body: &str) -> String {
    let len = body.chars().count();
    let Some(w) = s.width.filter(|w| *w > len) else {
        return body.to_owned();
    };
    let fill = " ".repeat(w - len);
    if s.minus {
        format!("{body}{fill}")
    } else {
        format!("{fill}{body}")
    }
}

/// A number with its sign, padded with zeros after the sign when the `0` flag asks.
fn pad_number(s: Spec, neg: bool, digits: &str) -> String {
    let signed = sign(s, neg, digits.to_owned());
    if s.zero && !s.minus && s.prec.is_none_or(|_| digits.contains(['.', 'e'])) {
        if let Some(w) = s.width {
            let sign_len = signed.len() - digits.len();
            if signed.len() < w {
                let zeros = "0".repeat(w - signed.len());
                return format!("{}{zeros}{digits}", &signed[..sign_len]);
            }
        }
    }
    pad(s, &signed)
}

fn truncate(x: &str, prec: Option<usize>) -> String {
    match prec {
        Some(p) => x.chars().take(p).collect(),
        None => x.to_owned(),
    }
}

/// Go's strconv.Quote.
pub fn quote(x: &str) -> String {
    let mut out = String::from("\"");
    for c in x.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A non-negative float in %e, %f or %g.
fn float(verb: char, prec: Option<usize>, f: f64) -> String {
    let upper = verb.is_ascii_uppercase();
    let text = match verb.to_ascii_lowercase() {
        'f' => format!("{f:.*}", prec.unwrap_or(6)),
        'e' => exp_form(&format!("{f:.*e}", prec.unwrap_or(6))),
        _ => match prec {
            None => go_float(f),
            Some(p) => {
                let p = p.max(1);
                let sci = format!("{f:.*e}", p - 1);
                let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
                let exp: i32 = exp.parse().unwrap_or(0);
                let mant = trim_zeros(mant);
                if exp < -4 || exp >= p as i32 {
                    exp_form(&format!("{mant}e{exp}"))
                } else {
                    let decimals = (p as i32 - 1 - exp).max(0) as usize;
                    trim_zeros(&format!("{f:.decimals$}")).to_owned()
                }
            }
        },
    };
    if upper {
        text.to_uppercase()
    } else {
        text
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Rust's `1.5e3` as Go's `1.5e+03`.
fn exp_form(s: &str) -> String {
    let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mant}e{sign}{:02}", exp.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    #[test]
    fn verbs_as_go_prints_them() {
        // Each expected string is what Go 1.24's fmt printed for the same call.
        let args = [
            Value::Int(42),
            s("s"),
            s("default"),
            Value::Float(3.14158),
            s("ab"),
            s("q\""),
            Value::Int(255),
            s("hi"),
            Value::Int(8),
            Value::Bool(true),
            Value::Int(65),
            Value::Float(1234.5678),
            Value::Float(0.000012345),
            Value::Float(-3.5),
            Value::Int(5),
        ];
        assert_eq!(
            sprintf("%d %s %v %5.2f|%-4s|%q|%x|%X|%o|%t|%c|%e|%g|%08.3f|%+d", &args),
            "42 s default  3.14|ab  |\"q\\\"\"|ff|6869|10|true|A|1.234568e+03|1.2345e-05|-003.500|+5"
        );
        assert_eq!(sprintf("%d", &[s("x")]), "%!d(string=x)");
        assert_eq!(sprintf("%d", &[]), "%!d(MISSING)");
        assert_eq!(
            sprintf("%d", &[Value::Int(1), Value::Int(2)]),
            "1%!(EXTRA int=2)"
        );
        assert_eq!(
            sprintf(
                "%05d|%-5d|%5s|%.2s|%%",
                &[Value::Int(-42), Value::Int(7), s("ab"), s("abc")]
            ),
            "-0042|7    |   ab|ab|%"
        );
        assert_eq!(
            sprintf(
                "%.3g|%g|%v",
                &[
                    Value::Float(1234.5678),
                    Value::Float(1e6),
                    Value::Float(2.5)
                ]
            ),
            "1.23e+03|1e+06|2.5"
        );
        assert_eq!(
            sprintf(
                "%v %s",
                &[Value::List(vec![s("a"), s("b")]), Value::Missing]
            ),
            "[a b] %!s(<nil>)"
        );
        let st = Value::from_json(&serde_json::json!({"A": "x", "B": {"C": 1}}));
        assert_eq!(
            sprintf("%+v|%v", &[st.clone(), st]),
            "{A:x B:{C:1}}|{x {1}}"
        );
    }
}
