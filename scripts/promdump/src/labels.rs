//! Stand-in for `augur_storage::Labels` with what the Generator uses: pairs sorted by name.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels(Vec<(String, String)>);

#[derive(Debug)]
pub struct LabelError(#[allow(dead_code)] String);

impl Labels {
    pub fn new<N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> Result<Labels, LabelError>
    where
        N: AsRef<str>,
        V: AsRef<str>,
    {
        let mut v: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(n, v)| (n.as_ref().to_owned(), v.as_ref().to_owned()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        if v.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(LabelError(format!("duplicate label name in {v:?}")));
        }
        if v.iter().any(|(n, val)| n.is_empty() || val.is_empty()) {
            return Err(LabelError(format!("empty label name or value in {v:?}")));
        }
        Ok(Labels(v))
    }

    pub fn metric_name(&self) -> Option<&str> {
        self.get("__name__")
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{{", self.metric_name().unwrap_or(""))?;
        let mut first = true;
        for (n, v) in self.iter().filter(|(n, _)| *n != "__name__") {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{n}=\"")?;
            for c in v.chars() {
                match c {
                    '\\' => f.write_str("\\\\")?,
                    '"' => f.write_str("\\\"")?,
                    '\n' => f.write_str("\\n")?,
                    c => write!(f, "{c}")?,
                }
            }
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}
