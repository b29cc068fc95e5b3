//! The dashboard in a real browser: headless Chromium over WebDriver
//! (chromedriver). A run stops at an approval gate; the test opens its page,
//! clicks Approve and sees the run succeed, and saves a screenshot.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use serve_support::*;

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find(bin: &[&'static str]) -> Option<&'static str> {
    bin.iter().copied().find(|b| std::path::Path::new(b).exists())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_a_gate_from_the_dashboard() {
    let (Some(chromium), Some(chromedriver)) = (find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]), find(&["/usr/bin/chromedriver"])) else {
        assert!(std::env::var_os("CI").is_none(), "chromium and chromedriver are missing in CI (apt-get install chromium chromium-driver)");
        eprintln!("SKIPPED: chromium or chromedriver is not installed; the dashboard is not tested in a browser");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token = make_token(dir.path(), "ana", "basic", Some("ops"));
    let srv = start(dir.path(), &[]);
    let c = client();
    let id = create(&c, &srv.base, &token, GATED).await;
    wait_for(&c, &srv.base, &token, &id, |s| s == "waiting_approval").await;

    let port = free_port();
    let _driver = Driver(
        Command::new(chromedriver).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap(),
    );
    let profile = dir.path().join("chromium-profile");
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--window-size=1280,900", format!("--user-data-dir={}", profile.display())]
        }
    });
    let caps: fantoccini::wd::Capabilities = caps.as_object().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    let browser = loop {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new()).capabilities(caps.clone()).connect(&format!("http://127.0.0.1:{port}")).await {
            Ok(b) => break b,
            Err(e) => {
                assert!(Instant::now() < deadline, "chromedriver did not answer: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let result = async {
        browser.goto(&format!("{}/", srv.base)).await?;
        browser.find(Locator::Css("#token")).await?.send_keys(&token).await?;
        browser.find(Locator::Css("#token-form button")).await?.click().await?;
        browser.wait().for_element(Locator::Css("#runs")).await?;
        browser.goto(&format!("{}/#/runs/{id}", srv.base)).await?;
        // The page redraws as events arrive: an element may go stale between
        // finding and reading it, so each read finds it afresh.
        let attr = |css: String, name: &'static str| {
            let browser = browser.clone();
            async move {
                for _ in 0..50 {
                    if let Ok(e) = browser.find(Locator::Css(&css)).await
                        && let Ok(v) = e.attr(name).await
                    {
                        return v;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                None
            }
        };
        browser.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("button.approve[data-step='publish']")).await?;
        assert_eq!(attr("#step-publish".into(), "data-status").await.as_deref(), Some("waiting_approval"));
        let mut clicked = false;
        for _ in 0..50 {
            if let Ok(b) = browser.find(Locator::Css("button.approve[data-step='publish']")).await
                && b.click().await.is_ok()
            {
                clicked = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(clicked, "could not click Approve");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = attr("#run-status".into(), "data-status").await.unwrap_or_default();
            if status == "succeeded" {
                break;
            }
            assert!(Instant::now() < deadline, "the run page still says `{status}`");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The step graph shows both steps succeeded, updated live.
        for step in ["draft", "publish"] {
            assert_eq!(attr(format!("#step-{step}"), "data-status").await.as_deref(), Some("succeeded"), "step {step}");
        }
        let png = browser.screenshot().await?;
        let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-dashboard-approved.png");
        std::fs::write(&out, png).unwrap();
        eprintln!("screenshot: {}", out.display());
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    result.unwrap();
    let run = wait_for(&c, &srv.base, &token, &id, |s| s == "succeeded").await;
    assert_eq!(run["status"], "succeeded");
}
