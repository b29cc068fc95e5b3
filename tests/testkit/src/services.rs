//! Real services for tool tests: a PostgreSQL server started in a temporary
//! directory on a loopback port, and an SMTP sink speaking real SMTP on
//! loopback. Used by `runtime/tests/tools.rs`, the fleet tests and the
//! end-to-end scenario test.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

/// A PostgreSQL for one test: `AOS_TEST_PG_URL` when set (CI starts one),
/// else a server of our own when the PostgreSQL binaries are installed.
pub struct Postgres {
    pub url: String,
    dir: Option<PathBuf>,
    bin: PathBuf,
}

fn pg_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists() && b.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// Runs a PostgreSQL binary, as the `postgres` user when we are root
/// (PostgreSQL refuses to run as root).
fn pg_cmd(bin: &std::path::Path, tool: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Postgres {
    /// `None` (after saying so loudly) when no PostgreSQL can be had.
    pub fn start() -> Option<Postgres> {
        if let Ok(url) = std::env::var("AOS_TEST_PG_URL") {
            if !url.is_empty() {
                return Some(Postgres { url, dir: None, bin: PathBuf::new() });
            }
        }
        Self::start_own()
    }

    /// A server of our own even when `AOS_TEST_PG_URL` is set (a test that
    /// stops and restarts it); `None` (said loudly) without the binaries.
    pub fn start_own() -> Option<Postgres> {
        let Some(bin) = pg_bin() else {
            // CI installs PostgreSQL and sets AOS_TEST_PG_URL: never skip there.
            assert!(std::env::var_os("CI").is_none(), "CI must provide PostgreSQL (AOS_TEST_PG_URL)");
            eprintln!("\n*** SKIPPING: no PostgreSQL (set AOS_TEST_PG_URL or install postgresql-15) ***\n");
            return None;
        };
        let mk = if is_root() {
            Command::new("runuser").args(["-u", "postgres", "--", "mktemp", "-d", "/tmp/aos-pg-XXXXXX"]).output().unwrap()
        } else {
            Command::new("mktemp").args(["-d", "/tmp/aos-pg-XXXXXX"]).output().unwrap()
        };
        assert!(mk.status.success(), "mktemp: {}", String::from_utf8_lossy(&mk.stderr));
        let dir = PathBuf::from(String::from_utf8_lossy(&mk.stdout).trim());
        let data = dir.join("data");
        let o = pg_cmd(&bin, "initdb")
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .unwrap();
        assert!(o.status.success(), "initdb: {}", String::from_utf8_lossy(&o.stderr));
        let port = free_port();
        let opts = format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", dir.display());
        let o = pg_cmd(&bin, "pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-o", &opts, "-l"])
            .arg(dir.join("log"))
            .args(["-w", "start"])
            .output()
            .unwrap();
        assert!(o.status.success(), "pg_ctl start: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        Some(Postgres { url: format!("postgres://postgres@127.0.0.1:{port}/postgres"), dir: Some(dir), bin })
    }

    /// Stops our own server (fast shutdown: sessions are cut).
    pub fn stop(&self) {
        let dir = self.dir.as_ref().expect("only a server of our own can be stopped");
        let o = pg_cmd(&self.bin, "pg_ctl").arg("-D").arg(dir.join("data")).args(["-m", "fast", "-w", "stop"]).output().unwrap();
        assert!(o.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&o.stderr));
    }

    /// Starts our own server again on the same port and data.
    pub fn start_again(&self) {
        let dir = self.dir.as_ref().expect("only a server of our own can be started");
        let port = self.url.rsplit(':').next().and_then(|p| p.split('/').next()).unwrap_or("");
        let opts = format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", dir.display());
        let o = pg_cmd(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-o", &opts, "-l"])
            .arg(dir.join("log"))
            .args(["-w", "start"])
            .output()
            .unwrap();
        assert!(o.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&o.stderr));
    }

    /// Runs a query through `psql` and returns its unaligned output.
    pub fn query(&self, url: &str, sql: &str) -> String {
        let o = Command::new("psql").args([url, "-v", "ON_ERROR_STOP=1", "-tAq", "-c", sql]).output().unwrap();
        assert!(o.status.success(), "psql: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Runs SQL through `psql`.
    pub fn psql(&self, sql: &str) {
        let o = Command::new("psql").args([&self.url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql]).output().unwrap();
        assert!(o.status.success(), "psql: {}", String::from_utf8_lossy(&o.stderr));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = pg_cmd(&self.bin, "pg_ctl").arg("-D").arg(dir.join("data")).args(["-m", "immediate", "-w", "stop"]).output();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// One message the sink received.
#[derive(Clone, Debug)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

impl Received {
    /// A header's value (first occurrence, unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut out: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(o) = out.as_mut() {
                    o.push_str(line.trim_start());
                }
                continue;
            }
            if out.is_some() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case(name) {
                    out = Some(v.trim().to_string());
                }
            }
        }
        out
    }

    /// The body with quoted-printable soft breaks and escapes undone.
    pub fn body(&self) -> String {
        let body = self.data.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        let qp = self.header("Content-Transfer-Encoding").is_some_and(|v| v.eq_ignore_ascii_case("quoted-printable"));
        let body = body.replace("\r\n..", "\r\n.");
        let b64 = self.header("Content-Transfer-Encoding").is_some_and(|v| v.eq_ignore_ascii_case("base64"));
        if b64 {
            return base64_decode(&body);
        }
        if !qp {
            return body;
        }
        let joined = body.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' && i + 2 < bytes.len() {
                if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                    out.push(b);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// An SMTP server on loopback that keeps what it receives. With
/// `refuse`, it answers `550` to `RCPT TO` (a relay refusing the mail).
pub struct SmtpSink {
    pub port: u16,
    pub messages: Arc<Mutex<Vec<Received>>>,
    /// With STARTTLS offered: the first bytes the client sent after the
    /// server said "go ahead" (a TLS ClientHello starts with 0x16 0x03).
    pub after_starttls: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl SmtpSink {
    pub fn start(refuse: bool) -> SmtpSink {
        SmtpSink::start_with(refuse, false)
    }

    /// A sink that offers STARTTLS (it cannot finish the handshake: it
    /// records what the client sent after "220 go ahead" and hangs up).
    pub fn offering_starttls() -> SmtpSink {
        SmtpSink::start_with(false, true)
    }

    fn start_with(refuse: bool, starttls: bool) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let after_starttls = Arc::new(Mutex::new(Vec::new()));
        let (m, a) = (messages.clone(), after_starttls.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (m, a) = (m.clone(), a.clone());
                std::thread::spawn(move || {
                    let _ = session(stream, &m, refuse, starttls.then_some(&*a));
                });
            }
        });
        SmtpSink { port, messages, after_starttls }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.messages.lock().unwrap().clone()
    }
}

