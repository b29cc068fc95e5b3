#!/usr/bin/env bash
# aosc serve's tests need promtool (Debian package `prometheus`, the metrics
# test lints /metrics with `promtool check metrics`) and headless Chromium
# with chromedriver (the dashboard test drives a browser over WebDriver).
# With CI set, those tests fail instead of skipping when a tool is missing.
set -uo pipefail
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null 2>&1; }
fi
# The Debian prometheus package starts a server; the tests need only promtool.
systemctl stop prometheus >/dev/null 2>&1 || true
command -v promtool >/dev/null 2>&1 && promtool --version 2>&1 | head -n 1 || echo "promtool is missing: the metrics test will fail in CI"
[ -x /usr/bin/chromedriver ] && /usr/bin/chromedriver --version || echo "chromedriver is missing: the dashboard test will fail in CI"
exit 0
