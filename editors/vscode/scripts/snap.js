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
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const here = path.resolve(__dirname, '..');
const root = path.resolve(here, '..', '..');
const snapDir = path.join(here, 'tests', 'snap');
const update = process.argv.includes('--update');

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
if (!update) {
  for (const name of wanted) {
    if (!fs.existsSync(path.join(snapDir, name + '.snap'))) {
      problems.push(`${name} has no committed snapshot`);
    }
  }
}
if (problems.length > 0) {
  for (const p of problems) {
    console.error(`snap: ${p}`);
  }
  console.error('snap: run `npm run snap:update` in editors/vscode, read the new snapshots, and commit them');
  process.exit(1);
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
