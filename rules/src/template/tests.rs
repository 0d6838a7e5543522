//! Template tests. Expected outputs marked "promtool" came from Prometheus 2.42's promtool
//! (Go 1.19), by rendering the template as an alert annotation in `promtool test rules`.

use std::collections::BTreeMap;

use super::*;

/// The series the promtool runs had: `up{instance="localhost:9090",job="prom"} 3.5` and
/// `up{instance="node1.example.com:9100",job="node"} 1`.
struct FakeHost;

impl Host for FakeHost {
    fn query(&self, q: &str) -> Result<Vec<(BTreeMap<String, String>, f64)>, String> {
        let prom = labels(&[("__name__", "up"), ("instance", "localhost:9090"), ("job", "prom")]);
        let node = labels(&[("__name__", "up"), ("instance", "node1.example.com:9100"), ("job", "node")]);
        match q {
            "up" => Ok(vec![(prom, 3.5), (node, 1.0)]),
            "up{job='prom'}" => Ok(vec![(prom, 3.5)]),
            "up{job='none'}" => Ok(vec![]),
            "scalar(up{job='prom'})" => Ok(vec![(BTreeMap::new(), 3.5)]),
            "up{" => Err("1:4: parse error: unexpected end of input inside braces".to_string()),
            _ => Err("rule result is not a vector or scalar".to_string()),
        }
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Expands `text` as an annotation of the alert `Foo` on the `prom` series with value 3.5,
/// returning the text or the error text.
fn render(text: &str) -> String {
    let env = Env { host: Some(&FakeHost), external_url: "http://example.com:9090/prom".to_string(), now_ms: 1_700_000_000_123 };
    let l = labels(&[("__name__", "up"), ("instance", "localhost:9090"), ("job", "prom")]);
    match expand("__alert_Foo", text, &l, &BTreeMap::new(), "", 3.5, &env) {
        Ok(s) => s,
        Err(e) => format!("ERR {e}"),
    }
}

#[track_caller]
fn check(text: &str, expected: &str) {
    assert_eq!(render(text), expected, "template: {text}");
}

#[test]
fn smoke() {
    check("{{ $value }}", "3.5");
    check("{{ humanize 1234567 }}", "1.235M");
    check("{{ printf \"%d\" \"x\" }}", "%!d(string=x)");
    check(
        "{{ humanize \"x\" }}",
        "ERR template: __alert_Foo:1:115: executing \"__alert_Foo\" at <humanize \"x\">: error calling humanize: strconv.ParseFloat: parsing \"x\": invalid syntax",
    );
}
