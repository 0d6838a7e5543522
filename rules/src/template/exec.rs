//! Execution of parsed templates, after Go's `text/template/exec.go`: walks the tree with a
//! dot and a variable stack, evaluates pipelines, fields, variables and function calls,
//! and reports errors with Go's location and context (`NAME:LINE:COL: executing "T" at
//! <node>: msg`). Map lookups use Prometheus's missingkey=zero semantics.

use super::funcs::{self, Call, Ty};
use super::parser::{Arg, Branch, Command, Node, Number, Pipe, Trees};
use super::printf::print_action_value;
use super::value::Val;
use super::{gotime, Env, TemplateError};

/// Maximum nesting of `{{template}}` calls (Go allows 100000; our stack is smaller).
const MAX_DEPTH: usize = 256;

/// Why a walk stopped early: `{{break}}`, `{{continue}}` or an error.
#[derive(Debug)]
pub(crate) enum Stop {
    Break,
    Continue,
    Err(Box<TemplateError>),
}

type R<T> = Result<T, Stop>;

/// The node an error is reported at.
#[derive(Debug, Clone, Copy)]
enum At<'t> {
    None,
    Arg(&'t Arg),
    Cmd(&'t Command),
    Template(usize, &'t str, Option<&'t Pipe>),
}

/// The state of one execution.
pub(crate) struct State<'t, 'e> {
    trees: &'t Trees,
    text: &'t str,
    parse_name: &'t str,
    tmpl_name: &'t str,
    env: &'e Env<'e>,
    pub(crate) out: String,
    vars: Vec<(&'t str, Val)>,
    depth: usize,
    at: At<'t>,
}

impl std::fmt::Debug for State<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("tmpl_name", &self.tmpl_name)
            .finish_non_exhaustive()
    }
}

/// Executes the tree `name` with `dot`.
pub(crate) fn execute(
    trees: &Trees,
    text: &str,
    name: &str,
    dot: Val,
    env: &Env<'_>,
) -> Result<String, TemplateError> {
    let mut s = State {
        trees,
        text,
        parse_name: name,
        tmpl_name: name,
        env,
        out: String::new(),
        vars: vec![("$", dot.clone())],
        depth: 0,
        at: At::None,
    };
    let Some(root) = trees.get(name) else {
        return Err(TemplateError::Exec {
            location: name.to_string(),
            template: name.to_string(),
            context: None,
            msg: format!(
                "{} is an incomplete or empty template",
                super::printf::quote(name)
            ),
        });
    };
    match s.walk(&dot, root) {
        Ok(()) => Ok(s.out),
        Err(Stop::Err(e)) => Err(*e),
        Err(Stop::Break | Stop::Continue) => Ok(s.out),
    }
}

