//! The monitoring kit in `deploy/monitoring/`, proven with the real tools: promtool checks the
//! alert rules and runs their unit tests; the dashboard has what Grafana needs to import it; a
//! real Prometheus, configured by the example `prometheus.yml`, scrapes a real server while it
//! serves terminals, runs and errors, and then evaluates every query of the dashboard and of the
//! rules without an error (and every dashboard panel has data).
//!
//! Needs Debian's `prometheus` package (`prometheus` and `promtool` on PATH):
//! `apt-get install prometheus`.

mod common;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::runs::{agent, run, task};
use common::term::{close_code, create, events, sh, wait_event, wait_exited};
use common::{eventually, TestServer};
use serde_json::{json, Value};

fn kit(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/monitoring")
        .join(file)
}

fn read_kit(file: &str) -> String {
    std::fs::read_to_string(kit(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Runs a Prometheus tool to completion; a missing tool fails with the install command.
fn tool(name: &str, args: &[&str], dir: &Path) -> String {
    let out = Command::new(name)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{name} not runnable ({e}): apt-get install prometheus"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{name} {args:?} failed:\n{text}");
    text
}

/// Alert names, from the `- alert: Name` lines of alerts.yml.
fn alert_names() -> Vec<String> {
    read_kit("alerts.yml")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .map(|n| n.trim().to_string())
        .collect()
}

#[test]
fn alert_rules_pass_promtool_and_every_alert_fires_and_stays_silent_in_a_unit_test() {
    let dir = kit("");
    let checked = tool("promtool", &["check", "rules", "alerts.yml"], &dir);
    let names = alert_names();
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", names.len())),
        "{checked}"
    );
    tool("promtool", &["test", "rules", "alerts.test.yml"], &dir);

    // In alerts.test.yml each `alertname:` line is followed by its `exp_alerts:` line, which is
    // `exp_alerts: []` for a case where the alert must stay silent.
    let tests = read_kit("alerts.test.yml");
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    let (mut fires, mut silent) = (HashSet::new(), HashSet::new());
    for pair in lines.windows(2) {
        if let Some(name) = pair[0].strip_prefix("alertname: ") {
            match pair[1] {
                "exp_alerts: []" => silent.insert(name.to_string()),
                "exp_alerts:" => fires.insert(name.to_string()),
                other => panic!("unexpected line after alertname {name}: {other}"),
            };
        }
    }
    for name in &names {
        assert!(fires.contains(name), "no unit test makes {name} fire");
        assert!(silent.contains(name), "no unit test keeps {name} silent");
    }
}

/// Every panel of the dashboard, rows' nested panels included.
fn all_panels(dash: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dash["panels"].as_array().expect("panels") {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

fn dashboard() -> Value {
    serde_json::from_str(&read_kit("grafana-dashboard.json")).expect("dashboard is JSON")
}

#[test]
fn dashboard_has_what_grafana_needs_to_import_it() {
    let dash = dashboard();
    assert!(
        dash["schemaVersion"].as_i64().unwrap_or(0) >= 30,
        "schemaVersion"
    );
    assert!(!dash["title"].as_str().unwrap_or("").is_empty(), "title");
    assert!(!dash["uid"].as_str().unwrap_or("").is_empty(), "uid");
    assert!(
        dash["id"].is_null(),
        "no database id: Grafana assigns one on import"
    );
    let vars = dash["templating"]["list"].as_array().expect("templating");
    assert!(
        vars.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "a `datasource` variable picks the Prometheus"
    );

    let panels = all_panels(&dash);
    let mut ids = HashSet::new();
    let mut cells = HashSet::new();
    for p in &panels {
        let title = p["title"].as_str().unwrap_or("");
        assert!(
            ids.insert(p["id"].as_i64().expect("integer id")),
            "duplicate id: {title}"
        );
        let g = &p["gridPos"];
        let [h, w, x, y] = ["h", "w", "x", "y"].map(|k| g[k].as_i64().expect("gridPos"));
        assert!(
            h > 0 && w > 0 && x >= 0 && y >= 0 && x + w <= 24,
            "{title}: {g}"
        );
        for cell in (x..x + w).flat_map(|cx| (y..y + h).map(move |cy| (cx, cy))) {
            assert!(
                cells.insert(cell),
                "{title} overlaps another panel at {cell:?}"
            );
        }
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
            assert!(!t["expr"].as_str().unwrap_or("").is_empty(), "{title}");
        }
    }
    let rows: Vec<&str> = panels
        .iter()
        .filter(|p| p["type"] == "row")
        .filter_map(|p| p["title"].as_str())
        .collect();
    for row in [
        "Health",
        "HTTP",
        "WebSocket and viewers",
        "Sessions and runs",
        "DB pool",
        "Reaper",
        "Process",
    ] {
        assert!(rows.contains(&row), "row {row} missing: {rows:?}");
    }
}

/// A Prometheus child, killed and reaped when dropped.
struct Prometheus {
    child: Child,
    base: String,
    log: PathBuf,
    http: reqwest::Client,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus on a free loopback port with `config` and waits until it is ready.
    async fn start(dir: &Path, config: &Path) -> Prometheus {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = dir.join("prometheus.log");
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log fd"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("prometheus not runnable ({e}): apt-get install prometheus")
            });
        let mut p = Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            http: reqwest::Client::builder()
                .timeout(common::WAIT)
                .build()
                .expect("client"),
        };
        let ready = format!("{}/-/ready", p.base);
        for _ in 0..400 {
            if let Some(status) = p.child.try_wait().expect("try_wait") {
                panic!("prometheus exited ({status}):\n{}", p.log_text());
            }
            if let Ok(r) = p.http.get(&ready).send().await {
                if r.status().is_success() {
                    return p;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("prometheus not ready in 20 s:\n{}", p.log_text());
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn api(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .query(query)
            .send()
            .await
            .expect("prometheus answers");
        r.json().await.expect("prometheus JSON")
    }

    /// Evaluates `expr` now: the result vector, or the error Prometheus gave.
    async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let v = self.api("/api/v1/query", &[("query", expr)]).await;
        match v["status"].as_str() {
            Some("success") => Ok(v["data"]["result"].as_array().cloned().unwrap_or_default()),
            _ => Err(format!("{}: {}", v["errorType"], v["error"])),
        }
    }

    /// The first sample value of `expr`, if it has one.
    async fn value(&self, expr: &str) -> Option<f64> {
        let result = self.query(expr).await.ok()?;
        result.first()?["value"][1].as_str()?.parse().ok()
    }
}

/// The example prometheus.yml with only the target, the token file and the intervals changed.
fn prometheus_config(target_addr: &str, token_file: &Path) -> String {
    let example = read_kit("prometheus.yml");
    let (target, token, scrape, eval) = (
        "- targets: [\"127.0.0.1:8000\"]",
        "credentials_file: /etc/prometheus/claude-manager.token",
        "scrape_interval: 15s",
        "evaluation_interval: 15s",
    );
    for needle in [target, token, scrape, eval] {
        assert_eq!(
            example.matches(needle).count(),
            1,
            "{needle} in prometheus.yml"
        );
    }
    example
        .replace(target, &format!("- targets: [\"{target_addr}\"]"))
        .replace(
            token,
            &format!("credentials_file: {}", token_file.display()),
        )
        .replace(scrape, "scrape_interval: 1s")
        .replace(eval, "evaluation_interval: 1s")
}

/// Terminals with a viewer, a viewer of a missing session, runs that succeed and fail, and
/// requests that fail.
async fn make_traffic(s: &TestServer) {
    let mut ev = events(s).await;
    let t = create(s, sh("printf monitored")).await;
    wait_exited(&mut ev, t["id"].as_str().unwrap()).await;
    let live = create(s, sh("exec cat")).await;
    let id = live["id"].as_str().unwrap();
    let viewer = s.ws(&format!("/api/terminals/{id}/ws")).await;
    drop(viewer);
    let mut missing = s.ws("/api/terminals/nosuchsession/ws").await;
    assert_eq!(close_code(&mut missing).await, 4404);

    let fine = agent(s, "fine", json!({})).await;
    let failing = agent(s, "failing", json!({"FAKE_CLAUDE_MODE": "error"})).await;
    for a in [fine, failing] {
        let id = run(s, task(s, "monitored run", Some(a), 5).await).await;
        wait_event(&mut ev, "execution.finished", |d| d["id"] == id).await;
    }
    assert_eq!(s.get("/api/tasks/999999").await.status, 404);
    assert_eq!(s.post("/api/tasks", json!({})).await.status, 400);
}

#[tokio::test]
async fn prometheus_scrapes_the_server_and_every_dashboard_and_alert_query_evaluates() {
    let s = TestServer::start_with(|c| c.reap_interval = Duration::from_secs(1)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("claude-manager.token");
    // As `claude-manager token create --scope monitor > FILE` writes it: with a newline.
    std::fs::write(
        &token_file,
        format!("{}\n", s.create_token("monitor").await),
    )
    .unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, prometheus_config(&s.addr.to_string(), &token_file)).unwrap();
    std::fs::copy(kit("alerts.yml"), dir.path().join("alerts.yml")).unwrap();
    let prom = Prometheus::start(dir.path(), &config).await;

    make_traffic(&s).await;
    // Wait for a scrape that saw the traffic, and for the rules to have been evaluated after it.
    let p = &prom;
    eventually("Prometheus scraped the traffic", || async move {
        let runs = p
            .value(r#"sum(executions_total{job="claude-manager", type="agent_run"})"#)
            .await;
        let scrapes = p
            .value(r#"count_over_time(up{job="claude-manager"}[1m])"#)
            .await;
        (runs == Some(2.0) && scrapes >= Some(3.0)).then_some(())
    })
    .await;
    assert_eq!(
        prom.value(r#"up{job="claude-manager"}"#).await,
        Some(1.0),
        "the monitor token in a bearer file is accepted:\n{}",
        prom.log_text()
    );

    let mut failures = Vec::new();
    for p in all_panels(&dashboard()) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap_or("");
            let expr = expr
                .replace("$__rate_interval", "1m")
                .replace("$instance", ".*");
            match prom.query(&expr).await {
                Ok(result) if result.is_empty() => {
                    failures.push(format!("{}: no data from {expr}", p["title"]))
                }
                Ok(_) => {}
                Err(e) => failures.push(format!("{}: {e} in {expr}", p["title"])),
            }
        }
    }

    let names: HashSet<String> = alert_names().into_iter().collect();
    let rules = eventually("every rule evaluated", || async move {
        let v = p.api("/api/v1/rules", &[]).await;
        let rules: Vec<Value> = v["data"]["groups"]
            .as_array()?
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        rules
            .iter()
            .all(|r| {
                !r["lastEvaluation"]
                    .as_str()
                    .unwrap_or("0001")
                    .starts_with("0001")
            })
            .then_some(rules)
    })
    .await;
    let loaded: HashSet<String> = rules
        .iter()
        .filter_map(|r| r["name"].as_str().map(String::from))
        .collect();
    assert_eq!(loaded, names, "Prometheus loaded every rule of alerts.yml");
    for r in &rules {
        let (name, expr) = (&r["name"], r["query"].as_str().unwrap_or(""));
        if r["health"] != "ok" {
            failures.push(format!("{name}: {} {}", r["health"], r["lastError"]));
        }
        if let Err(e) = prom.query(expr).await {
            failures.push(format!("{name}: {e} in {expr}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    drop(prom);
    s.stop().await;
}
