#!/usr/bin/env bash
# CI for the VS Code extension: install exactly what package-lock.json says,
# build, run the grammar and client tests, and build the .vsix. Needs Node.js
# 20+ and npm, and no network beyond the npm registry; never prompts.
set -euo pipefail
cd "$(dirname "$0")"

export npm_config_yes=false npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false

echo "== vscode: npm ci =="
npm ci --no-fund --no-audit
echo "== vscode: compile =="
npm run --silent compile
echo "== vscode: test =="
npm test
echo "== vscode: package =="
rm -f ./*.vsix
npm run --silent package </dev/null
ls -l ./*.vsix
echo "== vscode: the packaged (bundled) client starts a server =="
node --test tests/client/
