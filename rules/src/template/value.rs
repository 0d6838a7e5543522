//! Values as the executor sees them: the public [`Value`] plus the few Go types that
//! Prometheus's functions return (`*time.Time`, `*time.Duration`, `*template.sample`, the
//! alert data struct) and enough type information to reproduce Go's type names, zero values
//! and `fmt` printing.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::Value;

/// A Go value during execution. `Nil` is Go's invalid `reflect.Value` (an untyped nil, a
/// missing key of an `interface{}` map); it prints as `<no value>` in an action.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Rc<GoList>),
    Map(Rc<GoMap>),
    Struct(Rc<GoStruct>),
    /// A `*time.Time` in UTC, as nanoseconds since the Unix epoch.
    Time(i64),
    /// A `*time.Duration` in nanoseconds.
    Duration(i64),
}

/// A Go slice: `[]interface {}` or Prometheus's `template.queryResult`.
#[derive(Debug)]
pub(crate) struct GoList {
    pub(crate) query_result: bool,
    pub(crate) items: Vec<Val>,
}

/// A Go map with string keys: `map[string]string` when `string_elems` is set (a missing key
/// reads as `""` under missingkey=zero), else `map[string]interface {}` (a missing key reads
/// as nil).
#[derive(Debug)]
pub(crate) struct GoMap {
    pub(crate) string_elems: bool,
    pub(crate) entries: BTreeMap<String, Val>,
}

/// The two Go structs a Prometheus template meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StructKind {
    /// The alert data that `expand` passes as dot.
    Alert,
    /// A `*template.sample` returned by `query`.
    Sample,
}

/// A Go struct value: its kind and its fields in declaration order.
#[derive(Debug)]
pub(crate) struct GoStruct {
    pub(crate) kind: StructKind,
    pub(crate) fields: Vec<(&'static str, Val)>,
}

impl GoStruct {
    /// Returns the field called `name`.
    pub(crate) fn field(&self, name: &str) -> Option<&Val> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

impl Val {
    /// Builds a `map[string]string`.
    pub(crate) fn string_map(m: &BTreeMap<String, String>) -> Val {
        Val::Map(Rc::new(GoMap {
            string_elems: true,
            entries: m
                .iter()
                .map(|(k, v)| (k.clone(), Val::Str(v.clone())))
                .collect(),
        }))
    }

    /// Builds a `*template.sample`.
    pub(crate) fn sample(labels: &BTreeMap<String, String>, value: f64) -> Val {
        Val::Struct(Rc::new(GoStruct {
            kind: StructKind::Sample,
            fields: vec![
                ("Labels", Val::string_map(labels)),
                ("Value", Val::Float(value)),
            ],
        }))
    }

    /// Returns Go's type name, as `%T` prints it.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Val::Nil => "<nil>",
            Val::Bool(_) => "bool",
            Val::Int(_) => "int",
            Val::Float(_) => "float64",
            Val::Str(_) => "string",
            Val::List(l) if l.query_result => "template.queryResult",
            Val::List(_) => "[]interface {}",
            Val::Map(m) if m.string_elems => "map[string]string",
            Val::Map(_) => "map[string]interface {}",
            Val::Struct(s) => match s.kind {
                StructKind::Alert => {
                    "struct { Labels map[string]string; ExternalLabels map[string]string; \
                     ExternalURL string; Value float64 }"
                }
                StructKind::Sample => "*template.sample",
            },
            Val::Time(_) => "*time.Time",
            Val::Duration(_) => "*time.Duration",
        }
    }

    /// Go's truth of a value in `if`, `with`, `and`, `or` and `not`.
    pub(crate) fn truth(&self) -> bool {
        match self {
            Val::Nil => false,
            Val::Bool(b) => *b,
            Val::Int(i) => *i != 0,
            Val::Float(f) => *f != 0.0,
            Val::Str(s) => !s.is_empty(),
            Val::List(l) => !l.items.is_empty(),
            Val::Map(m) => !m.entries.is_empty(),
            Val::Struct(_) | Val::Time(_) | Val::Duration(_) => true,
        }
    }
}

impl From<&Value> for Val {
    fn from(v: &Value) -> Val {
        match v {
            Value::Nil => Val::Nil,
            Value::Bool(b) => Val::Bool(*b),
            Value::Int(i) => Val::Int(*i),
            Value::Float(f) => Val::Float(*f),
            Value::Str(s) => Val::Str(s.clone()),
            Value::List(items) => Val::List(Rc::new(GoList {
                query_result: false,
                items: items.iter().map(Val::from).collect(),
            })),
            Value::Map(m) => Val::Map(Rc::new(GoMap {
                string_elems: m.values().all(|v| matches!(v, Value::Str(_))),
                entries: m.iter().map(|(k, v)| (k.clone(), Val::from(v))).collect(),
            })),
        }
    }
}
