//! `deploy/` against the sidecar it deploys: every metric and label the Grafana dashboard
//! queries is in a real sidecar's `/metrics`, and every sidecar config of the Kubernetes
//! manifests is valid.

mod sidecar_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use functrace_sidecar::Config;
use sidecar_support::*;

/// Labels Prometheus adds to every series it scrapes (the target's), not the sidecar.
const TARGET_LABELS: [&str; 2] = ["instance", "job"];

/// Functions and keywords of the dashboard's PromQL; any other bare name is a metric.
const PROMQL_WORDS: [&str; 6] = ["sum", "rate", "histogram_quantile", "by", "or", "without"];

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(path)
}

/// What one query uses: metric names and label names.
#[derive(Debug, Default)]
struct Uses {
    metrics: BTreeSet<String>,
    labels: BTreeSet<String>,
}

/// The metrics and labels of a PromQL expression: names in `{...}` matchers and in
/// `by (...)`/`without (...)` are labels, names called with `(` are functions, the rest are
/// metrics. Strings, `[...]` ranges, `$variables` and numbers are skipped.
fn promql_uses(expr: &str) -> Uses {
    let mut uses = Uses::default();
    let chars: Vec<char> = expr.chars().collect();
    let (mut i, mut in_braces, mut grouping) = (0, false, false);
    let mut after_grouping_word = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
        } else if c == '$' || c.is_ascii_digit() || c == '.' {
            i += 1;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace()).copied();
            if in_braces || grouping {
                uses.labels.insert(word);
            } else if word == "by" || word == "without" {
                after_grouping_word = true;
            } else if next != Some('(') && !PROMQL_WORDS.contains(&word.as_str()) {
                uses.metrics.insert(word);
            } else {
                assert!(PROMQL_WORDS.contains(&word.as_str()), "{word} in {expr}");
            }
            continue;
        } else {
            match c {
                '{' => in_braces = true,
                '}' => in_braces = false,
                '(' if after_grouping_word => {
                    grouping = true;
                    after_grouping_word = false;
                }
                ')' => grouping = false,
                _ => {}
            }
            i += 1;
        }
    }
    uses
}

/// Every query of the dashboard: panel targets' `expr`s, and the template variables'
/// `label_values(METRIC, LABEL)`.
fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<(String, Uses)> {
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("a target's expr");
            queries.push((expr.to_owned(), promql_uses(expr)));
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        if variable["type"] != "query" {
            continue;
        }
        let query = variable["query"]["query"]
            .as_str()
            .expect("a variable's query");
        let args = query
            .strip_prefix("label_values(")
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("not label_values(METRIC, LABEL): {query}"));
        let (metric, label) = args.split_once(", ").expect("METRIC, LABEL");
        let uses = Uses {
            metrics: [metric.to_owned()].into(),
            labels: [label.to_owned()].into(),
        };
        queries.push((query.to_owned(), uses));
    }
    queries
}

/// A scrape's series: each metric name with the label names it has.
fn scraped(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut series: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let name_end = line.find(['{', ' ']).expect("NAME VALUE");
        let labels = series.entry(line[..name_end].to_owned()).or_default();
        let Some(rest) = line[name_end..].strip_prefix('{') else {
            continue;
        };
        // key="value",... with escapes in values; the sidecar's values hold no `="`.
        for pair in rest.split("\",") {
            let key = pair.split_once("=\"").expect("key=\"value\"").0;
            labels.insert(key.trim_start_matches(',').to_owned());
        }
    }
    series
}

#[test]
fn the_dashboard_queries_only_what_the_sidecar_exports() {
    let rt = runtime();
    let app = rt.block_on(echo_app("app"));
    let svcb = rt.block_on(echo_app("svcb"));
    let sidecar = Sidecar::start(&[
        "--inbound",
        &format!("127.0.0.1:0={app}"),
        "--outbound",
        "127.0.0.1:0",
        "--route",
        &format!("svcb={svcb}@v1"),
    ]);
    rt.block_on(async {
        get(sidecar.inbound(), "/pay", &[]).await;
        get(sidecar.outbound(), "/notify", &[("host", "svcb")]).await;
        get(sidecar.outbound(), "/", &[("host", "elsewhere")]).await;
    });
    sidecar.await_metric(
        r#"functrace_sidecar_requests_total{direction="outbound",route="unrouted",version="",code="502"}"#,
        1.0,
    );
    let series = scraped(&sidecar.admin_get("/metrics"));

    let text = std::fs::read_to_string(deploy("grafana/functrace-sidecar.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() >= 10, "{} queries", queries.len());
    let mut used = BTreeSet::new();
    for (query, uses) in &queries {
        assert!(!uses.metrics.is_empty(), "no metric in {query}");
        let mut labels: BTreeSet<&str> = TARGET_LABELS.into();
        for metric in &uses.metrics {
            let have = series
                .get(metric)
                .unwrap_or_else(|| panic!("{metric} is not exported; in {query}"));
            labels.extend(have.iter().map(String::as_str));
            used.insert(metric.clone());
        }
        for label in &uses.labels {
            assert!(
                labels.contains(label.as_str()),
                "label {label} is not on {:?}; in {query}",
                uses.metrics
            );
        }
    }
    // The panels the dashboard promises each have their metric.
    for metric in [
        "functrace_sidecar_requests_total",
        "functrace_sidecar_request_duration_seconds_bucket",
        "functrace_sidecar_spans_dropped_total",
        "functrace_sidecar_connections_open",
    ] {
        assert!(
            used.contains(metric),
            "the dashboard does not show {metric}"
        );
    }
}

#[test]
fn promql_uses_tells_metrics_from_labels() {
    let uses = promql_uses(
        r#"histogram_quantile(0.99, sum by (le, route) (rate(m_bucket{code=~"5..",a="}"}[$__rate_interval]))) or 0 * n"#,
    );
    assert_eq!(uses.metrics, ["m_bucket".to_owned(), "n".to_owned()].into());
    assert_eq!(
        uses.labels,
        ["a", "code", "le", "route"].map(str::to_owned).into()
    );
}

#[test]
fn the_kubernetes_sidecar_configs_are_valid_and_complete() {
    let kustomization = std::fs::read_to_string(deploy("kubernetes/kustomization.yaml")).unwrap();
    let services = std::fs::read_to_string(deploy("kubernetes/services.yaml")).unwrap();
    // Each app container's `args: ["serve", "NAME", "VERSION"]` has its sidecar's config,
    // sidecar/NAME-VERSION.toml (sidecar.yaml), in the ConfigMap.
    let mut apps = 0;
    for line in services.lines() {
        let Some(args) = line.trim().strip_prefix("args: [\"serve\", ") else {
            continue;
        };
        let words: Vec<&str> = args
            .split('"')
            .filter(|w| w.chars().all(char::is_alphanumeric) && !w.is_empty())
            .collect();
        let [name, version] = words[..] else {
            panic!("args: {args}");
        };
        let file = format!("sidecar/{name}-{version}.toml");
        assert!(
            kustomization.contains(&format!("- {file}\n")),
            "{file} is not in the ConfigMap"
        );
        let config = Config::from_file(&deploy(&format!("kubernetes/{file}"))).unwrap();
        config
            .validate()
            .unwrap_or_else(|err| panic!("{file}: {err}"));
        assert_eq!(config.service, name, "{file}");
        apps += 1;
    }
    assert_eq!(apps, 4, "svca, svcb v1 and v2, msgd");
}
