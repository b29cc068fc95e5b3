#!/usr/bin/env node
// Snapshot tests of the grammar over the repository's own .aos files.
//
// vscode-tmgrammar-snap writes each snapshot next to its source file, and the
// snapshots belong here, not in examples/. So the sources are copied into
// tests/snap/ (the copies are git-ignored; the .snap files are committed)
// and the tool runs on the copies.
//
//   node scripts/snap.js            check against the committed snapshots
//   node scripts/snap.js --update   rewrite the snapshots (read the diff!)
//   node scripts/snap.js --strict   also fail on stale or missing snapshots
//
// These tests guard the grammar, not the examples: when an example (or a
// stdlib file) has changed since its snapshot was taken, or a new one has no
// snapshot yet, the file is skipped with a warning instead of failing the
// build of whoever edited it. A snapshot whose source is unchanged but whose
// scopes differ is a grammar change and always fails.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const here = path.resolve(__dirname, '..');
const root = path.resolve(here, '..', '..');
const snapDir = path.join(here, 'tests', 'snap');
const update = process.argv.includes('--update');
const strict = process.argv.includes('--strict');

// Every .aos file of these directories is snapshotted, named PREFIX + name.
const sources = [
  { dir: path.join(root, 'examples'), prefix: '' },
  { dir: path.join(root, 'stdlib'), prefix: 'stdlib.' },
];

fs.mkdirSync(snapDir, { recursive: true });
const wanted = new Set();
for (const { dir, prefix } of sources) {
  if (!fs.existsSync(dir)) {
    continue;
  }
  for (const name of fs.readdirSync(dir).sort()) {
    if (!name.endsWith('.aos')) {
      continue;
    }
    const copy = prefix + name;
    wanted.add(copy);
    fs.copyFileSync(path.join(dir, name), path.join(snapDir, copy));
  }
}
if (wanted.size === 0) {
  console.error(`snap: no .aos files found under ${sources.map((s) => s.dir).join(', ')}`);
  process.exit(1);
}

const problems = [];
for (const name of fs.readdirSync(snapDir)) {
  const full = path.join(snapDir, name);
  if (name.endsWith('.aos') && !wanted.has(name)) {
    fs.rmSync(full);
  } else if (name.endsWith('.aos.snap') && !wanted.has(name.slice(0, -'.snap'.length))) {
    if (update) {
      fs.rmSync(full);
    } else {
      problems.push(`${name} belongs to a file that no longer exists`);
    }
  }
}
// The source lines a snapshot was taken from (its `>` lines).
function snapshotSource(file) {
  return fs
    .readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .filter((l) => l.startsWith('>'))
    .map((l) => l.slice(1));
}

const warnings = [];
if (!update) {
  for (const name of [...wanted]) {
    const snap = path.join(snapDir, name + '.snap');
    let why;
    if (!fs.existsSync(snap)) {
      why = 'has no committed snapshot';
    } else {
      const now = fs.readFileSync(path.join(snapDir, name), 'utf8').split(/\r?\n/);
      const then = snapshotSource(snap);
      if (now.length !== then.length || now.some((l, i) => l !== then[i])) {
        why = 'changed since its snapshot was taken';
      }
    }
    if (why !== undefined) {
      (strict ? problems : warnings).push(`${name} ${why}`);
      wanted.delete(name);
      fs.rmSync(path.join(snapDir, name));
    }
  }
}
for (const w of warnings) {
  console.warn(`snap: warning: ${w}; skipped (run \`npm run snap:update\` in editors/vscode and commit the result)`);
}
if (problems.length > 0) {
  for (const p of problems) {
    console.error(`snap: ${p}`);
  }
  console.error('snap: run `npm run snap:update` in editors/vscode, read the new snapshots, and commit them');
  process.exit(1);
}

if (wanted.size === 0) {
  console.warn('snap: warning: no file has an up-to-date snapshot; nothing to check');
  process.exit(0);
}

const bin = path.join(here, 'node_modules', 'vscode-tmgrammar-test', 'dist', 'snapshot.js');
const args = [bin, '-g', 'syntaxes/aos.tmLanguage.json'];
if (update) {
  args.push('--updateSnapshot');
}
args.push('tests/snap/*.aos');
const r = spawnSync(process.execPath, args, { cwd: here, stdio: 'inherit' });
if (r.status !== 0 && !update) {
  console.error('snap: the grammar no longer matches the snapshots; if the change is intended, run `npm run snap:update` and commit the result');
}
process.exit(r.status ?? 1);
