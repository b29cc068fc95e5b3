#!/usr/bin/env node
// A stand-in for `aosc lsp` used by activate.test.js: it answers
// `initialize` and `shutdown` over stdio and records its argv and the methods
// it received in $FAKE_AOSC_RECORD/PID.json.
'use strict';
const fs = require('fs');
const path = require('path');
const seen = { argv: process.argv.slice(2), methods: [] };
function record() {
  if (process.env.FAKE_AOSC_RECORD) {
    // Written whole, then renamed, so that the test never reads half a file.
    const file = path.join(process.env.FAKE_AOSC_RECORD, `${process.pid}.json`);
    fs.writeFileSync(file + '.tmp', JSON.stringify(seen));
    fs.renameSync(file + '.tmp', file);
  }
}
record();
let buf = Buffer.alloc(0);
function send(msg) {
  const body = Buffer.from(JSON.stringify(msg), 'utf8');
  process.stdout.write(`Content-Length: ${body.length}\r\n\r\n`);
  process.stdout.write(body);
}
process.stdin.on('data', (chunk) => {
  buf = Buffer.concat([buf, chunk]);
  for (;;) {
    const sep = buf.indexOf('\r\n\r\n');
    if (sep < 0) return;
    const m = /Content-Length: (\d+)/i.exec(buf.slice(0, sep).toString());
    const len = m ? Number(m[1]) : 0;
    if (buf.length < sep + 4 + len) return;
    const msg = JSON.parse(buf.slice(sep + 4, sep + 4 + len).toString('utf8'));
    buf = buf.slice(sep + 4 + len);
    if (msg.method !== undefined) {
      seen.methods.push(msg.method);
      record();
    }
    if (msg.method === 'initialize') {
      send({ jsonrpc: '2.0', id: msg.id, result: { capabilities: {}, serverInfo: { name: 'fake-aosc' } } });
    } else if (msg.method === 'shutdown') {
      send({ jsonrpc: '2.0', id: msg.id, result: null });
    } else if (msg.method === 'exit') {
      process.exit(0);
    } else if (msg.id !== undefined && msg.method !== undefined) {
      send({ jsonrpc: '2.0', id: msg.id, result: null });
    }
  }
});
