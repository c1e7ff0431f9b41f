//! Template execution: walks the tree over a [`Value`], with variables, `range`/`if`/`with`,
//! pipelines and function calls, failing as Go's text/template does (a missing struct field
//! is an error; a missing map key is `<no value>`).

use super::funcs;
use super::parse::{Arg, ArgKind, Branch, Cmd, Node, Pipe};
use super::value::Value;
use super::{ExecError, Template};

/// How a list ended: normally, or by `{{break}}` / `{{continue}}`.
#[derive(PartialEq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

pub(super) struct Exec<'t> {
    t: &'t Template,
    header: bool,
    vars: Vec<(String, Value)>,
    pub out: String,
}

impl<'t> Exec<'t> {
    pub fn new(t: &'t Template, data: &Value, header: bool) -> Exec<'t> {
        Exec {
            t,
            header,
            vars: vec![("$".to_owned(), data.clone())],
            out: String::new(),
        }
    }

    pub fn run(&mut self, data: &Value) -> Result<(), ExecError> {
        let root = &self.t.root;
        self.walk(data, root).map(|_| ())
    }

    fn err(&self, at: &Arg, msg: impl Into<String>) -> ExecError {
        ExecError::new(self.t, at.pos, &at.text, msg)
    }

    fn walk(&mut self, dot: &Value, nodes: &[Node]) -> Result<Flow, ExecError> {
        for node in nodes {
            let flow = match node {
                Node::Text(s) => {
                    self.out.push_str(s);
                    Flow::Normal
                }
                Node::Action(pipe) => {
                    let v = self.pipe(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        self.out.push_str(&v.print());
                    }
                    Flow::Normal
                }
                Node::If(b) => self.if_with(dot, b, false)?,
                Node::With(b) => self.if_with(dot, b, true)?,
                Node::Range(b) => self.range(dot, b)?,
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn if_with(&mut self, dot: &Value, b: &Branch, with: bool) -> Result<Flow, ExecError> {
        let mark = self.vars.len();
        let v = self.pipe(dot, &b.pipe)?;
        let flow = if v.truthy() {
            let inner = if with { &v } else { dot };
            self.walk(inner, &b.list)?
        } else if let Some(e) = &b.else_list {
            self.walk(dot, e)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn range(&mut self, dot: &Value, b: &Branch) -> Result<Flow, ExecError> {
        let mark = self.vars.len();
        let v = self.cmds(dot, &b.pipe.cmds)?;
        let items: Vec<(Value, Value)> = match v {
            Value::List(l) => l
                .into_iter()
                .enumerate()
                .map(|(i, e)| (Value::Int(i as i64), e))
                .collect(),
            Value::Map(m) => m.into_iter().map(|(k, e)| (Value::Str(k), e)).collect(),
            Value::Int(n) => (0..n.max(0))
                .map(|i| (Value::Int(i), Value::Int(i)))
                .collect(),
            Value::Missing | Value::Nil => Vec::new(),
            other => {
                let at = b.pipe.cmds.last().map(|c| &c.args[0]);
                let msg = format!("range can't iterate over {}", other.print());
                return Err(match at {
                    Some(a) => self.err(a, msg),
                    None => ExecError::new(self.t, 0, "range", msg),
                });
            }
        };
        if items.is_empty() {
            if let Some(e) = &b.else_list {
                let flow = self.walk(dot, e)?;
                self.vars.truncate(mark);
                return Ok(flow);
            }
        }
        for (key, elem) in items {
            self.vars.truncate(mark);
            match b.pipe.decl.as_slice() {
                [] => {}
                [e] => self.declare(e, elem.clone(), b.pipe.assign),
                [k, e, ..] => {
                    self.declare(k, key, b.pipe.assign);
                    self.declare(e, elem.clone(), b.pipe.assign);
                }
            }
            if self.walk(&elem, &b.list)? == Flow::Break {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(Flow::Normal)
    }

    fn declare(&mut self, name: &str, v: Value, assign: bool) {
        if assign {
            if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                slot.1 = v;
                return;
            }
        }
        self.vars.push((name.to_owned(), v));
    }

    fn pipe(&mut self, dot: &Value, pipe: &Pipe) -> Result<Value, ExecError> {
        let v = self.cmds(dot, &pipe.cmds)?;
        for d in &pipe.decl {
            self.declare(d, v.clone(), pipe.assign);
        }
        Ok(v)
    }

    fn cmds(&mut self, dot: &Value, cmds: &[Cmd]) -> Result<Value, ExecError> {
        let mut last = None;
        for c in cmds {
            last = Some(self.command(dot, c, last)?);
        }
        Ok(last.unwrap_or(Value::Missing))
    }

    fn command(&mut self, dot: &Value, cmd: &Cmd, fin: Option<Value>) -> Result<Value, ExecError> {
        let first = &cmd.args[0];
        let has_args = cmd.args.len() > 1 || fin.is_some();
        match &first.kind {
            ArgKind::Func(name) => self.call(dot, cmd, name, fin),
            ArgKind::Const(Value::Nil) => Err(self.err(first, "nil is not a command")),
            ArgKind::Field(chain) => self.chain(dot.clone(), chain, first, has_args),
            ArgKind::Var(name, chain) if !chain.is_empty() => {
                let base = self.var(first, name)?;
                self.chain(base, chain, first, has_args)
            }
            ArgKind::Chain(inner, chain) => {
                let base = self.arg(dot, inner)?;
                self.chain(base, chain, first, has_args)
            }
            _ if has_args => Err(self.err(
                first,
                format!("can't give argument to non-function {}", first.text),
            )),
            _ => self.arg(dot, first),
        }
    }

    fn var(&self, at: &Arg, name: &str) -> Result<Value, ExecError> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| self.err(at, format!("undefined variable: {name}")))
    }

    /// An operand's value.
    fn arg(&mut self, dot: &Value, a: &Arg) -> Result<Value, ExecError> {
        match &a.kind {
            ArgKind::Dot => Ok(dot.clone()),
            ArgKind::Const(v) => Ok(v.clone()),
            ArgKind::Field(chain) => self.chain(dot.clone(), chain, a, false),
            ArgKind::Var(name, chain) => {
                let base = self.var(a, name)?;
                self.chain(base, chain, a, false)
            }
            ArgKind::Func(name) => {
                let cmd = Cmd {
                    args: vec![a.clone()],
                    text: a.text.clone(),
                };
                self.call(dot, &cmd, name, None)
            }
            ArgKind::Pipe(p) => self.pipe(dot, p),
            ArgKind::Chain(inner, chain) => {
                let base = self.arg(dot, inner)?;
                self.chain(base, chain, a, false)
            }
        }
    }

    /// `.A.B.C` from `base`; only a method could take arguments, and data has none.
    fn chain(
        &self,
        base: Value,
        names: &[String],
        at: &Arg,
        has_args: bool,
    ) -> Result<Value, ExecError> {
        let mut cur = base;
        for (i, name) in names.iter().enumerate() {
            cur = match cur {
                Value::Struct(fields) => match fields.into_iter().find(|(k, _)| k == name) {
                    Some((_, v)) => v,
                    None => {
                        return Err(
                            self.err(at, format!("can't evaluate field {name} in type struct"))
                        )
                    }
                },
                Value::Map(mut m) => m.remove(name).unwrap_or(Value::Missing),
                Value::Missing => Value::Missing,
                Value::Nil => {
                    let path = names[..i].join(".");
                    return Err(self.err(at, format!("nil pointer evaluating .{path}.{name}")));
                }
                other => {
                    return Err(self.err(
                        at,
                        format!("can't evaluate field {name} in type {}", other.type_name()),
                    ))
                }
            };
        }
        if has_args {
            let name = names.last().map(String::as_str).unwrap_or_default();
            return Err(self.err(
                at,
                format!("{name} has arguments but cannot be invoked as function"),
            ));
        }
        Ok(cur)
    }

    /// Calls the function `cmd` names; a failure names the call as Go does (`error calling`).
    fn call(
        &mut self,
        dot: &Value,
        cmd: &Cmd,
        name: &str,
        fin: Option<Value>,
    ) -> Result<Value, ExecError> {
        let at = &cmd.args[0];
        let args = &cmd.args[1..];
        if name == "and" || name == "or" {
            let n = args.len() + usize::from(fin.is_some());
            if n == 0 {
                return Err(self.err(
                    at,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            let mut v = Value::Missing;
            for a in args {
                v = self.arg(dot, a)?;
                if v.truthy() != (name == "and") {
                    return Ok(v);
                }
            }
            return Ok(fin.unwrap_or(v));
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.arg(dot, a)?);
        }
        vals.extend(fin);
        funcs::call(name, &vals, self.header).map_err(|e| {
            if e.starts_with("wrong number of args") {
                self.err(at, e)
            } else {
                ExecError::new(
                    self.t,
                    at.pos,
                    &cmd.text,
                    format!("error calling {name}: {e}"),
                )
            }
        })
    }
}
