//! `servelab merge`: results of `servelab load --json` runs added into one.

#[macro_use]
mod load_support;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use base64::Engine;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use serde_json::Value;
use servelab::load::{
    encode_histogram, new_histogram, report_json, run_load, LoadConfig, LoadSummary,
};
use servelab::models::{Model, Server, ServerConfig};

fn servelab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_servelab"))
}

fn merge(args: &[&Path]) -> Output {
    servelab().arg("merge").args(args).output().unwrap()
}

/// A folder of its own for one test's files, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(test: &str) -> Dir {
        let dir =
            std::env::temp_dir().join(format!("servelab-merge-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn threaded_server() -> Server {
    Server::start(
        Model::Threaded,
        ServerConfig::new("127.0.0.1:0".parse().unwrap()),
    )
    .unwrap()
}

/// Decodes a base64 HdrHistogram V2 (compressed or not) without the crate's help.
fn histogram(text: &str) -> Histogram<u64> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap();
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .unwrap()
}

fn summary(path: &Path) -> LoadSummary {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Runs two `servelab load --json` processes at once against `url`, with
/// `extra` flags, each writing to its own file; returns the two files.
fn two_clients_at_once(dir: &Dir, url: &str, extra: &[&str], tag: &str) -> [PathBuf; 2] {
    let files = [
        dir.file(&format!("{tag}-a.json")),
        dir.file(&format!("{tag}-b.json")),
    ];
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            servelab()
                .args(["load", "-c", "2", "-d", "1s", "--json"])
                .args(load_support::engine_args())
                .args(extra)
                .arg(url)
                .stdout(File::create(f).unwrap())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    files
}

fn two_clients_at_once_merge_into_their_sum() {
    let server = threaded_server();
    let url = format!("http://{}/", server.local_addr());
    // A folder per engine: both run at once.
    let engine = load_support::engine().map_or("default", |e| e.name());
    let dir = Dir::new(&format!("sum-{engine}"));
    for (tag, extra) in [
        ("closed", &[][..]),
        ("open", &["--rate", "1000"][..]),
        ("mix", &["--mix", "/x:10%", "--pipeline", "2"][..]),
    ] {
        let [a, b] = two_clients_at_once(&dir, &url, extra, tag);
        let (sa, sb) = (summary(&a), summary(&b));
        assert!(sa.responses > 0 && sb.responses > 0, "{sa:?} {sb:?}");

        let out = merge(&[&a, &b, Path::new("--json")]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        // Run at once, their windows overlap: no warning.
        assert!(stderr.is_empty(), "{stderr}");
        let merged_file = dir.file(&format!("{tag}-merged.json"));
        std::fs::write(&merged_file, &out.stdout).unwrap();
        let m = summary(&merged_file);

        assert_eq!(m.clients, 2);
        assert_eq!(m.responses, sa.responses + sb.responses);
        assert_eq!(m.requests_sent, sa.requests_sent + sb.requests_sent);
        assert_eq!(m.bytes_read, sa.bytes_read + sb.bytes_read);
        assert_eq!(
            m.errors.unanswered,
            sa.errors.unanswered + sb.errors.unanswered
        );
        assert_eq!((m.connections, m.fairness.connections), (4, 4));
        assert_eq!(
            m.requests_per_sec,
            sa.requests_per_sec + sb.requests_per_sec
        );
        if tag == "open" {
            assert_eq!(m.rate_target, Some(2000.0));
            assert_eq!(m.offered_rate, sa.offered_rate + sb.offered_rate);
        }

        // The union of the two histograms, added here.
        let mut union = histogram(sa.histogram.as_deref().unwrap());
        union
            .add(histogram(sb.histogram.as_deref().unwrap()))
            .unwrap();
        let l = m.latency_us.unwrap();
        assert_eq!(l.count, union.len());
        assert_eq!(l.count, m.responses);
        assert_eq!(l.p50, union.value_at_quantile(0.5) as f64 / 1e3);
        assert_eq!(l.p99, union.value_at_quantile(0.99) as f64 / 1e3);
        assert_eq!(l.max, union.max() as f64 / 1e3);
        assert_eq!(histogram(m.histogram.as_deref().unwrap()), union);
        if tag == "open" {
            let mut union = histogram(sa.histogram_uncorrected.as_deref().unwrap());
            union
                .add(histogram(sb.histogram_uncorrected.as_deref().unwrap()))
                .unwrap();
            let u = m.latency_uncorrected_us.unwrap();
            assert_eq!(u.p99, union.value_at_quantile(0.99) as f64 / 1e3);
        }

        // Each kind of a mixed run merges as the whole does.
        assert_eq!(m.kinds.len(), if tag == "mix" { 2 } else { 0 });
        for (i, kind) in m.kinds.iter().enumerate() {
            let (ka, kb) = (&sa.kinds[i], &sb.kinds[i]);
            assert_eq!((&kind.path, kind.share_pct), (&ka.path, ka.share_pct));
            assert_eq!(kind.requests_sent, ka.requests_sent + kb.requests_sent);
            assert_eq!(kind.responses, ka.responses + kb.responses);
            assert_eq!(
                kind.responses_2xx_3xx,
                ka.responses_2xx_3xx + kb.responses_2xx_3xx
            );
            let mut union = histogram(ka.histogram.as_deref().unwrap());
            union
                .add(histogram(kb.histogram.as_deref().unwrap()))
                .unwrap();
            assert_eq!(histogram(kind.histogram.as_deref().unwrap()), union);
            let l = kind.latency_us.unwrap();
            assert_eq!(
                (l.count, l.p99),
                (union.len(), union.value_at_quantile(0.99) as f64 / 1e3)
            );
        }
        if tag == "mix" {
            let total: u64 = m.kinds.iter().map(|k| k.responses).sum();
            assert_eq!(total, m.responses);
            // The threaded model has no /x: the mix's answers are its 404s.
            assert_eq!(m.kinds[1].responses_2xx_3xx, 0);
            assert_eq!(m.errors.status["404"], m.kinds[1].responses);
        }

        // The text report, as `load` prints it.
        let out = merge(&[&a, &b]);
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        if tag == "mix" {
            assert!(text.contains("By request path (--mix"), "{text}");
        }
        for line in [
            "Merged from 2 runs of servelab load".to_string(),
            "2 threads and 4 connections".to_string(),
            format!("{} requests in ", m.responses),
            "Latency Distribution".to_string(),
            "Requests/sec:".to_string(),
        ] {
            assert!(text.contains(&line), "no {line:?} in:\n{text}");
        }

        // A merged result merges again.
        let out = merge(&[&merged_file, &a, Path::new("--json")]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let again: LoadSummary = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(again.clients, 3);
        assert_eq!(again.responses, m.responses + sa.responses);
    }
    server.shutdown();
}

/// A real result (in-process), as JSON to edit.
fn base_result() -> Value {
    let server = threaded_server();
    let mut config = LoadConfig::new(&format!("http://{}/", server.local_addr())).unwrap();
    config.connections = 2;
    config.duration = Duration::from_millis(200);
    config.engine = load_support::engine();
    let report = run_load(&config).unwrap();
    server.shutdown();
    serde_json::from_str(&report_json(&report)).unwrap()
}

/// `servelab merge base other` must fail with exit 2 and say each of
/// `expected` on stderr.
fn refused(dir: &Dir, base: &Path, other: &str, expected: &[&str]) {
    let path = dir.file("other.json");
    std::fs::write(&path, other).unwrap();
    let out = merge(&[base, &path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{other}: {stderr}");
    assert!(out.stdout.is_empty(), "printed a report: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for e in expected {
        assert!(stderr.contains(e), "no {e:?} in: {stderr}");
    }
}

#[test]
fn different_runs_and_non_results_are_refused() {
    let dir = Dir::new("refused");
    let base = base_result();
    let base_file = dir.file("base.json");
    std::fs::write(&base_file, base.to_string()).unwrap();
    let port = base["addr"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let changed = |key: &str, value: Value| {
        let mut v = base.clone();
        v[key] = value;
        v.to_string()
    };

    let other_port = if port == "1" { "2" } else { "1" };
    let url = format!("http://127.0.0.1:{other_port}/");
    refused(
        &dir,
        &base_file,
        &changed("url", url.clone().into()),
        &[
            "differ in target",
            &format!("127.0.0.1:{port}"),
            &format!("127.0.0.1:{other_port}"),
        ],
    );
    let url = format!("http://127.0.0.1:{port}/other");
    refused(
        &dir,
        &base_file,
        &changed("url", url.into()),
        &["differ in path", "\"/\"", "\"/other\""],
    );
    refused(
        &dir,
        &base_file,
        &changed("method", "HEAD".into()),
        &["differ in method", "\"GET\"", "\"HEAD\""],
    );
    refused(
        &dir,
        &base_file,
        &changed("headers", serde_json::json!(["X-Test: 1"])),
        &["differ in headers", "[]", "X-Test: 1"],
    );
    refused(
        &dir,
        &base_file,
        &changed("pipeline", 16.into()),
        &["differ in pipeline", "1 (", "16 ("],
    );
    refused(
        &dir,
        &base_file,
        &changed("timeout_s", 5.into()),
        &["differ in timeout", "2s", "5s"],
    );
    let mut open = base.clone();
    open["mode"] = "open".into();
    open["rate_target"] = 1000.into();
    open["histogram_uncorrected"] = base["histogram"].clone();
    refused(
        &dir,
        &base_file,
        &open.to_string(),
        &[
            "differ in schedule",
            "closed loop",
            "open loop at 1000 req/s per client",
        ],
    );
    let open_file = dir.file("open.json");
    std::fs::write(&open_file, open.to_string()).unwrap();
    let mut faster = open.clone();
    faster["rate_target"] = 1500.into();
    refused(
        &dir,
        &open_file,
        &faster.to_string(),
        &[
            "differ in rate",
            "1000 req/s per client",
            "1500 req/s per client",
        ],
    );

    // A mixed run merges only with runs of the same mix.
    let empty = encode_histogram(&new_histogram());
    let responses = base["responses"].clone();
    let kind = |path: &str, share: f64, responses: Value, latency: &Value, histogram: &Value| {
        serde_json::json!({
            "path": path, "share_pct": share, "requests_sent": responses,
            "responses": responses, "responses_2xx_3xx": responses,
            "latency_us": latency, "histogram": histogram,
        })
    };
    let mixed = |share: f64| {
        let mut v = base.clone();
        v["kinds"] = serde_json::json!([
            kind(
                "/",
                100.0 - share,
                responses.clone(),
                &base["latency_us"],
                &base["histogram"]
            ),
            kind("/x", share, 0.into(), &Value::Null, &empty.clone().into()),
        ]);
        v
    };
    refused(
        &dir,
        &base_file,
        &mixed(10.0).to_string(),
        &["differ in mix", "none (", "/ 90%, /x 10% ("],
    );
    let mixed_file = dir.file("mixed.json");
    std::fs::write(&mixed_file, mixed(10.0).to_string()).unwrap();
    refused(
        &dir,
        &mixed_file,
        &mixed(12.5).to_string(),
        &["differ in mix", "/ 90%, /x 10%", "/ 87.5%, /x 12.5%"],
    );
    let mut lying = mixed(10.0);
    lying["kinds"][1]["responses"] = 3.into();
    refused(
        &dir,
        &mixed_file,
        &lying.to_string(),
        &[
            "inconsistent",
            "its kind /x holds 0 samples for 3 responses",
        ],
    );
    let out = merge(&[&mixed_file, &mixed_file]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Not a load result at all.
    refused(
        &dir,
        &base_file,
        "not json",
        &["other.json", "not a result of servelab load --json"],
    );
    refused(
        &dir,
        &base_file,
        r#"{"schema":1,"complete":true,"cells":[]}"#,
        &["not a result of servelab load --json", "missing field"],
    );
    let mut old = base.clone();
    let fields = old.as_object_mut().unwrap();
    for key in [
        "schema",
        "histogram",
        "histogram_uncorrected",
        "started_at_ms",
    ] {
        fields.remove(key);
    }
    refused(&dir, &base_file, &old.to_string(), &["older servelab load"]);
    refused(
        &dir,
        &base_file,
        &changed("histogram", "AAAA".into()),
        &["histogram is unreadable"],
    );
    let out = merge(&[&base_file, &dir.file("missing.json")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.json: cannot read it"));
}

#[test]
fn windows_that_do_not_overlap_are_warned_of() {
    let dir = Dir::new("windows");
    let base = base_result();
    let a = dir.file("a.json");
    std::fs::write(&a, base.to_string()).unwrap();
    let mut earlier = base.clone();
    earlier["started_at_ms"] = (base["started_at_ms"].as_u64().unwrap() - 3_600_000).into();
    let b = dir.file("b.json");
    std::fs::write(&b, earlier.to_string()).unwrap();
    let out = merge(&[&a, &b, Path::new("--json")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: the recorded windows do not overlap"),
        "{stderr}"
    );
    let m: LoadSummary = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        m.notes.iter().any(|n| n.contains("do not overlap")),
        "{:?}",
        m.notes
    );
    assert_eq!(m.clients, 2);

    // One result merged alone is itself.
    let out = merge(&[&a, Path::new("--json")]);
    assert!(out.status.success());
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), base);
}

on_both_engines!(two_clients_at_once_merge_into_their_sum);
