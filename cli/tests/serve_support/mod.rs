//! Starts a real `aosc serve` on a free loopback port with its own AOS_HOME,
//! and talks to it over HTTP. The server is killed when the handle drops.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const GATED: &str = r#"
model echo = sim("echo") { input: $0.10/M, output: $0.40/M, context: 8192 }

role executor = [echo]

/// Drafts a note, then publishes it once someone in `ops` approves.
workflow gated(name: String = "world") -> String {
  intent: "Draft a note and publish it after approval"
  budget: $0.01

  step draft: String = llm executor("Draft a note for {name}.") {
    max_tokens: 40
  }

  step publish: String = llm executor("Publish this note: {draft}") {
    max_tokens: 40
    approval: "ops"
  }

  return publish
}
"#;

pub const SLOW: &str = r#"
model slow = sim("slow") { input: $0.10/M, output: $0.40/M, context: 8192, latency: 60s }

role executor = [slow]

workflow slow() -> String {
  intent: "Take a long time"
  budget: $0.01

  step wait: String = llm executor("Take your time.") {
    max_tokens: 20
  }

  return wait
}
"#;

pub fn aosc(home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_aosc"))
        .args(args)
        .env("AOS_HOME", home)
        .env_remove("AOS_DATABASE_URL")
        .output()
        .unwrap()
}

/// `aosc token create …`, returning the token (stdout's last line).
pub fn make_token(home: &Path, name: &str, trust: &str, groups: Option<&str>) -> String {
    let mut args = vec!["token", "create", "--name", name, "--trust", trust];
    if let Some(g) = groups {
        args.extend(["--groups", g]);
    }
    let o = aosc(home, &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).lines().last().unwrap().trim().to_string()
}

pub struct Server {
    pub child: Child,
    pub base: String,
    pub home: PathBuf,
    pub log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `aosc serve` with `extra` arguments and waits until it listens.
pub fn start(home: &Path, extra: &[&str]) -> Server {
    start_env(home, extra, &[])
}

/// [`start`] with environment variables set (an empty value removes one).
pub fn start_env(home: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let log = home.join(format!("serve-{port}.log"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aosc"));
    cmd.args(["serve", "--addr", &addr]).args(extra).env("AOS_HOME", home).env("AOS_LOG_FORMAT", "json").env_remove("AOS_DATABASE_URL");
    for (k, v) in env {
        if v.is_empty() {
            cmd.env_remove(k);
        } else {
            cmd.env(k, v);
        }
    }
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let log_path = log.clone();
    std::thread::spawn(move || {
        use std::io::Write;
        let mut f = std::fs::File::create(&log_path).unwrap();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = writeln!(f, "{line}");
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&addr).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("aosc serve exited with {status}: {}", std::fs::read_to_string(&log).unwrap_or_default());
        }
        assert!(Instant::now() < deadline, "aosc serve did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, base: format!("http://{addr}"), home: home.to_path_buf(), log }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

/// Polls `GET /v1/runs/{id}` until `done(status)`; returns the run.
pub async fn wait_for(c: &reqwest::Client, base: &str, token: &str, id: &str, done: impl Fn(&str) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: Value = c.get(format!("{base}/v1/runs/{id}")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        if done(v["status"].as_str().unwrap_or("")) {
            return v;
        }
        assert!(Instant::now() < deadline, "run {id} stuck: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn create(c: &reqwest::Client, base: &str, token: &str, source: &str) -> String {
    let r = c.post(format!("{base}/v1/runs")).bearer_auth(token).json(&json!({"source": source, "inputs": {}})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let v: Value = r.json().await.unwrap();
    v["run_id"].as_str().unwrap().to_string()
}
