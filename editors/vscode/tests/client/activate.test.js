// Smoke tests of the client as VS Code would load it, with the `vscode`
// module replaced by a recording stub. Runs against out/extension.js: the
// tsc output after `npm run compile`, the esbuild bundle after
// `npm run package` (ci.sh runs it in both states).
'use strict';
const { test } = require('node:test');
const assert = require('assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const Module = require('module');

// A value on which any property is a no-op function returning another such
// value, so that the parts of the VS Code API the tests do not care about
// (diagnostic collections, document events, …) quietly work.
function anything() {
  const fn = function () { return anything(); };
  return new Proxy(fn, {
    get(target, prop) {
      if (prop === 'then') return undefined; // not a thenable
      if (prop === Symbol.toPrimitive) return () => '';
      if (prop === Symbol.iterator) return function* () {};
      if (prop === 'dispose') return () => {};
      if (!(prop in target)) target[prop] = anything();
      return target[prop];
    },
  });
}

function makeVscode() {
  const state = {
    config: { path: 'aosc', extraArgs: [] },
    errors: [],
    log: [],
    configListeners: [],
    commands: new Map(),
  };
  const disposable = { dispose() {} };
  const event = () => disposable;
  const channel = {
    name: 'AUTOOS Language Server',
    append: (s) => state.log.push(s),
    appendLine: (s) => state.log.push(s),
    replace() {}, clear() {}, show() {}, hide() {}, dispose() {},
  };
  const base = {
    version: '1.85.0',
    workspace: {
      workspaceFolders: undefined,
      textDocuments: [],
      getConfiguration: (section) => ({
        get: (key, dflt) => {
          if (section === 'aos.server') return state.config[key] ?? dflt;
          return dflt;
        },
        has: () => false,
        inspect: () => undefined,
        update: async () => {},
      }),
      onDidChangeConfiguration: (l) => {
        state.configListeners.push(l);
        return disposable;
      },
      createFileSystemWatcher: () => ({ onDidCreate: event, onDidChange: event, onDidDelete: event, dispose() {} }),
    },
    window: {
      createOutputChannel: () => channel,
      showErrorMessage: async (msg) => {
        state.errors.push(msg);
        return undefined;
      },
      showWarningMessage: async () => undefined,
      showInformationMessage: async () => undefined,
      visibleTextEditors: [],
    },
    commands: {
      registerCommand: (name, fn) => {
        state.commands.set(name, fn);
        return disposable;
      },
      executeCommand: async () => undefined,
    },
    Disposable: class { static from() { return disposable; } constructor(f) { this.dispose = f; } },
    EventEmitter: class { constructor() { this.event = event; } fire() {} dispose() {} },
  };
  const vscode = new Proxy(base, {
    get(target, prop) {
      if (!(prop in target)) target[prop] = anything();
      return target[prop];
    },
  });
  for (const ns of ['workspace', 'window', 'commands']) {
    base[ns] = new Proxy(base[ns], {
      get(target, prop) {
        if (!(prop in target)) target[prop] = anything();
        return target[prop];
      },
    });
  }
  return { vscode, state };
}

const main = path.resolve(__dirname, '..', '..', 'out', 'extension.js');

function load(vscode) {
  const origLoad = Module._load;
  Module._load = function (request, ...rest) {
    if (request === 'vscode') return vscode;
    return origLoad.call(this, request, ...rest);
  };
  try {
    for (const k of Object.keys(require.cache)) {
      if (k.includes(`${path.sep}out${path.sep}`) || k.includes('vscode-languageclient')) delete require.cache[k];
    }
    return require(main);
  } finally {
    Module._load = origLoad;
  }
}

function context() {
  return { subscriptions: [], extensionPath: path.resolve(__dirname, '..', '..') };
}

async function settle() {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

test('a missing aosc is reported once, naming the setting', async () => {
  const { vscode, state } = makeVscode();
  state.config.path = '/nonexistent/aosc';
  const ext = load(vscode);
  await ext.activate(context());
  await settle();
  assert.equal(state.errors.length, 1);
  assert.match(state.errors[0], /"\/nonexistent\/aosc"/);
  assert.match(state.errors[0], /aos\.server\.path/);
  assert.ok(state.log.some((l) => l.includes('/nonexistent/aosc')));
  assert.ok(state.commands.has('aos.restartServer'));
  await ext.deactivate();
});

test('changing aos.server restarts with the new settings; other settings do not', async () => {
  const { vscode, state } = makeVscode();
  state.config.path = '/first/aosc';
  const ext = load(vscode);
  await ext.activate(context());
  await settle();
  assert.equal(state.errors.length, 1);
  state.config.path = '/second/aosc';
  for (const l of state.configListeners) l({ affectsConfiguration: (s) => s === 'editor.fontSize' });
  await settle();
  assert.equal(state.errors.length, 1, 'an unrelated setting must not restart the server');
  for (const l of state.configListeners) l({ affectsConfiguration: (s) => s === 'aos.server' || s === 'aos' });
  await settle();
  assert.equal(state.errors.length, 2);
  assert.match(state.errors[1], /"\/second\/aosc"/);
  await ext.deactivate();
});

function servers(dir) {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')));
}

// The server runs in another process: poll until `ok` holds (or 10 s pass).
async function waitFor(what, ok) {
  const deadline = Date.now() + 10000;
  for (;;) {
    let value;
    try {
      value = what();
      if (ok(value)) return value;
    } catch {
      // not there yet
    }
    if (Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('the server is spawned as `PATH lsp EXTRA…` over stdio, initialised, and shut down', async (t) => {
  if (process.platform === 'win32') return t.skip('uses a #! script');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aos-vscode-'));
  process.env.FAKE_AOSC_RECORD = dir;
  const { vscode, state } = makeVscode();
  state.config.path = path.join(__dirname, 'fake-server.js');
  state.config.extraArgs = ['--log', 'debug'];
  const ext = load(vscode);
  try {
    await ext.activate(context());
    await settle();
    assert.deepEqual(state.errors, []);
    let all = await waitFor(() => servers(dir), (a) => a.length === 1 && a[0].methods.length >= 2);
    assert.equal(all.length, 1);
    assert.deepEqual(all[0].argv, ['lsp', '--log', 'debug']);
    assert.deepEqual(all[0].methods.slice(0, 2), ['initialize', 'initialized']);

    // A restart shuts the first server down and starts one with the new arguments.
    state.config.extraArgs = ['--trace'];
    await state.commands.get('aos.restartServer')();
    await settle();
    assert.deepEqual(state.errors, []);
    const done = (s) => s.methods.includes('exit') || s.methods.includes('initialized');
    all = await waitFor(() => servers(dir), (a) => a.length === 2 && a.every(done) && a.some((s) => s.methods.includes('exit')));
    assert.equal(all.length, 2);
    const first = all.find((s) => s.argv.includes('debug'));
    const second = all.find((s) => s.argv.includes('--trace'));
    assert.deepEqual(second.argv, ['lsp', '--trace']);
    assert.deepEqual(first.methods.slice(-2), ['shutdown', 'exit']);
    assert.deepEqual(second.methods.slice(0, 2), ['initialize', 'initialized']);

    await ext.deactivate();
    await settle();
    const last = await waitFor(
      () => servers(dir).find((s) => s.argv.includes('--trace')),
      (s) => s.methods.includes('exit'),
    );
    assert.deepEqual(last.methods.slice(-2), ['shutdown', 'exit']);
  } finally {
    await ext.deactivate();
    delete process.env.FAKE_AOSC_RECORD;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