fn session(stream: TcpStream, messages: &Mutex<Vec<Received>>, refuse: bool, starttls: Option<&Mutex<Vec<Vec<u8>>>>) -> std::io::Result<()> {
    let mut w = stream.try_clone()?;
    let mut r = BufReader::new(stream);
    w.write_all(b"220 sink.test ESMTP ready\r\n")?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") && starttls.is_some() {
            w.write_all(b"250-sink.test\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 SMTPUTF8\r\n")?;
        } else if upper == "STARTTLS" && starttls.is_some() {
            w.write_all(b"220 2.0.0 go ahead\r\n")?;
            let mut first = vec![0u8; 5];
            use std::io::Read;
            let n = r.read(&mut first)?;
            first.truncate(n);
            if let Some(seen) = starttls {
                seen.lock().unwrap().push(first);
            }
            return Ok(());
        } else if upper.starts_with("EHLO") {
            w.write_all(b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")?;
        } else if upper.starts_with("HELO") {
            w.write_all(b"250 sink.test\r\n")?;
        } else if upper.starts_with("MAIL FROM:") {
            from = cmd[10..].trim().to_string();
            to.clear();
            w.write_all(b"250 OK\r\n")?;
        } else if upper.starts_with("RCPT TO:") {
            if refuse {
                w.write_all(b"550 5.7.1 relaying denied\r\n")?;
            } else {
                to.push(cmd[8..].trim().to_string());
                w.write_all(b"250 OK\r\n")?;
            }
        } else if upper == "DATA" {
            w.write_all(b"354 end with <CRLF>.<CRLF>\r\n")?;
            let mut data = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(&line);
            }
            messages.lock().unwrap().push(Received { from: from.clone(), to: to.clone(), data });
            w.write_all(b"250 OK queued\r\n")?;
        } else if upper == "QUIT" {
            w.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            w.write_all(b"250 OK\r\n")?;
        } else {
            w.write_all(b"502 command not implemented\r\n")?;
        }
    }
}

fn base64_decode(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let Some(v) = ALPHABET.iter().position(|&a| a == c) else { continue };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