impl<'t> State<'t, '_> {
    fn error(&self, msg: String) -> Stop {
        let (pos, context) = match self.at {
            At::None => {
                return Stop::Err(Box::new(TemplateError::Exec {
                    location: self.tmpl_name.to_string(),
                    template: self.tmpl_name.to_string(),
                    context: None,
                    msg,
                }));
            }
            At::Arg(a) => (a.pos(), a.to_string()),
            At::Cmd(c) => (c.pos, c.to_string()),
            At::Template(pos, name, pipe) => {
                let q = super::printf::quote(name);
                (
                    pos,
                    match pipe {
                        Some(p) => format!("{{{{template {q} {p}}}}}"),
                        None => format!("{{{{template {q}}}}}"),
                    },
                )
            }
        };
        let before = &self.text[..pos.min(self.text.len())];
        let line = 1 + before.matches('\n').count();
        let col = match before.rfind('\n') {
            Some(i) => pos - i - 1,
            None => pos,
        };
        Stop::Err(Box::new(TemplateError::Exec {
            location: format!("{}:{line}:{col}", self.parse_name),
            template: self.tmpl_name.to_string(),
            context: Some(context),
            msg,
        }))
    }

    fn walk(&mut self, dot: &Val, list: &'t [Node]) -> R<()> {
        for node in list {
            match node {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(pipe) => {
                    let v = self.eval_pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        self.out.push_str(&print_action_value(&v));
                    }
                }
                Node::If(b) => self.walk_if_or_with(dot, b, false)?,
                Node::With(b) => self.walk_if_or_with(dot, b, true)?,
                Node::Range(b) => self.walk_range(dot, b)?,
                Node::Template { pos, name, pipe } => {
                    self.walk_template(dot, *pos, name, pipe.as_ref())?
                }
                Node::Break => return Err(Stop::Break),
                Node::Continue => return Err(Stop::Continue),
            }
        }
        Ok(())
    }

    fn walk_if_or_with(&mut self, dot: &Val, b: &'t Branch, with: bool) -> R<()> {
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let result = if val.truth() {
            if with {
                self.walk(&val, &b.list)
            } else {
                self.walk(dot, &b.list)
            }
        } else if let Some(e) = &b.else_list {
            self.walk(dot, e)
        } else {
            Ok(())
        };
        self.vars.truncate(mark);
        result
    }

    fn walk_range(&mut self, dot: &Val, b: &'t Branch) -> R<()> {
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let inner = self.vars.len();
        let pairs: Vec<(Val, Val)> = match &val {
            Val::List(l) => l
                .items
                .iter()
                .enumerate()
                .map(|(i, v)| (Val::Int(i as i64), v.clone()))
                .collect(),
            Val::Map(m) => m
                .entries
                .iter()
                .map(|(k, v)| (Val::Str(k.clone()), v.clone()))
                .collect(),
            Val::Nil => Vec::new(),
            v => {
                let shown = super::printf::sprint(std::slice::from_ref(v));
                return Err(self.error(format!("range can't iterate over {shown}")));
            }
        };
        let is_empty = pairs.is_empty();
        for (index, elem) in pairs {
            let decl = &b.pipe.decl;
            if b.pipe.is_assign {
                if decl.len() > 1 {
                    self.set_var(&decl[0], index.clone())?;
                    self.set_var(&decl[1], elem.clone())?;
                } else if let Some(d) = decl.first() {
                    self.set_var(d, elem.clone())?;
                }
            } else {
                if !decl.is_empty() {
                    self.vars[inner - 1].1 = elem.clone();
                }
                if decl.len() > 1 {
                    self.vars[inner - 2].1 = index;
                }
            }
            let r = self.walk(&elem, &b.list);
            self.vars.truncate(inner);
            match r {
                Ok(()) | Err(Stop::Continue) => {}
                Err(Stop::Break) => break,
                Err(e) => return Err(e),
            }
        }
        let r = match (&b.else_list, is_empty) {
            (Some(e), true) => self.walk(dot, e),
            _ => Ok(()),
        };
        self.vars.truncate(mark);
        r
    }

    fn walk_template(
        &mut self,
        dot: &Val,
        pos: usize,
        name: &'t str,
        pipe: Option<&'t Pipe>,
    ) -> R<()> {
        self.at = At::Template(pos, name, pipe);
        let Some(tree) = self.trees.get(name) else {
            return Err(self.error(format!(
                "template {} not defined",
                super::printf::quote(name)
            )));
        };
        if self.depth >= MAX_DEPTH {
            return Err(self.error(format!("exceeded maximum template depth ({MAX_DEPTH})")));
        }
        let new_dot = match pipe {
            Some(p) => self.eval_pipeline(dot, p)?,
            None => Val::Nil,
        };
        let saved_vars = std::mem::replace(&mut self.vars, vec![("$", new_dot.clone())]);
        let saved_name = std::mem::replace(&mut self.tmpl_name, name);
        self.depth += 1;
        let r = self.walk(&new_dot, tree);
        self.depth -= 1;
        self.tmpl_name = saved_name;
        self.vars = saved_vars;
        r
    }

    fn set_var(&mut self, name: &str, v: Val) -> R<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| *n == name) {
            Some(slot) => {
                slot.1 = v;
                Ok(())
            }
            None => Err(self.error(format!("undefined variable: {name}"))),
        }
    }

    fn var_value(&self, name: &str) -> R<Val> {
        match self.vars.iter().rev().find(|(n, _)| *n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => Err(self.error(format!("undefined variable: {name}"))),
        }
    }

    fn eval_pipeline(&mut self, dot: &Val, pipe: &'t Pipe) -> R<Val> {
        let mut value: Option<Val> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or(Val::Nil);
        for d in &pipe.decl {
            if pipe.is_assign {
                self.set_var(d, value.clone())?;
            } else {
                self.vars.push((d.as_str(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, args: &[Arg], fin: &Option<Val>) -> R<()> {
        if args.len() > 1 || fin.is_some() {
            return Err(self.error(format!("can't give argument to non-function {}", args[0])));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Val, cmd: &'t Command, fin: Option<Val>) -> R<Val> {
        let first = &cmd.args[0];
        match first {
            Arg::Field { idents, .. } => {
                self.at = At::Arg(first);
                self.eval_field_chain(dot, dot.clone(), idents, &cmd.args, fin)
            }
            Arg::Chain { node, fields, .. } => {
                self.eval_chain(dot, first, node, fields, &cmd.args, fin)
            }
            Arg::Identifier { name, .. } => {
                self.eval_function(dot, first, name, At::Cmd(cmd), &cmd.args, fin)
            }
            Arg::Pipe(p) => {
                self.not_a_function(&cmd.args, &fin)?;
                self.eval_pipeline(dot, p)
            }
            Arg::Variable { idents, .. } => self.eval_variable(dot, first, idents, &cmd.args, fin),
            Arg::Bool { val, .. } => {
                self.at = At::Arg(first);
                self.not_a_function(&cmd.args, &fin)?;
                Ok(Val::Bool(*val))
            }
            Arg::Dot { .. } => {
                self.at = At::Arg(first);
                self.not_a_function(&cmd.args, &fin)?;
                Ok(dot.clone())
            }
            Arg::Nil { .. } => {
                self.at = At::Arg(first);
                Err(self.error("nil is not a command".to_string()))
            }
            Arg::Number { num, .. } => {
                self.at = At::Arg(first);
                self.not_a_function(&cmd.args, &fin)?;
                self.ideal_constant(num)
            }
            Arg::Str { text, .. } => {
                self.at = At::Arg(first);
                self.not_a_function(&cmd.args, &fin)?;
                Ok(Val::Str(text.clone()))
            }
        }
    }

    fn ideal_constant(&self, num: &Number) -> R<Val> {
        if num.is_char {
            return Ok(Val::Int(num.int.unwrap_or(0)));
        }
        let lower = num.text.to_ascii_lowercase();
        let hex = lower.trim_start_matches(['+', '-']).starts_with("0x");
        if let Some(f) = num.float {
            if !hex && num.text.contains(['.', 'e', 'E', 'p', 'P']) {
                return Ok(Val::Float(f));
            }
        }
        match (num.int, num.float) {
            (Some(i), _) => Ok(Val::Int(i)),
            (None, Some(f)) => Ok(Val::Float(f)),
            (None, None) => Err(self.error(format!("{} overflows int", num.text))),
        }
    }

    fn eval_variable(
        &mut self,
        dot: &Val,
        node: &'t Arg,
        idents: &'t [String],
        args: &'t [Arg],
        fin: Option<Val>,
    ) -> R<Val> {
        self.at = At::Arg(node);
        let value = self.var_value(&idents[0])?;
        if idents.len() == 1 {
            self.not_a_function(args, &fin)?;
            return Ok(value);
        }
        self.eval_field_chain(dot, value, &idents[1..], args, fin)
    }

    fn eval_chain(
        &mut self,
        dot: &Val,
        chain: &'t Arg,
        node: &'t Arg,
        fields: &'t [String],
        args: &'t [Arg],
        fin: Option<Val>,
    ) -> R<Val> {
        if let Arg::Nil { .. } = node {
            self.at = At::Arg(chain);
            return Err(self.error(format!("indirection through explicit nil in {chain}")));
        }
        let receiver = self.eval_arg(dot, Ty::Any, node)?;
        self.eval_field_chain(dot, receiver, fields, args, fin)
    }

    fn eval_field_chain(
        &mut self,
        dot: &Val,
        mut receiver: Val,
        idents: &'t [String],
        args: &'t [Arg],
        fin: Option<Val>,
    ) -> R<Val> {
        let n = idents.len();
        for ident in &idents[..n - 1] {
            receiver = self.eval_field(dot, ident, &[], None, receiver)?;
        }
        self.eval_field(dot, &idents[n - 1], args, fin, receiver)
    }

    fn eval_field(
        &mut self,
        dot: &Val,
        name: &str,
        args: &'t [Arg],
        fin: Option<Val>,
        receiver: Val,
    ) -> R<Val> {
        let has_args = args.len() > 1 || fin.is_some();
        match &receiver {
            Val::Nil => Ok(Val::Nil),
            Val::Time(_) | Val::Duration(_) => self.eval_method(dot, name, args, fin, &receiver),
            Val::Map(m) => {
                if has_args {
                    return Err(self.error(format!("{name} is not a method but has arguments")));
                }
                Ok(match m.entries.get(name) {
                    Some(v) => v.clone(),
                    None if m.string_elems => Val::Str(String::new()),
                    None => Val::Nil,
                })
            }
            Val::Struct(st) => match st.field(name) {
                Some(v) => {
                    if has_args {
                        return Err(self.error(format!(
                            "{name} has arguments but cannot be invoked as function"
                        )));
                    }
                    Ok(v.clone())
                }
                None => Err(self.error(format!(
                    "can't evaluate field {name} in type {}",
                    receiver.type_name()
                ))),
            },
            _ => Err(self.error(format!(
                "can't evaluate field {name} in type {}",
                receiver.type_name()
            ))),
        }
    }

    /// A few methods of `*time.Time` and `*time.Duration`.
    fn eval_method(
        &mut self,
        dot: &Val,
        name: &str,
        args: &'t [Arg],
        fin: Option<Val>,
        receiver: &Val,
    ) -> R<Val> {
        let mut argv = Vec::new();
        for a in args.iter().skip(1) {
            argv.push(self.eval_arg(dot, Ty::Any, a)?);
        }
        argv.extend(fin);
        let want = usize::from(name == "Format");
        let result = match (receiver, name) {
            (Val::Time(ns), "Unix") => Some(Val::Int(ns.div_euclid(1_000_000_000))),
            (Val::Time(ns), "UnixMilli") => Some(Val::Int(ns.div_euclid(1_000_000))),
            (Val::Time(ns), "UnixNano") => Some(Val::Int(*ns)),
            (Val::Time(ns), "String") => Some(Val::Str(gotime::time_string(*ns))),
            (Val::Time(ns), "UTC") => Some(Val::Time(*ns)),
            (Val::Time(ns), "Format") => match argv.first() {
                Some(Val::Str(layout)) => Some(Val::Str(gotime::format(*ns, layout))),
                Some(v) => {
                    return Err(self.error(format!(
                        "wrong type for value; expected string; got {}",
                        v.type_name()
                    )));
                }
                None => None,
            },
            (Val::Duration(ns), "Seconds") => Some(Val::Float(*ns as f64 / 1e9)),
            (Val::Duration(ns), "Minutes") => Some(Val::Float(*ns as f64 / 6e10)),
            (Val::Duration(ns), "Hours") => Some(Val::Float(*ns as f64 / 3.6e12)),
            (Val::Duration(ns), "Milliseconds") => Some(Val::Int(ns / 1_000_000)),
            (Val::Duration(ns), "String") => Some(Val::Str(gotime::duration_string(*ns))),
            _ => {
                return Err(self.error(format!(
                    "can't evaluate field {name} in type {}",
                    receiver.type_name()
                )));
            }
        };
        if argv.len() != want {
            return Err(self.error(format!(
                "wrong number of args for {name}: want {want} got {}",
                argv.len()
            )));
        }
        Ok(result.unwrap_or(Val::Nil))
    }

    fn eval_function(
        &mut self,
        dot: &Val,
        ident: &'t Arg,
        name: &str,
        cmd: At<'t>,
        args: &'t [Arg],
        fin: Option<Val>,
    ) -> R<Val> {
        self.at = At::Arg(ident);
        let Some(func) = funcs::lookup(name) else {
            return Err(self.error(format!(
                "{} is not a defined function",
                super::printf::quote(name)
            )));
        };
        let args = &args[1..];
        let num_in = args.len() + usize::from(fin.is_some());
        let num_fixed = func.params.len();
        if func.variadic.is_some() {
            if num_in < num_fixed {
                return Err(self.error(format!(
                    "wrong number of args for {name}: want at least {num_fixed} got {}",
                    args.len()
                )));
            }
        } else if num_in != num_fixed {
            return Err(self.error(format!(
                "wrong number of args for {name}: want {num_fixed} got {num_in}"
            )));
        }
        if let Call::And | Call::Or = func.call {
            let is_or = matches!(func.call, Call::Or);
            let mut v = Val::Nil;
            for a in args {
                v = self.eval_arg(dot, Ty::Any, a)?;
                if v.truth() == is_or {
                    return Ok(v);
                }
            }
            if let Some(f) = fin {
                v = f;
            }
            return Ok(v);
        }
        let mut argv = Vec::with_capacity(num_in);
        for (i, a) in args.iter().enumerate() {
            let ty = if i < num_fixed {
                func.params[i]
            } else {
                func.variadic.unwrap_or(Ty::Any)
            };
            argv.push(self.eval_arg(dot, ty, a)?);
        }
        if let Some(f) = fin {
            let ty = if num_in - 1 < num_fixed {
                func.params[num_in - 1]
            } else {
                func.variadic.unwrap_or(Ty::Any)
            };
            argv.push(self.validate_type(f, ty)?);
        }
        let Call::Func(imp) = func.call else {
            unreachable!("and/or handled above")
        };
        match imp(self.env, argv) {
            Ok(v) => Ok(v),
            Err(e) => {
                self.at = cmd;
                Err(self.error(format!("error calling {name}: {e}")))
            }
        }
    }

    fn eval_arg(&mut self, dot: &Val, ty: Ty, arg: &'t Arg) -> R<Val> {
        self.at = At::Arg(arg);
        match arg {
            Arg::Dot { .. } => return self.validate_type(dot.clone(), ty),
            Arg::Nil { .. } => {
                if ty.can_be_nil() {
                    return Ok(Val::Nil);
                }
                return Err(self.error(format!("cannot assign nil to {}", ty.name())));
            }
            Arg::Field { idents, .. } => {
                let v = self.eval_field_chain(dot, dot.clone(), idents, &[], None)?;
                return self.validate_type(v, ty);
            }
            Arg::Variable { idents, .. } => {
                let v = self.eval_variable(dot, arg, idents, &[], None)?;
                return self.validate_type(v, ty);
            }
            Arg::Pipe(p) => {
                let v = self.eval_pipeline(dot, p)?;
                return self.validate_type(v, ty);
            }
            Arg::Identifier { name, .. } => {
                let v = self.eval_function(
                    dot,
                    arg,
                    name,
                    At::Arg(arg),
                    std::slice::from_ref(arg),
                    None,
                )?;
                return self.validate_type(v, ty);
            }
            Arg::Chain { node, fields, .. } => {
                let v = self.eval_chain(dot, arg, node, fields, &[], None)?;
                return self.validate_type(v, ty);
            }
            Arg::Bool { .. } | Arg::Number { .. } | Arg::Str { .. } => {}
        }
        match (ty, arg) {
            (Ty::Any, Arg::Bool { val, .. }) => Ok(Val::Bool(*val)),
            (Ty::Any, Arg::Number { num, .. }) => self.ideal_constant(num),
            (Ty::Any, Arg::Str { text, .. }) | (Ty::Str, Arg::Str { text, .. }) => {
                Ok(Val::Str(text.clone()))
            }
            (Ty::Str, _) => Err(self.error(format!("expected string; found {arg}"))),
            _ => Err(self.error(format!("can't handle {arg} for arg of type {}", ty.name()))),
        }
    }

    fn validate_type(&self, v: Val, ty: Ty) -> R<Val> {
        let ok = match (&v, ty) {
            (Val::Nil, ty) if ty.can_be_nil() => true,
            (Val::Nil, ty) => {
                return Err(self.error(format!("invalid value; expected {}", ty.name())))
            }
            (_, Ty::Any) => true,
            (Val::Str(_), Ty::Str) => true,
            (Val::List(_), Ty::QueryResult) => true,
            (Val::Struct(s), Ty::Sample) => s.kind == super::value::StructKind::Sample,
            (Val::Map(_), Ty::Sample) => true,
            _ => false,
        };
        if !ok {
            return Err(self.error(format!(
                "wrong type for value; expected {}; got {}",
                ty.name(),
                v.type_name()
            )));
        }
        Ok(v)
    }
}
