//! Template tests. Expected outputs marked "promtool" came from Prometheus 2.42's promtool
//! (Go 1.19), by rendering the template as an alert annotation in `promtool test rules`.

use std::collections::BTreeMap;

use super::*;

/// The series the promtool runs had: `up{instance="localhost:9090",job="prom"} 3.5` and
/// `up{instance="node1.example.com:9100",job="node"} 1`.
struct FakeHost;

impl Host for FakeHost {
    fn query(&self, q: &str) -> Result<Vec<(BTreeMap<String, String>, f64)>, String> {
        let prom = labels(&[
            ("__name__", "up"),
            ("instance", "localhost:9090"),
            ("job", "prom"),
        ]);
        let node = labels(&[
            ("__name__", "up"),
            ("instance", "node1.example.com:9100"),
            ("job", "node"),
        ]);
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
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Expands `text` as an annotation of the alert `Foo` on the `prom` series with value 3.5,
/// returning the text or the error text.
fn render(text: &str) -> String {
    let env = Env {
        host: Some(&FakeHost),
        external_url: "http://example.com:9090/prom".to_string(),
        now_ms: 1_700_000_000_123,
    };
    let l = labels(&[
        ("__name__", "up"),
        ("instance", "localhost:9090"),
        ("job", "prom"),
    ]);
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
fn augur_extensions() {
    // The seed rule's hour label: `now` is 2023-11-14 22:13:20.123 UTC.
    check(r#"{{ printf "%02d" (now | date "15") }}"#, "22");
    // Float seconds lose the exact millisecond, in Go as here.
    check(
        r#"{{ now }}|{{ now | humanizeTimestamp }}"#,
        "1.700000000123e+09|2023-11-14 22:13:20.122999808 +0000 UTC",
    );
    check(
        r#"{{ date "2006-01-02 Mon Jan 3PM .000 MST -0700" now }}"#,
        "2023-11-14 Tue Nov 10PM .122 UTC +0000",
    );
    check(
        r#"{{ toTime 3600 | date "15:04" }}|{{ date "15" "7200" }}|{{ printf "%02d" "9" }}|{{ printf "%d" "x9" }}"#,
        "01:00|02|09|%!d(string=x9)",
    );
    check(
        r#"{{ toDuration 90 }}|{{ toDuration 0.0015 }}|{{ (toDuration 90).Seconds }}|{{ humanizeDuration (toDuration 90) }}"#,
        "1m30s|1.5ms|90|1m 30s",
    );
    check(
        r#"{{ externalURL }}|{{ pathPrefix }}|{{ urlQueryEscape "a b&c" }}"#,
        "http://example.com:9090/prom|/prom|a+b%26c",
    );
    check(
        r#"{{ (toTime 100).Format "2006" }}|{{ (toTime 1.5).UnixMilli }}"#,
        "1970|1500",
    );
}

#[test]
fn more_language() {
    // Expected outputs from promtool 2.42, except the "else with" case (a Go 1.23 feature).
    check(
        r#"{{ printf "%x %x %.2x %x" 0.1 1e-310 1.0 -2.0 }}"#,
        "0x1.999999999999ap-04 0x1.2688b70e62bp-1030 0x1.00p+00 -0x1p+01",
    );
    check(
        r#"{{ title "élan vital" }}|{{ js "é\u2028" }}|{{ printf "%q" "\u00ad\u2028é" }}"#,
        r#"Élan Vital|é\u2028|"\u00ad\u2028é""#,
    );
    // As in Go 1.23, "else with" continues only a with, "else if" only an if.
    check(
        "{{ if false }}a{{ else with $labels.job }}{{ . }}{{ end }}",
        "ERR template: __alert_Foo:1: unexpected <with> in else",
    );
    check(
        "{{ with $labels.nosuch }}a{{ else with $labels.job }}{{ . }}{{ end }}",
        "prom",
    );
    check("{{ range $i, $v := args 5 6 7 }}{{ if eq $i \"arg1\" }}{{ continue }}{{ end }}{{ $v }}{{ end }}", "57");
    check("{{ range (query \"up\") }}{{ break }}{{ end }}x", "x");
    check("{{ define \"r\" }}{{ if gt . 0 }}{{ . }}{{ template \"r\" (humanize1024 0 | len | slice (args 1 2 3 4 5 6 7 8 9).arg0 | len) }}{{ end }}{{ end }}", "");
    check("{{ block \"b\" 3 }}[{{ . }}]{{ end }}", "[3]");
    check(
        "{{ $x := 1 }}{{ range $labels }}{{ $x = 2 }}{{ end }}{{ $x }}",
        "2",
    );
    check("{{ \"a\" }} {{- \"b\" -}} {{ \"c\" }}", "abc");
    check("{{ (index (query \"up\") 0).Labels.job }}|{{ range sortByLabel \"job\" (query \"up\") }}{{ label \"job\" . }}{{ end }}", "prom|nodeprom");
    check(
        "{{ len (slice (query \"up\") 1) }}|{{ slice \"héllo\" 1 3 }}",
        "1|é",
    );
    check(
        "{{ printf \"%[2]d %[1]s\" \"a\" 1 }}|{{ printf \"%[3]d\" 1 }}",
        "1 a|%!d(BADINDEX)",
    );
    check(
        "{{ printf \"%x|%X|%#X|%08.3e|%-8.2f|%+.1e|% .2f\" -1 3.5 255 1234.5 1.5 0.0 2.0 }}",
        "-1|0X1.CP+01|0XFF|1.234e+03|1.50    |+0.0e+00| 2.00",
    );
    check(
        "{{ printf \"%6.2v|%.3v|%10.4g|%-10s|\" 3.14159 \"abcdef\" 123456.0 \"ab\" }}",
        "   3.1|abc| 1.235e+05|ab        |",
    );
    check(
        "{{ printf \"%v %v %v %v\" 1e100 -0.0 1e-5 123456.0 }}",
        "1e+100 -0 1e-05 123456",
    );
}

#[test]
fn execute_and_errors() {
    let env = Env {
        host: None,
        external_url: String::new(),
        now_ms: 0,
    };
    let dot = Value::Map(BTreeMap::from([
        (
            "a".to_string(),
            Value::List(vec![
                Value::Int(1),
                Value::Float(2.5),
                Value::Str("x".to_string()),
            ]),
        ),
        (
            "m".to_string(),
            Value::Map(BTreeMap::from([(
                "k".to_string(),
                Value::Str("v".to_string()),
            )])),
        ),
        ("n".to_string(), Value::Nil),
    ]));
    let run = |text: &str| match Template::parse("t", text).and_then(|t| t.execute(&dot, &env)) {
        Ok(s) => s,
        Err(e) => format!("ERR {e}"),
    };
    assert_eq!(
        run("{{ .a }}|{{ .m.k }}|{{ .m.nosuch }}|{{ .nosuch }}|{{ .n }}|{{ len .a }}"),
        "[1 2.5 x]|v||<no value>|<no value>|3"
    );
    assert_eq!(run("{{ range .a }}{{ . }};{{ end }}"), "1;2.5;x;");
    assert_eq!(run("{{ query \"up\" }}"), "ERR template: t:1:3: executing \"t\" at <query \"up\">: error calling query: query is not available in this context");
    assert_eq!(run("line1\n{{ define \"d\" }}\n{{ humanize }}{{ end }}{{ template \"d\" }}"), "ERR template: t:3:3: executing \"d\" at <humanize>: wrong number of args for humanize: want 1 got 0");
    assert_eq!(run("{{ define \"r\" }}{{ template \"r\" }}{{ end }}{{ template \"r\" }}"), "ERR template: t:1:28: executing \"r\" at <{{template \"r\"}}>: exceeded maximum template depth (256)");
    assert_eq!(
        run("{{ template \"x\" }}{{ define \"x\" }}{{ .m.k }}{{ end }}"),
        "<no value>"
    );
    assert_eq!(
        super::check("__alert_X", "{{ $labels.job }} {{ $value | humanize }}"),
        Ok(())
    );
    assert_eq!(
        super::check("__alert_X", "{{ nosuch }}").map_err(|e| e.to_string()),
        Err("template: __alert_X:1: function \"nosuch\" not defined".to_string())
    );
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

#[test]
fn prometheus_functions_and_printf() {
    // Expected outputs from promtool 2.42.
    check(
        r##"{{ 1000000.0 }}|{{ 100000.0 }}|{{ 0.1 }}|{{ 0.000015 }}|{{ 123456789.0 }}|{{ 1e21 }}|{{ 1e20 }}|{{ 1.0 }}|{{ 1e3 }}|{{ 0x10 }}|{{ 'a' }}"##,
        r##"1e+06|100000|0.1|1.5e-05|1.23456789e+08|1e+21|1e+20|1|1000|16|97"##,
    );
    check(
        r##"{{ $labels }}|{{ . }}"##,
        r##"map[__name__:up instance:localhost:9090 job:prom]|{map[__name__:up instance:localhost:9090 job:prom] map[]  3.5}"##,
    );
    check(
        r##"{{ .Labels.nosuch }}|{{ $labels.nosuch }}|{{ .ExternalURL }}|{{ $externalURL }}"##,
        r##"|||"##,
    );
    check(
        r##"{{ .Foo }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <.Foo>: can't evaluate field Foo in type struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value float64 }"##,
    );
    check(
        r##"{{ .Labels.job.bar }}"##,
        r##"ERR template: __alert_Foo:1:122: executing "__alert_Foo" at <.Labels.job.bar>: can't evaluate field bar in type string"##,
    );
    check(
        r##"{{ gt $value 1 }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <gt $value 1>: error calling gt: incompatible types for comparison"##,
    );
    check(
        r##"{{ gt $value 1.0 }}|{{ eq 1 1 2 }}|{{ eq "a" "b" "a" }}|{{ lt 1 2 }}|{{ le 2 2 }}"##,
        r##"true|true|true|true|true"##,
    );
    check(
        r##"{{ eq 1 1.0 }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <eq 1 1.0>: error calling eq: incompatible types for comparison"##,
    );
    check(
        r##"{{ eq $value 1 }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <eq $value 1>: error calling eq: incompatible types for comparison"##,
    );
    check(
        r##"{{ lt true false }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <lt true false>: error calling lt: invalid type for comparison"##,
    );
    check(
        r##"{{ printf "%5.2f|%-8s|%08.3f|%+d|% d|%x|%X|%o|%b|%c|%q|%v|%t|%%|%e|%E|%g|%G" 3.14159 "ab" -3.14159 5 5 255 255 8 5 65 "hi" 1.5 true 123456.789 0.000123 1e-7 1e21 }}"##,
        r##" 3.14|ab      |-003.142|+5| 5|ff|FF|10|101|A|"hi"|1.5|true|%|1.234568e+05|1.230000E-04|1e-07|1E+21"##,
    );
    check(
        r##"{{ printf "%d" }}|{{ printf "%d %d" 1 }}|{{ printf "%d" 1 2 "x" }}|{{ printf "%s" 3 }}|{{ printf "%d" 1.5 }}|{{ printf "%z" 1 }}|{{ printf "%" }}|{{ printf "%!" 1 }}"##,
        r##"%!d(MISSING)|1 %!d(MISSING)|1%!(EXTRA int=2, string=x)|%!s(int=3)|%!d(float64=1.5)|%!z(int=1)|%!(NOVERB)|%!!(int=1)"##,
    );
    check(
        r##"{{ printf "%*d|%-*d|%.*f" 5 42 5 42 2 3.14159 }}|{{ printf "%*d" "x" 4 }}|{{ printf "%.3s" "abcdef" }}|{{ printf "%5.1s|" "xyz" }}|{{ printf "%05s" "ab" }}"##,
        r##"   42|42   |3.14|%!(BADWIDTH)4|abc|    x||000ab"##,
    );
    check(
        r##"{{ printf "%#x|%#o|%#b|%x|% x|%#v|%#v|%v" 255 8 5 "hi" "hi" "s" 3 nil }}"##,
        r##"0xff|010|0b101|6869|68 69|"s"|3|<nil>"##,
    );
    check(
        r##"{{ printf "%v %v" $labels (args 1 "a") }}|{{ args 1 2 }}|{{ (args 1).arg3 }}|{{ printf "%d" $labels }}"##,
        r##"map[__name__:up instance:localhost:9090 job:prom] map[arg0:1 arg1:a]|map[arg0:1 arg1:2]|<no value>|map[%!d(string=__name__):%!d(string=up) %!d(string=instance):%!d(string=localhost:9090) %!d(string=job):%!d(string=prom)]"##,
    );
    check(
        r##"{{ $value | printf "%.2f" }}|{{ printf "%.0f|%.1f|%.2f" 2.5 0.25 1.005 }}|{{ printf "%.3g|%.10g|%g" 1234567.0 1.0 100000000.0 }}"##,
        r##"3.50|2|0.2|1.00|1.23e+06|1|1e+08"##,
    );
    check(
        r##"{{ printf "%6.2f|%-6.1f|%06d|%-06d|%+.2e|%x" 1.0 2.0 -42 42 12345.678 -255 }}"##,
        r##"  1.00|2.0   |-00042|42    |+1.23e+04|-ff"##,
    );
    check(
        r##"{{ printf "%v|%f|%e|%g|%5.1f|%+v|% v|%08.2f" (humanize "x" | len) 1.0 1.0 1.0 1.0 1.0 1.0 -1.5 }}"##,
        r##"ERR template: __alert_Foo:1:158: executing "__alert_Foo" at <humanize "x">: error calling humanize: strconv.ParseFloat: parsing "x": invalid syntax"##,
    );
    check(
        r##"{{ printf "%f|%v|%v|%+v|%08v|%5v|" $value 1e-300 (index (args 1.0) "arg0") 2.0 3.5 "ab" }}"##,
        r##"3.500000|1e-300|1|2|000003.5|   ab|"##,
    );
    check(
        r##"{{ printf "%d|%s|%v" 1 }}"##,
        r##"1|%!s(MISSING)|%!v(MISSING)"##,
    );
    check(
        r##"{{ printf "%t|%t" 1 true }}|{{ printf "%c|%q|%U" 0x1F600 'x' 65 }}|{{ printf "%q" "a\nb\"c\u00e9\x01" }}"##,
        r##"%!t(int=1)|true|😀|'x'|U+0041|"a\nb\"cé\x01""##,
    );
    check(
        r##"{{ humanize 0 }}|{{ humanize 1 }}|{{ humanize 999 }}|{{ humanize 1000 }}|{{ humanize 1234.5 }}|{{ humanize 0.001 }}|{{ humanize 0.0000012 }}|{{ humanize -1500 }}|{{ humanize 1e30 }}|{{ humanize "1e3" }}|{{ humanize 12345678901234567890.0 }}|{{ humanize 1e-30 }}"##,
        r##"0|1|999|1k|1.234k|1m|1.2u|-1.5k|1e+06Y|1k|12.35E|1e-06y"##,
    );
    check(
        r##"{{ humanize1024 0 }}|{{ humanize1024 1 }}|{{ humanize1024 1024 }}|{{ humanize1024 1536 }}|{{ humanize1024 -2048 }}|{{ humanize1024 1e30 }}|{{ humanize1024 0.5 }}|{{ humanize1024 1025.0 }}"##,
        r##"0|1|1ki|1.5ki|-2ki|8.272e+05Yi|0.5|1.001ki"##,
    );
    check(
        r##"{{ humanizeDuration 0 }}|{{ humanizeDuration 1 }}|{{ humanizeDuration 59.5 }}|{{ humanizeDuration 60 }}|{{ humanizeDuration 3661 }}|{{ humanizeDuration 90061 }}|{{ humanizeDuration -90061 }}|{{ humanizeDuration 0.5 }}|{{ humanizeDuration 0.0001 }}|{{ humanizeDuration "12.5" }}|{{ humanizeDuration 1.23456 }}"##,
        r##"0s|1s|59.5s|1m 0s|1h 1m 1s|1d 1h 1m 1s|-1d 1h 1m 1s|500ms|100us|12.5s|1.235s"##,
    );
    check(
        r##"{{ humanizePercentage 0.1234 }}|{{ humanizePercentage 1 }}|{{ humanizePercentage 0 }}|{{ humanizePercentage "0.5" }}|{{ humanizePercentage 0.000012345 }}"##,
        r##"12.34%|100%|0%|50%|0.001234%"##,
    );
    check(
        r##"{{ humanizeTimestamp 0 }}|{{ humanizeTimestamp 1.5 }}|{{ humanizeTimestamp 1435065584.128 }}|{{ humanizeTimestamp 1e20 }}|{{ humanizeTimestamp "1700000000" }}"##,
        r##"ERR template: __alert_Foo:1:208: executing "__alert_Foo" at <humanizeTimestamp 1e20>: error calling humanizeTimestamp: 1e+20 cannot be represented as a nanoseconds timestamp since it overflows int64"##,
    );
    check(
        r##"{{ toTime 1435065584.128 }}|{{ toTime 0 }}"##,
        r##"2015-06-23 13:19:44.128 +0000 UTC|1970-01-01 00:00:00 +0000 UTC"##,
    );
    check(
        r##"{{ humanize nil }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <humanize nil>: error calling humanize: can't convert <nil> to float"##,
    );
    check(
        r##"{{ humanize true }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <humanize true>: error calling humanize: can't convert bool to float"##,
    );
    check(
        r##"{{ toTime "NaN" }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <toTime "NaN">: error calling toTime: value is NaN or Inf"##,
    );
    check(
        r##"{{ humanizeTimestamp "NaN" }}|{{ humanize "NaN" }}|{{ humanize "+Inf" }}|{{ humanize1024 "-Inf" }}|{{ humanizeDuration "Inf" }}|{{ humanizePercentage "NaN" }}"##,
        r##"NaN|NaN|+Inf|-Inf|+Inf|NaN%"##,
    );
    check(
        r##"{{ parseDuration "" }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <parseDuration "">: error calling parseDuration: empty duration string"##,
    );
    check(
        r##"{{ stripPort "localhost:9090" }}|{{ stripPort "localhost" }}|{{ stripPort "[::1]:9090" }}|{{ stripPort "::1" }}|{{ stripDomain "foo.example.com:9090" }}|{{ stripDomain "foo.example.com" }}|{{ stripDomain "192.168.0.1:80" }}|{{ stripDomain "[::1]:9090" }}"##,
        r##"localhost|localhost|::1|::1|foo:9090|foo|192.168.0.1:80|[::1]:9090"##,
    );
    check(
        r##"{{ title "hello world foo-bar o'neil x_y 3rd" }}|{{ toUpper "abcé" }}|{{ toLower "ABC" }}|{{ reReplaceAll "(a+)b" "X$1Y" "aab cab" }}|{{ reReplaceAll "a" "$1x" "aaa" }}|{{ match "^a.c$" "abc" }}|{{ match "b" "abc" }}"##,
        r##"Hello World Foo-Bar O'Neil X_y 3rd|ABCÉ|abc|X cX||true|true"##,
    );
    check(
        r##"{{ reReplaceAll "(" "x" "y" }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <reReplaceAll "(" "x" "y">: error calling reReplaceAll: regexp: Compile(`(`): error parsing regexp: missing closing ): `(`"##,
    );
    check(
        r##"{{ match "(" "x" }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <match "(" "x">: error calling match: error parsing regexp: missing closing ): `(`"##,
    );
    check(
        r##"{{ graphLink "up{a=\"b\"} + 1" }}|{{ tableLink "rate(x[5m])" }}|{{ safeHtml "<b>" }}"##,
        r##"/graph?g0.expr=up%7Ba%3D%22b%22%7D+%2B+1&g0.tab=0|/graph?g0.expr=rate%28x%5B5m%5D%29&g0.tab=1|<b>"##,
    );
    check(
        r##"{{ with query "up" }}{{ range . }}{{ .Labels.instance }}={{ .Value }};{{ end }}{{ end }}|{{ query "up" | first | value }}|{{ query "up" | first | label "job" }}|{{ range query "up" | sortByLabel "instance" }}{{ .Labels.job }} {{ end }}"##,
        r##"localhost:9090=3.5;node1.example.com:9100=1;|3.5|prom|prom node "##,
    );
    check(
        r##"{{ query "up{job='none'}" | first }}"##,
        r##"ERR template: __alert_Foo:1:140: executing "__alert_Foo" at <first>: error calling first: first() called on vector with no elements"##,
    );
    check(
        r##"{{ query "up{" }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <query "up{">: error calling query: 1:4: parse error: unexpected end of input inside braces"##,
    );
    check(
        r##"{{ query "\"str\"" }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <query "\"str\"">: error calling query: rule result is not a vector or scalar"##,
    );
    check(
        r##"{{ query "up[1m]" }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <query "up[1m]">: error calling query: rule result is not a vector or scalar"##,
    );
    check(
        r##"{{ strvalue (query "up" | first) }}|{{ query "up" | len }}"##,
        r##"|2"##,
    );
    // Current Prometheus accepts negative durations and reports unknown units (2.42 did not).
    check(
        r##"{{ parseDuration "1h30m" }}|{{ parseDuration "-5m" }}|{{ parseDuration "0" }}|{{ parseDuration "1w2d" }}"##,
        "5400|-300|0|777600",
    );
    check(
        r##"{{ parseDuration "1.5h" }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <parseDuration "1.5h">: error calling parseDuration: unknown unit "." in duration "1.5h""##,
    );
    check(
        r##"{{ parseDuration "5m1h" }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <parseDuration "5m1h">: error calling parseDuration: not a valid duration string: "5m1h""##,
    );
}

#[test]
fn language() {
    // Expected outputs from promtool 2.42.
    check(
        r##"{{ if 0 }}a{{ else if "" }}b{{ else if $labels }}c{{ else }}d{{ end }}|{{ if 0.0 }}x{{ else }}y{{ end }}|{{ if nil }}x{{ else }}n{{ end }}|{{ with $labels.job }}[{{ . }}]{{ end }}|{{ with $labels.nosuch }}x{{ else }}none{{ end }}"##,
        r##"ERR template: __alert_Foo:1:223: executing "__alert_Foo" at <nil>: nil is not a command"##,
    );
    check(
        r##"{{ range $k, $v := $labels }}{{ $k }}={{ $v }},{{ end }}|{{ range $labels }}{{ . }};{{ end }}|{{ range $i, $e := query "up" }}{{ $i }}:{{ $e.Value }} {{ end }}|{{ range $x := (args 1 2).nosuch }}x{{ else }}empty{{ end }}"##,
        r##"__name__=up,instance=localhost:9090,job=prom,|up;localhost:9090;prom;|0:3.5 1:1 |empty"##,
    );
    check(
        r##"{{ range $k, $v := $labels }}{{ if eq $k "instance" }}{{ continue }}{{ end }}{{ if eq $k "job" }}{{ break }}{{ end }}{{ $k }}{{ end }}"##,
        r##"__name__"##,
    );
    check(
        r##"{{ define "t" }}[{{ . }}|{{ $ }}]{{ end }}{{ template "t" 5 }}{{ template "t" }}{{ block "b" $labels.job }}<{{ . }}>{{ end }}"##,
        r##"[5|5][<no value>|<no value>]<prom>"##,
    );
    check(
        r##"{{ template "nosuch" }}"##,
        r##"ERR template: __alert_Foo:1:124: executing "__alert_Foo" at <{{template "nosuch"}}>: template "nosuch" not defined"##,
    );
    check(
        r##"{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ $y := 3 }}{{ end }}{{ $x }}|{{ $ | printf "%T" }}"##,
        r##"2|struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value float64 }"##,
    );
    check(
        r##"{{ and 1 0 2 }}|{{ and 1 2 }}|{{ or 0 "" 3 }}|{{ or 0 "" }}|{{ not 0 }}|{{ not $labels }}|{{ and }}"##,
        r##"ERR template: __alert_Foo:1:205: executing "__alert_Foo" at <and>: wrong number of args for and: want at least 1 got 0"##,
    );
    check(
        r##"{{ len $labels }}|{{ len "héllo" }}|{{ index $labels "job" }}|{{ index $labels "nosuch" }}|{{ index "abc" 1 }}|{{ slice "abcdef" 1 3 }}|{{ slice "abc" 1 }}|{{ index (query "up") 0 }}"##,
        r##"3|6|prom||98|bc|bc|{map[__name__:up instance:localhost:9090 job:prom] 3.5}"##,
    );
    check(
        r##"{{ len 3 }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <len 3>: error calling len: len of type int"##,
    );
    check(
        r##"{{ index (query "up") 5 }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <index (query "up") 5>: error calling index: index out of range: 5"##,
    );
    check(
        r##"{{ print 1 2 "a" "b" 3 true nil 1.5 }}|{{ println 1 "a" }}|{{ print }}|{{ print "a" 1 "b" }}|{{ print $labels 1 }}"##,
        r##"1 2ab3 true <nil> 1.5|1 a
||a1b|map[__name__:up instance:localhost:9090 job:prom] 1"##,
    );
    check(
        r##"{{ html "<a href='x'>&\"</a>" }}|{{ js "a'b\"c<d>&=\\ \n" }}|{{ urlquery "a b&c=d/é" }}|{{ html 1 2 }}|{{ urlquery 1 "x" }}"##,
        r##"&lt;a href=&#39;x&#39;&gt;&amp;&#34;&lt;/a&gt;|a\'b\"c\u003Cd\u003E\u0026\u003D\\ \u000A|a+b%26c%3Dd%2F%C3%A9|1 2|1x"##,
    );
    check(
        r##"{{- "a" -}}   {{- "b" }}  
  {{ "c" -}}
 d{{/* comment */}}e{{- /* c2 */ -}} f"##,
        r##"ab  
  cdef"##,
    );
    check(
        r##"{{ .Value }}|{{ .ExternalLabels }}|{{ $externalLabels.foo }}|{{ .Labels.job | toUpper | printf "%s!" }}"##,
        r##"3.5|map[]||PROM!"##,
    );
    check(
        r##"{{ humanize "1" | printf "%s" | len }}|{{ (query "up" | first).Labels.job }}|{{ (index (query "up") 1).Value }}"##,
        r##"1|prom|1"##,
    );
    check(
        r##"{{ $value | humanize }}|{{ humanize $value }}|{{ $labels.job | printf "%s-%s" "x" }}"##,
        r##"3.5|3.5|x-prom"##,
    );
    check(
        r##"{{ toUpper 3 }}"##,
        r##"ERR template: __alert_Foo:1:123: executing "__alert_Foo" at <3>: expected string; found 3"##,
    );
    check(
        r##"{{ toUpper $value }}"##,
        r##"ERR template: __alert_Foo:1:123: executing "__alert_Foo" at <$value>: wrong type for value; expected string; got float64"##,
    );
    check(
        r##"{{ label 3 (query "up" | first) }}"##,
        r##"ERR template: __alert_Foo:1:121: executing "__alert_Foo" at <3>: expected string; found 3"##,
    );
    check(
        r##"{{ first $labels }}"##,
        r##"ERR template: __alert_Foo:1:121: executing "__alert_Foo" at <$labels>: wrong type for value; expected template.queryResult; got map[string]string"##,
    );
    check(
        r##"{{ 3 4 }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <3>: can't give argument to non-function 3"##,
    );
    check(
        r##"{{ nil }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <nil>: nil is not a command"##,
    );
    check(
        r##"{{ $labels.job 3 }}"##,
        r##"ERR template: __alert_Foo:1:122: executing "__alert_Foo" at <$labels.job>: job is not a method but has arguments"##,
    );
    check(
        r##"{{ humanize 1 2 }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <humanize>: wrong number of args for humanize: want 1 got 2"##,
    );
    check(
        r##"{{ printf }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <printf>: wrong number of args for printf: want at least 1 got 0"##,
    );
    check(
        r##"{{ range 3 }}x{{ end }}"##,
        r##"ERR template: __alert_Foo:1:121: executing "__alert_Foo" at <3>: range can't iterate over 3"##,
    );
    check(
        r##"{{ range $value }}x{{ end }}"##,
        r##"ERR template: __alert_Foo:1:121: executing "__alert_Foo" at <$value>: range can't iterate over 3.5"##,
    );
    check(
        r##"{{ if humanize "x" }}a{{ end }}"##,
        r##"ERR template: __alert_Foo:1:118: executing "__alert_Foo" at <humanize "x">: error calling humanize: strconv.ParseFloat: parsing "x": invalid syntax"##,
    );
    check(
        r##"{{ template "t" }}{{ define "t" }}{{ .Labels.nosuch }}{{ .nosuch }}{{ end }}"##,
        r##"<no value><no value>"##,
    );
    check(
        r##"{{ template "t" $labels }}{{ define "t" }}{{ .nosuch | len }}|{{ .job }}{{ end }}"##,
        r##"0|prom"##,
    );
    check(
        r##"{{ index $labels 1 }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <index $labels 1>: error calling index: value has type int; should be string"##,
    );
    check(
        r##"{{ index (query "up") "a" }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <index (query "up") "a">: error calling index: cannot index slice/array with type string"##,
    );
    check(
        r##"{{ slice "abc" 2 1 }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <slice "abc" 2 1>: error calling slice: invalid slice index: 2 > 1"##,
    );
    check(
        r##"{{ (args).x }}|{{ args }}|{{ printf "%v" (args).x }}|{{ printf "%s" (args nil).arg0 }}|{{ (args nil).arg0 }}"##,
        r##"<no value>|map[]|<nil>|%!s(<nil>)|<no value>"##,
    );
    check(r##"{{ eq nil nil }}"##, r##"true"##);
    check(
        r##"{{ eq $labels $labels }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <eq $labels $labels>: error calling eq: non-comparable type map[__name__:up instance:localhost:9090 job:prom]: map[string]string"##,
    );
    check(
        r##"{{ eq "a" }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <eq "a">: error calling eq: missing argument for comparison"##,
    );
    check(
        r##"{{ ne 1 2 }}|{{ ne "a" "a" }}|{{ ge 2.5 1.5 }}|{{ lt "a" "b" }}|{{ eq true true }}|{{ eq (args 1).arg0 1 }}|{{ gt (index (query "up") 0).Value 3.0 }}"##,
        r##"true|false|true|true|true|true|true"##,
    );
    check(
        r##"{{ $x := 5 }}{{ range $labels }}{{ $x }}{{ $ | len }}{{ end }}"##,
        r##"ERR template: __alert_Foo:1:159: executing "__alert_Foo" at <len>: error calling len: len of type struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value float64 }"##,
    );
    check(
        r##"{{ 1.5 }}|{{ -3 }}|{{ +3 }}|{{ 1_000 }}|{{ 0o17 }}|{{ 0b101 }}|{{ 017 }}|{{ 1e-7 }}|{{ .5 }}|{{ '\n' }}|{{ true }}|{{ "a\tb\u00e9" }}|{{ `raw\n` }}"##,
        r##"1.5|-3|3|1000|15|5|15|1e-07|0.5|10|true|a	bé|raw\n"##,
    );
    check(
        r##"{{ call 1 }}"##,
        r##"ERR template: __alert_Foo:1:115: executing "__alert_Foo" at <call 1>: error calling call: non-function of type int"##,
    );
    check(
        r##"{{ (humanize 1).foo }}"##,
        r##"ERR template: __alert_Foo:1:125: executing "__alert_Foo" at <1>: can't evaluate field foo in type string"##,
    );
    check(
        r##"{{ printf "%s" (toTime 1.5) }}|{{ printf "%v" (toTime 1) }}|{{ (toTime 100).Unix }}|{{ printf "%T %T %T %T %T %T" (toTime 1) 1 1.5 "s" $labels (query "up") }}"##,
        r##"1970-01-01 00:00:01.5 +0000 UTC|1970-01-01 00:00:01 +0000 UTC|100|*time.Time int float64 string map[string]string template.queryResult"##,
    );
    check(
        r##"{{ printf "%T|%T|%T" (query "up" | first) nil (args 1) }}|{{ printf "%v" (query "up" | first) }}|{{ printf "%+v" (args 1) }}"##,
        r##"*template.sample|<nil>|map[string]interface {}|&{map[__name__:up instance:localhost:9090 job:prom] 3.5}|map[arg0:1]"##,
    );
}

#[test]
fn parse_errors() {
    // Expected errors from `promtool check rules` 2.42.
    check(
        r##"{{ foo }}"##,
        r##"ERR template: __alert_Foo:1: function "foo" not defined"##,
    );
    check(
        r##"{{ . } }}"##,
        r##"ERR template: __alert_Foo:1: unexpected "}" in operand"##,
    );
    check(
        r##"{{"##,
        r##"ERR template: __alert_Foo:1: unclosed action"##,
    );
    check(
        r##"{{ .a"##,
        r##"ERR template: __alert_Foo:1: unclosed action"##,
    );
    check(
        r##"{{ end }}"##,
        r##"ERR template: __alert_Foo:1: unexpected {{end}}"##,
    );
    check(
        r##"{{ if 1 }}"##,
        r##"ERR template: __alert_Foo:1: unexpected EOF"##,
    );
    check(
        r##"{{ if 1 }}{{ else }}{{ else }}{{ end }}"##,
        r##"ERR template: __alert_Foo:1: expected end; found {{else}}"##,
    );
    check(
        r##"{{ $x }}"##,
        r##"ERR template: __alert_Foo:1: undefined variable "$x""##,
    );
    check(
        r##"{{ "abc }}"##,
        r##"ERR template: __alert_Foo:1: unterminated quoted string"##,
    );
    check(
        r##"{{ `abc }}"##,
        r##"ERR template: __alert_Foo:1: unterminated raw quoted string"##,
    );
    check(
        r##"{{ 'ab' }}"##,
        r##"ERR template: __alert_Foo:1: malformed character constant: 'ab'"##,
    );
    check(
        r##"{{ 1x }}"##,
        r##"ERR template: __alert_Foo:1: bad number syntax: "1x""##,
    );
    check(
        r##"{{ }}"##,
        r##"ERR template: __alert_Foo:1: missing value for command"##,
    );
    check(
        r##"{{ .a | 1 }}"##,
        r##"ERR template: __alert_Foo:1: non executable command in pipeline stage 2"##,
    );
    check(
        r##"{{ (1 }}"##,
        r##"ERR template: __alert_Foo:1: unclosed left paren"##,
    );
    check(
        r##"{{ 1) }}"##,
        r##"ERR template: __alert_Foo:1: unexpected ")" in command"##,
    );
    check(
        r##"{{ break }}"##,
        r##"ERR template: __alert_Foo:1: {{break}} outside {{range}}"##,
    );
    check(
        r##"{{ range . }}{{ continue 1 }}{{ end }}"##,
        r##"ERR template: __alert_Foo:1: unexpected "1" in {{continue}}"##,
    );
    check(
        r##"{{/* x */ }}"##,
        r##"ERR template: __alert_Foo:1: comment ends before closing delimiter"##,
    );
    check(
        r##"{{/* x"##,
        r##"ERR template: __alert_Foo:1: unclosed comment"##,
    );
    check(
        r##"{{ "a\q" }}"##,
        r##"ERR template: __alert_Foo:1: invalid syntax"##,
    );
    check(
        r##"{{ template foo }}"##,
        r##"ERR template: __alert_Foo:1: unexpected "foo" in template clause"##,
    );
    check(
        r##"{{ define "x" }}a"##,
        r##"ERR template: __alert_Foo:1: unexpected EOF"##,
    );
    check(
        r##"{{ 1.a }}"##,
        r##"ERR template: __alert_Foo:1: bad number syntax: "1.a""##,
    );
    check(
        r##"{{ range $a, $b, $c := . }}{{ end }}"##,
        r##"ERR template: __alert_Foo:1: too many declarations in range"##,
    );
    check(
        r##"{{ with $a, $b := . }}{{ end }}"##,
        r##"ERR template: __alert_Foo:1: too many declarations in with"##,
    );
    check(
        r##"line1
line2 {{ foo }}"##,
        r##"ERR template: __alert_Foo:2: function "foo" not defined"##,
    );
    check(
        r##"{{ .a.b c }}"##,
        r##"ERR template: __alert_Foo:1: function "c" not defined"##,
    );
    check(
        r##"{{ @ }}"##,
        r##"ERR template: __alert_Foo:1: unexpected "@" in command"##,
    );
    check(
        r##"{{ else }}"##,
        r##"ERR template: __alert_Foo:1: unexpected {{else}}"##,
    );
    check(
        r##"{{ if }}{{ end }}"##,
        r##"ERR template: __alert_Foo:1: missing value for if"##,
    );
    check(
        r##"{{ "x".y }}"##,
        r##"ERR template: __alert_Foo:1: unexpected . after term "\"x\"""##,
    );
    check(
        r##"{{ 0x1G }}"##,
        r##"ERR template: __alert_Foo:1: bad number syntax: "0x1G""##,
    );
    check(
        r##"{{ 99999999999999999999 }}"##,
        r##"ERR template: __alert_Foo:1: integer overflow: "99999999999999999999""##,
    );
    check(
        r##"{{ if 1 }}
{{ end }}
{{ end }}"##,
        r##"ERR template: __alert_Foo:3: unexpected {{end}}"##,
    );
}
