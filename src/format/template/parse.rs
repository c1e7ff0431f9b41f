//! The template parser: tokens to a tree of text, actions and control structures, checking
//! function names and variables as Go's text/template/parse does.

use super::lex::{is_keyword, Tok, Token};
use super::value::Value;
use super::{funcs, ParseError};

/// A node of the template tree.
#[derive(Debug, Clone)]
pub(super) enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    Range(Branch),
    With(Branch),
    Break,
    Continue,
}

/// `{{if|range|with pipeline}} list {{else}} else_list {{end}}`.
#[derive(Debug, Clone)]
pub(super) struct Branch {
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

/// `$a, $b := cmd | cmd | ...`.
#[derive(Debug, Clone)]
pub(super) struct Pipe {
    pub decl: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Cmd>,
}

/// One command of a pipeline: a function and its arguments, or a single operand.
#[derive(Debug, Clone)]
pub(super) struct Cmd {
    pub args: Vec<Arg>,
    /// The command as written (for errors).
    pub text: String,
}

/// An operand, with where it is and how it was written (for errors).
#[derive(Debug, Clone)]
pub(super) struct Arg {
    pub pos: usize,
    pub text: String,
    pub kind: ArgKind,
}

#[derive(Debug, Clone)]
pub(super) enum ArgKind {
    Dot,
    /// A constant: string, number, bool or nil.
    Const(Value),
    /// `.A.B` on dot.
    Field(Vec<String>),
    /// `$x.A.B`.
    Var(String, Vec<String>),
    /// A function name.
    Func(String),
    /// `(pipeline)`.
    Pipe(Box<Pipe>),
    /// `(pipeline).A.B`.
    Chain(Box<Arg>, Vec<String>),
}

/// Parses the tokens of `src` into the template's top-level list.
pub(super) fn parse(src: &str, tokens: Vec<Token>) -> Result<Vec<Node>, ParseError> {
    let mut p = Parser {
        src,
        toks: tokens,
        i: 0,
        vars: vec!["$".to_owned()],
        range_depth: 0,
    };
    let (list, end) = p.item_list()?;
    match end {
        Stop::Eof => Ok(list),
        Stop::EndAction(at) => Err(p.err(at, "unexpected {{end}}")),
        Stop::Else(at) => Err(p.err(at, "unexpected {{else}}")),
    }
}

/// What ended a list.
enum Stop {
    Eof,
    EndAction(usize),
    /// `{{else` (the parser stands after `else`).
    Else(usize),
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    i: usize,
    vars: Vec<String>,
    range_depth: usize,
}

impl Parser<'_> {
    fn err(&self, at: usize, msg: impl Into<String>) -> ParseError {
        ParseError::new(self.src, at, msg)
    }

