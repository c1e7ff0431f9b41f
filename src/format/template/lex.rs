//! The template lexer: text, `{{ }}` actions with their trim markers and comments, and the
//! words inside an action, each with its byte offset (for error positions).

use super::ParseError;

/// One lexical item.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// Text outside actions (already trimmed by `{{-` / `-}}`).
    Text(String),
    /// `{{`
    Left,
    /// `}}`
    Right,
    /// A run of spaces inside an action (it separates arguments).
    Space,
    /// A keyword or function name.
    Ident(String),
    /// `.Name` (the name without the dot).
    Field(String),
    /// `$` or `$name` (with the `$`).
    Var(String),
    /// `.` alone.
    Dot,
    Str(String),
    /// A character constant, an integer to the template.
    Char(char),
    /// A number as written.
    Number(String),
    Bool(bool),
    Nil,
    Pipe,
    LParen,
    RParen,
    /// `=`
    Assign,
    /// `:=`
    Declare,
    Comma,
    /// Any other printable ASCII character: the parser says where it is unexpected.
    Other(char),
    Eof,
}

/// A token and where it starts in the template text.
#[derive(Debug, Clone)]
pub(super) struct Token {
    pub tok: Tok,
    pub pos: usize,
}

const KEYWORD_LIKE: &[&str] = &[
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

pub(super) fn is_keyword(s: &str) -> bool {
    KEYWORD_LIKE.contains(&s)
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Splits `src` into tokens.
pub(super) fn lex(src: &str) -> Result<Vec<Token>, ParseError> {
    Lexer {
        src,
        b: src.as_bytes(),
        pos: 0,
        out: Vec::new(),
        parens: 0,
    }
    .run()
}

struct Lexer<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    out: Vec<Token>,
    parens: usize,
}

impl Lexer<'_> {
    fn err(&self, at: usize, msg: impl Into<String>) -> ParseError {
        ParseError::new(self.src, at, msg)
    }

    fn push(&mut self, tok: Tok, pos: usize) {
        self.out.push(Token { tok, pos });
    }

    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn run(mut self) -> Result<Vec<Token>, ParseError> {
        let mut trim_next = false;
        loop {
            let start = self.pos;
            let Some(i) = self.rest().find("{{") else {
                let mut text = self.rest();
                if trim_next {
                    text = text.trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8));
                }
                if !text.is_empty() {
                    self.push(Tok::Text(text.to_owned()), start);
                }
                self.pos = self.src.len();
                self.push(Tok::Eof, self.pos);
                return Ok(self.out);
            };
            let left = start + i;
            let trim_left = self.b.get(left + 2) == Some(&b'-')
                && self.b.get(left + 3).is_some_and(|c| is_space(*c));
            let mut text = &self.src[start..left];
            if trim_next {
                text = text.trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8));
            }
            if trim_left {
                text = text.trim_end_matches(|c: char| c.is_ascii() && is_space(c as u8));
            }
            if !text.is_empty() {
                self.push(Tok::Text(text.to_owned()), start);
            }
            self.pos = left + if trim_left { 4 } else { 2 };
            trim_next = if self.rest().starts_with("/*") {
                self.comment(left)?
            } else {
                self.push(Tok::Left, left);
                self.action()?
            };
        }
    }

    /// `{{/* ... */}}`; true when it ends with a trim marker.
    fn comment(&mut self, left: usize) -> Result<bool, ParseError> {
        let Some(end) = self.rest().find("*/") else {
            return Err(self.err(left, "unclosed comment"));
        };
        self.pos += end + 2;
        if let Some(trim) = self.right_delim() {
            return Ok(trim);
        }
        Err(self.err(left, "comment ends before closing delimiter"))
    }

    /// At `}}` or ` -}}`: consumes it and says whether it trims.
    fn right_delim(&mut self) -> Option<bool> {
        let r = self.rest().as_bytes();
        if r.starts_with(b"}}") {
            self.pos += 2;
            Some(false)
        } else if r.len() >= 4 && is_space(r[0]) && r[1..].starts_with(b"-}}") {
            self.pos += 4;
            Some(true)
        } else {
            None
        }
    }

    /// The inside of an action, up to and with its `}}`; true when it ends with `-}}`.
    fn action(&mut self) -> Result<bool, ParseError> {
        loop {
            let at = self.pos;
            if self.parens == 0 {
                if let Some(trim) = self.right_delim() {
                    self.push(Tok::Right, at);
                    return Ok(trim);
                }
            }
            let Some(&c) = self.b.get(self.pos) else {
                return Err(self.err(at, "unclosed action"));
            };
            match c {
                _ if is_space(c) => {
                    // ` -}}` ends the action; the space before it is not a separator.
                    while self.b.get(self.pos).is_some_and(|c| is_space(*c)) {
                        let r = &self.b[self.pos..];
                        if r.len() >= 4 && r[1..].starts_with(b"-}}") {
                            break;
                        }
                        self.pos += 1;
                    }
                    if self.pos > at {
                        self.push(Tok::Space, at);
                    } else if let Some(trim) = self.right_delim() {
                        // A lone space before `-}}` (no separator needed).
                        self.push(Tok::Right, at);
                        return Ok(trim);
                    }
                    if self.parens > 0 && self.right_delim_ahead() {
                        return Err(self.err(at, "unclosed left paren"));
                    }
                }
                b'}' if self.parens > 0 && self.rest().starts_with("}}") => {
                    return Err(self.err(at, "unclosed left paren"));
                }
                b'=' => self.single(Tok::Assign),
                b':' => {
                    if self.b.get(self.pos + 1) != Some(&b'=') {
                        return Err(self.err(at, "expected :="));
                    }
                    self.pos += 2;
                    self.push(Tok::Declare, at);
                }
                b'|' => self.single(Tok::Pipe),
                b',' => self.single(Tok::Comma),
                b'(' => {
                    self.parens += 1;
                    self.single(Tok::LParen);
                }
                b')' => {
                    if self.parens == 0 {
                        return Err(self.err(at, "unexpected right paren"));
                    }
                    self.parens -= 1;
                    self.single(Tok::RParen);
                }
                b'"' => self.quoted()?,
                b'`' => self.raw()?,
                b'\'' => self.char_const()?,
                b'$' => {
                    let end = self.word_end(self.pos + 1);
                    let name = self.src[at..end].to_owned();
                    self.pos = end;
                    self.push(Tok::Var(name), at);
                }
                b'.' => {
                    if self.b.get(self.pos + 1).is_some_and(u8::is_ascii_digit) {
                        self.number()?;
                    } else {
                        let end = self.word_end(self.pos + 1);
                        if end == self.pos + 1 {
                            self.single(Tok::Dot);
                        } else {
                            let name = self.src[at + 1..end].to_owned();
                            self.pos = end;
                            self.push(Tok::Field(name), at);
                        }
                    }
                }
                b'+' | b'-' | b'0'..=b'9' => self.number()?,
                _ if c == b'_' || c.is_ascii_alphabetic() || c >= 0x80 => {
                    let end = self.word_end(self.pos);
                    if end == self.pos {
                        let ch = self.rest().chars().next().unwrap_or('?');
                        return Err(self.err(at, format!("bad character {}", go_rune(ch))));
                    }
                    let word = &self.src[at..end];
                    let tok = match word {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        w => Tok::Ident(w.to_owned()),
                    };
                    self.pos = end;
                    if !self.at_terminator() {
                        let ch = self.rest().chars().next().unwrap_or('?');
                        return Err(self.err(at, format!("bad character {}", go_rune(ch))));
                    }
                    self.push(tok, at);
                }
                b'}' => {
                    return Err(self.err(at, format!("bad character {}", go_rune('}'))));
                }
                _ if c.is_ascii_graphic() => self.single(Tok::Other(c as char)),
                _ => {
                    let ch = self.rest().chars().next().unwrap_or('?');
                    return Err(self.err(at, format!("bad character {}", go_rune(ch))));
                }
            }
        }
    }

    fn right_delim_ahead(&self) -> bool {
        self.rest().starts_with("}}")
    }

    fn single(&mut self, tok: Tok) {
        let at = self.pos;
        self.pos += 1;
        self.push(tok, at);
    }

    /// Whether the word just read may end here (Go's atTerminator).
    fn at_terminator(&self) -> bool {
        match self.b.get(self.pos) {
            None => true,
            Some(c) if is_space(*c) => true,
            Some(b'.' | b',' | b'|' | b':' | b')' | b'(') => true,
            Some(_) => self.rest().starts_with("}}"),
        }
    }

    /// End of the alphanumeric word starting at `from`.
    fn word_end(&self, from: usize) -> usize {
        let mut end = from;
        for ch in self.src[from..].chars() {
            if ch == '_' || ch.is_alphanumeric() {
                end += ch.len_utf8();
            } else {
                break;
            }
        }
        end
    }

    fn quoted(&mut self) -> Result<(), ParseError> {
        let at = self.pos;
        let mut i = self.pos + 1;
        loop {
            match self.b.get(i) {
                None | Some(b'\n') => return Err(self.err(at, "unterminated quoted string")),
                Some(b'\\') => i += 2,
                Some(b'"') => break,
                Some(_) => i += 1,
            }
        }
        let lit = &self.src[at..=i];
        let s = unquote(lit).ok_or_else(|| self.err(at, format!("invalid syntax: {lit}")))?;
        self.pos = i + 1;
        self.push(Tok::Str(s), at);
        Ok(())
    }

    fn raw(&mut self) -> Result<(), ParseError> {
        let at = self.pos;
        let Some(end) = self.src[at + 1..].find('`') else {
            return Err(self.err(at, "unterminated raw quoted string"));
        };
        let s = self.src[at + 1..at + 1 + end].to_owned();
        self.pos = at + end + 2;
        self.push(Tok::Str(s), at);
        Ok(())
    }

    fn char_const(&mut self) -> Result<(), ParseError> {
        let at = self.pos;
        let mut i = self.pos + 1;
        loop {
            match self.b.get(i) {
                None | Some(b'\n') => return Err(self.err(at, "unterminated character constant")),
                Some(b'\\') => i += 2,
                Some(b'\'') => break,
                Some(_) => i += 1,
            }
        }
        let lit = &self.src[at..=i];
        let body = &lit[1..lit.len() - 1];
        let s = if body == "\"" {
            body.to_owned()
        } else {
            unquote(&format!("\"{}\"", body.replace("\\'", "'"))).unwrap_or_default()
        };
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => {
                self.pos = i + 1;
                self.push(Tok::Char(c), at);
                Ok(())
            }
            _ => Err(self.err(at, format!("malformed character constant: {lit}"))),
        }
    }

    fn number(&mut self) -> Result<(), ParseError> {
        let at = self.pos;
        let mut i = self.pos;
        if matches!(self.b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let mut digits: &[u8] = b"0123456789_";
        let mut exp: &[u8] = b"eE";
        if self.b.get(i) == Some(&b'0') {
            match self.b.get(i + 1) {
                Some(b'x' | b'X') => {
                    i += 2;
                    digits = b"0123456789abcdefABCDEF_";
                    exp = b"pP";
                }
                Some(b'o' | b'O') => {
                    i += 2;
                    digits = b"01234567_";
                    exp = b"";
                }
                Some(b'b' | b'B') => {
                    i += 2;
                    digits = b"01_";
                    exp = b"";
                }
                _ => {}
            }
        }
        let run = |i: &mut usize, set: &[u8]| {
            while self.b.get(*i).is_some_and(|c| set.contains(c)) {
                *i += 1;
            }
        };
        run(&mut i, digits);
        if self.b.get(i) == Some(&b'.') {
            i += 1;
            run(&mut i, digits);
        }
        if !exp.is_empty() && self.b.get(i).is_some_and(|c| exp.contains(c)) {
            i += 1;
            if matches!(self.b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            run(&mut i, b"0123456789_");
        }
        if self.b.get(i) == Some(&b'i') {
            i += 1;
        }
        let word_end = self.word_end(i);
        let text = &self.src[at..word_end.max(i)];
        if word_end > i || text == "+" || text == "-" {
            return Err(self.err(at, format!("bad number syntax: {text:?}")));
        }
        self.pos = i;
        self.push(Tok::Number(text.to_owned()), at);
        Ok(())
    }
}

/// Go's %#U of a rune: `U+007D '}'`.
fn go_rune(c: char) -> String {
    format!("U+{:04X} '{c}'", c as u32)
}

/// Go's strconv.Unquote of a double-quoted literal.
pub(super) fn unquote(lit: &str) -> Option<String> {
    let inner = lit.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next()?;
        let ch = match e {
            'a' => '\x07',
            'b' => '\x08',
            'f' => '\x0c',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\x0b',
            '\\' => '\\',
            '"' => '"',
            '\'' => '\'',
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = chars.by_ref().take(n).collect();
                if hex.len() != n {
                    return None;
                }
                char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
            }
            '0'..='7' => {
                let rest: String = chars.by_ref().take(2).collect();
                let v = u32::from_str_radix(&format!("{e}{rest}"), 8).ok()?;
                char::from_u32(v)?
            }
            _ => return None,
        };
        out.push(ch);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn text_actions_and_trim_markers() {
        assert_eq!(
            toks("a  {{- .X -}}  b"),
            vec![
                Tok::Text("a".into()),
                Tok::Left,
                Tok::Field("X".into()),
                Tok::Right,
                Tok::Text("b".into()),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("{{$x := \"a\\tb\" | printf `%s`}}"),
            vec![
                Tok::Left,
                Tok::Var("$x".into()),
                Tok::Space,
                Tok::Declare,
                Tok::Space,
                Tok::Str("a\tb".into()),
                Tok::Space,
                Tok::Pipe,
                Tok::Space,
                Tok::Ident("printf".into()),
                Tok::Space,
                Tok::Str("%s".into()),
                Tok::Right,
                Tok::Eof
            ]
        );
        assert_eq!(toks("x{{/* c */}}y").len(), 3);
        assert_eq!(
            toks("{{-3}} {{ 0x1F }} {{'a'}}")[1..2],
            [Tok::Number("-3".into())]
        );
    }

    #[test]
    fn errors_say_what_and_where() {
        let e = |s: &str| lex(s).unwrap_err().to_string();
        assert_eq!(e("{{.Name"), "template: :1: unclosed action");
        assert_eq!(e("{{.Name}"), "template: :1: bad character U+007D '}'");
        assert_eq!(e("a\n{{/* x }}"), "template: :2: unclosed comment");
        assert_eq!(e("{{\"abc}}"), "template: :1: unterminated quoted string");
        assert_eq!(e("{{3x}}"), "template: :1: bad number syntax: \"3x\"");
        assert_eq!(e("{{.A)}}"), "template: :1: unexpected right paren");
        assert_eq!(e("{{(.A}}"), "template: :1: unclosed left paren");
    }

    #[test]
    fn unquotes_go_strings() {
        assert_eq!(unquote(r#""a\n\x41\u00e9\101""#).unwrap(), "a\nAéA");
    }
}