    fn peek(&self) -> &Token {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn skip_space(&mut self) {
        while self.peek().tok == Tok::Space {
            self.i += 1;
        }
    }

    fn next_non_space(&mut self) -> Token {
        self.skip_space();
        self.next()
    }

    fn peek_non_space(&mut self) -> Token {
        self.skip_space();
        self.peek().clone()
    }

    /// Go's description of an unexpected token.
    fn describe(&self, t: &Token) -> String {
        match &t.tok {
            Tok::Eof => "EOF".into(),
            Tok::Right => "\"}}\"".into(),
            Tok::Left => "\"{{\"".into(),
            Tok::Space => "space".into(),
            Tok::Ident(k) if is_keyword(k) => format!("<{k}>"),
            Tok::Other(c) => format!("{:?}", c.to_string()),
            _ => format!("{:?}", self.token_text(t)),
        }
    }

    /// The text of a token as written.
    fn token_text(&self, t: &Token) -> String {
        let rest = &self.src[t.pos..];
        match &t.tok {
            Tok::Field(n) => format!(".{n}"),
            Tok::Var(n) | Tok::Ident(n) | Tok::Number(n) => n.clone(),
            Tok::Str(_) | Tok::Char(_) => {
                let q = rest.chars().next().unwrap_or('"');
                let end = rest[1..].find(q).map(|e| e + 2).unwrap_or(rest.len());
                rest[..end].to_owned()
            }
            Tok::Bool(b) => b.to_string(),
            Tok::Nil => "nil".into(),
            Tok::Dot => ".".into(),
            Tok::Pipe => "|".into(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::Assign => "=".into(),
            Tok::Declare => ":=".into(),
            Tok::Comma => ",".into(),
            Tok::Other(c) => c.to_string(),
            _ => String::new(),
        }
    }

    fn unexpected(&self, t: &Token, context: &str) -> ParseError {
        if t.tok == Tok::Eof {
            return self.err(t.pos, "unexpected EOF");
        }
        self.err(
            t.pos,
            format!("unexpected {} in {context}", self.describe(t)),
        )
    }

    fn item_list(&mut self) -> Result<(Vec<Node>, Stop), ParseError> {
        let mut list = Vec::new();
        loop {
            let t = self.next();
            match t.tok {
                Tok::Eof => return Ok((list, Stop::Eof)),
                Tok::Text(s) => list.push(Node::Text(s)),
                Tok::Left => match self.action()? {
                    Action::Node(n) => list.push(n),
                    Action::End(at) => return Ok((list, Stop::EndAction(at))),
                    Action::Else(at) => return Ok((list, Stop::Else(at))),
                },
                _ => return Err(self.unexpected(&t, "input")),
            }
        }
    }

    fn action(&mut self) -> Result<Action, ParseError> {
        let t = self.peek_non_space();
        if let Tok::Ident(k) = &t.tok {
            let k = k.clone();
            if is_keyword(&k) {
                self.next();
                return self.keyword(&k, t.pos);
            }
        }
        let pipe = self.pipeline("command", Tok::Right)?;
        Ok(Action::Node(Node::Action(pipe)))
    }

    fn expect_right(&mut self, context: &str) -> Result<(), ParseError> {
        let t = self.next_non_space();
        if t.tok != Tok::Right {
            return Err(self.unexpected(&t, context));
        }
        Ok(())
    }

    fn keyword(&mut self, k: &str, at: usize) -> Result<Action, ParseError> {
        match k {
            "end" => {
                self.expect_right("end")?;
                Ok(Action::End(at))
            }
            "else" => {
                let next = self.peek_non_space();
                let chained = matches!(&next.tok, Tok::Ident(w) if w == "if" || w == "with");
                if !chained {
                    self.expect_right("else")?;
                }
                Ok(Action::Else(at))
            }
            "if" => Ok(Action::Node(Node::If(self.control("if")?))),
            "with" => Ok(Action::Node(Node::With(self.control("with")?))),
            "range" => Ok(Action::Node(Node::Range(self.control("range")?))),
            "break" | "continue" => {
                if self.range_depth == 0 {
                    return Err(self.err(at, format!("{{{{{k}}}}} outside {{{{range}}}}")));
                }
                self.expect_right(&format!("{{{{{k}}}}}"))?;
                Ok(Action::Node(if k == "break" {
                    Node::Break
                } else {
                    Node::Continue
                }))
            }
            _ => Err(self.err(
                at,
                format!("{{{{{k}}}}} is not supported in --format templates"),
            )),
        }
    }

    /// `if`, `with` and `range`: pipeline, list, optional else, end.
    fn control(&mut self, context: &str) -> Result<Branch, ParseError> {
        let vars = self.vars.len();
        let pipe = self.pipeline(context, Tok::Right)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let (list, end) = self.item_list()?;
        if context == "range" {
            self.range_depth -= 1;
        }
        let else_list = match end {
            Stop::Eof => return Err(self.err(self.src.len(), "unexpected EOF")),
            Stop::EndAction(_) => None,
            Stop::Else(at) => {
                let next = self.peek_non_space();
                match &next.tok {
                    Tok::Ident(w) if (w == "if" || w == "with") && w == context => {
                        // `{{else if ...}}`: one nested control that takes the outer `{{end}}`.
                        self.next();
                        let inner = self.control(context)?;
                        Some(vec![if context == "if" {
                            Node::If(inner)
                        } else {
                            Node::With(inner)
                        }])
                    }
                    Tok::Ident(w) if w == "if" || w == "with" => {
                        return Err(self.err(at, format!("unexpected <{w}> in else")));
                    }
                    _ => {
                        let (l, end) = self.item_list()?;
                        match end {
                            Stop::EndAction(_) => Some(l),
                            Stop::Eof => return Err(self.err(self.src.len(), "unexpected EOF")),
                            Stop::Else(at) => {
                                return Err(self.err(at, "expected end; found {{else}}"))
                            }
                        }
                    }
                }
            }
        };
        self.vars.truncate(vars);
        Ok(Branch {
            pipe,
            list,
            else_list,
        })
    }

    /// Declarations, then commands separated by `|`, up to `end` (`}}` or `)`).
    fn pipeline(&mut self, context: &str, end: Tok) -> Result<Pipe, ParseError> {
        let start = self.peek_non_space().pos;
        let mut pipe = Pipe {
            decl: Vec::new(),
            assign: false,
            cmds: Vec::new(),
        };
        self.declarations(&mut pipe, context)?;
        loop {
            let t = self.peek_non_space();
            if t.tok == end {
                self.next();
                break;
            }
            match t.tok {
                Tok::Bool(_)
                | Tok::Char(_)
                | Tok::Dot
                | Tok::Field(_)
                | Tok::Ident(_)
                | Tok::Number(_)
                | Tok::Nil
                | Tok::Str(_)
                | Tok::Var(_)
                | Tok::LParen => {
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => {
                    self.next();
                    return Err(self.unexpected(&t, context));
                }
            }
        }
        if pipe.cmds.is_empty() {
            return Err(self.err(start, format!("missing value for {context}")));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(c.args[0].kind, ArgKind::Const(_) | ArgKind::Dot) {
                return Err(self.err(
                    c.args[0].pos,
                    format!("non executable command in pipeline stage {}", i + 1),
                ));
            }
        }
        // Declared variables are visible after the pipeline.
        for d in &pipe.decl {
            if !pipe.assign {
                self.vars.push(d.clone());
            }
        }
        Ok(pipe)
    }

    fn declarations(&mut self, pipe: &mut Pipe, context: &str) -> Result<(), ParseError> {
        loop {
            let save = self.i;
            let v = self.peek_non_space();
            let Tok::Var(name) = v.tok.clone() else {
                self.i = save;
                return Ok(());
            };
            self.next();
            let next = self.peek_non_space();
            match next.tok {
                Tok::Declare | Tok::Assign => {
                    self.next();
                    pipe.assign = next.tok == Tok::Assign;
                    if pipe.assign && !self.vars.contains(&name) {
                        return Err(self.err(v.pos, format!("undefined variable {name:?}")));
                    }
                    pipe.decl.push(name);
                    return Ok(());
                }
                Tok::Comma => {
                    self.next();
                    pipe.decl.push(name);
                    if context == "range" && pipe.decl.len() < 2 {
                        let after = self.peek_non_space();
                        if matches!(after.tok, Tok::Var(_) | Tok::Right | Tok::RParen) {
                            continue;
                        }
                        return Err(self.err(after.pos, "range can only initialize variables"));
                    }
                    return Err(self.err(v.pos, format!("too many declarations in {context}")));
                }
                _ => {
                    self.i = save;
                    return Ok(());
                }
            }
        }
    }

    fn command(&mut self) -> Result<Cmd, ParseError> {
        let mut args = Vec::new();
        loop {
            self.skip_space();
            if let Some(a) = self.operand()? {
                args.push(a);
            }
            let t = self.peek().clone();
            match t.tok {
                Tok::Space => {
                    self.next();
                    continue;
                }
                Tok::Right | Tok::RParen => {}
                Tok::Pipe => {
                    self.next();
                }
                _ => {
                    self.next();
                    return Err(self.unexpected(&t, "operand"));
                }
            }
            break;
        }
        let (Some(first), Some(last)) = (args.first(), args.last()) else {
            return Err(self.err(self.peek().pos, "empty command"));
        };
        let end = (last.pos + last.text.len()).min(self.src.len());
        let text = self.src[first.pos.min(end)..end].to_owned();
        Ok(Cmd { args, text })
    }

    /// A term and the fields chained on it.
    fn operand(&mut self) -> Result<Option<Arg>, ParseError> {
        let Some(mut arg) = self.term()? else {
            return Ok(None);
        };
        let mut chain = Vec::new();
        let mut chain_pos = None;
        while let Tok::Field(f) = &self.peek().tok {
            chain_pos.get_or_insert(self.peek().pos);
            chain.push(f.clone());
            self.next();
        }
        if chain.is_empty() {
            return Ok(Some(arg));
        }
        let pos = chain_pos.unwrap_or(arg.pos);
        let text = format!("{}.{}", arg.text, chain.join("."));
        arg = match arg.kind {
            ArgKind::Field(mut f) => Arg {
                pos,
                text,
                kind: ArgKind::Field({
                    f.extend(chain);
                    f
                }),
            },
            ArgKind::Var(v, mut f) => Arg {
                pos,
                text,
                kind: ArgKind::Var(v, {
                    f.extend(chain);
                    f
                }),
            },
            ArgKind::Const(_) | ArgKind::Dot => {
                return Err(self.err(pos, format!("unexpected . after term {:?}", arg.text)));
            }
            _ => Arg {
                pos,
                text,
                kind: ArgKind::Chain(Box::new(arg), chain),
            },
        };
        Ok(Some(arg))
    }

    fn term(&mut self) -> Result<Option<Arg>, ParseError> {
        let t = self.peek_non_space();
        let text = self.token_text(&t);
        let kind = match &t.tok {
            Tok::Ident(name) if is_keyword(name) => return Ok(None),
            Tok::Ident(name) => {
                if !funcs::exists(name) {
                    return Err(self.err(t.pos, format!("function {name:?} not defined")));
                }
                ArgKind::Func(name.clone())
            }
            Tok::Dot => ArgKind::Dot,
            Tok::Nil => ArgKind::Const(Value::Nil),
            Tok::Bool(b) => ArgKind::Const(Value::Bool(*b)),
            Tok::Str(s) => ArgKind::Const(Value::Str(s.clone())),
            Tok::Char(c) => ArgKind::Const(Value::Int(*c as i64)),
            Tok::Number(n) => ArgKind::Const(
                number(n)
                    .ok_or_else(|| self.err(t.pos, format!("illegal number syntax: {n:?}")))?,
            ),
            Tok::Var(name) => {
                if !self.vars.contains(name) {
                    return Err(self.err(t.pos, format!("undefined variable {name:?}")));
                }
                ArgKind::Var(name.clone(), Vec::new())
            }
            Tok::Field(f) => ArgKind::Field(vec![f.clone()]),
            Tok::LParen => {
                self.next();
                let pipe = self.pipeline("parenthesized pipeline", Tok::RParen)?;
                let end = self.toks[self.i - 1].pos + 1;
                return Ok(Some(Arg {
                    pos: t.pos,
                    text: self.src[t.pos..end].to_owned(),
                    kind: ArgKind::Pipe(Box::new(pipe)),
                }));
            }
            _ => return Ok(None),
        };
        self.next();
        Ok(Some(Arg {
            pos: t.pos,
            text,
            kind,
        }))
    }
}

enum Action {
    Node(Node),
    End(usize),
    Else(usize),
}

/// A number constant as Go's parser reads it: an integer unless it has a fraction or exponent.
fn number(text: &str) -> Option<Value> {
    let clean = text.replace('_', "");
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    if body.ends_with('i') {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    let hex = lower.starts_with("0x");
    if !hex && lower.contains(['.', 'e']) {
        let f: f64 = lower.parse().ok()?;
        return Some(Value::Float(if neg { -f } else { f }));
    }
    if hex && lower.contains(['.', 'p']) {
        return None;
    }
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    let u = u64::from_str_radix(digits, radix).ok()?;
    if neg {
        let i = i64::try_from(u).ok()?;
        Some(Value::Int(-i))
    } else {
        Some(i64::try_from(u).map(Value::Int).unwrap_or(Value::Uint(u)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_ints_unless_written_as_floats() {
        assert_eq!(number("42"), Some(Value::Int(42)));
        assert_eq!(number("-0x1F"), Some(Value::Int(-31)));
        assert_eq!(number("0o17"), Some(Value::Int(15)));
        assert_eq!(number("1_000"), Some(Value::Int(1000)));
        assert_eq!(number("1e6"), Some(Value::Float(1e6)));
        assert_eq!(number("2.5"), Some(Value::Float(2.5)));
        assert_eq!(number("1i"), None);
    }
}
