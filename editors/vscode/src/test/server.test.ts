import { strict as assert } from 'assert';
import { test } from 'node:test';
import { expandPath, findExecutable, normalizeArgs, resolveServer, ResolveContext, testCommandLine } from '../server';

function ctx(executables: string[], over: Partial<ResolveContext> = {}): ResolveContext {
  return {
    env: { PATH: '/usr/local/bin:/opt/aos/bin' },
    platform: 'linux',
    home: '/home/ada',
    cwd: '/tmp',
    isExecutable: (f) => executables.includes(f),
    ...over,
  };
}

test('a bare name is looked up on PATH, in order', () => {
  assert.equal(findExecutable('aosc', ctx(['/opt/aos/bin/aosc'])), '/opt/aos/bin/aosc');
  assert.equal(findExecutable('aosc', ctx(['/usr/local/bin/aosc', '/opt/aos/bin/aosc'])), '/usr/local/bin/aosc');
  assert.equal(findExecutable('aosc', ctx([])), undefined);
});

test('a path with a directory is not looked up on PATH', () => {
  assert.equal(findExecutable('/x/aosc', ctx(['/opt/aos/bin/aosc'])), undefined);
  assert.equal(findExecutable('/x/aosc', ctx(['/x/aosc'])), '/x/aosc');
});

test('relative paths resolve against the workspace folder, then cwd', () => {
  assert.equal(
    findExecutable('target/debug/aosc', ctx(['/ws/target/debug/aosc'], { workspaceFolder: '/ws' })),
    '/ws/target/debug/aosc',
  );
  assert.equal(findExecutable('./aosc', ctx(['/tmp/aosc'])), '/tmp/aosc');
});

test('~ and ${workspaceFolder} are expanded', () => {
  assert.equal(expandPath('~/.cargo/bin/aosc', ctx([])), '/home/ada/.cargo/bin/aosc');
  assert.equal(expandPath('${workspaceFolder}/target/debug/aosc', ctx([], { workspaceFolder: '/ws' })), '/ws/target/debug/aosc');
});

test('Windows tries PATHEXT extensions', () => {
  const c = ctx(['C:\\bin\\aosc.exe'], { platform: 'win32', env: { PATH: 'C:\\bin', PATHEXT: '.COM;.EXE' } });
  const found = findExecutable('aosc', c);
  assert.ok(found !== undefined && found.toLowerCase().endsWith('aosc.exe'), String(found));
});

test('the server runs `aosc lsp` followed by the extra arguments', () => {
  const r = resolveServer('aosc', ['--log', 'debug', 3], ctx(['/usr/local/bin/aosc']));
  assert.deepEqual(r, { ok: true, server: { command: '/usr/local/bin/aosc', args: ['lsp', '--log', 'debug'] } });
});

test('an empty or non-string path falls back to aosc', () => {
  const r = resolveServer('  ', undefined, ctx(['/usr/local/bin/aosc']));
  assert.equal(r.ok && r.server.command, '/usr/local/bin/aosc');
  assert.equal(resolveServer(42, undefined, ctx(['/usr/local/bin/aosc'])).ok, true);
});

test('a missing aosc gives a message that says what to do', () => {
  const r = resolveServer('aosc', [], ctx([]));
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.match(r.message, /`aosc` is not on PATH/);
    assert.match(r.message, /aos\.server\.path/);
  }
  const custom = resolveServer('/nope/aosc', [], ctx([]));
  assert.ok(!custom.ok && custom.message.includes('"/nope/aosc"'));
});

test('extra arguments that are not strings are dropped', () => {
  assert.deepEqual(normalizeArgs(['a', 1, null, 'b']), ['a', 'b']);
  assert.deepEqual(normalizeArgs('a b'), []);
});

test('the Run test lens runs aosc test on the file, filtered to the test, quoted for the shell', () => {
  const server = { command: '/opt/aos/bin/aosc', args: ['lsp'] };
  assert.equal(
    testCommandLine(server, '/ws/examples/hello.aos', 'greets Ada by name', 'linux'),
    "/opt/aos/bin/aosc test /ws/examples/hello.aos --filter 'greets Ada by name'",
  );
  assert.equal(
    testCommandLine(server, "/ws/it's.aos", "Ada's test", 'darwin'),
    "/opt/aos/bin/aosc test '/ws/it'\\''s.aos' --filter 'Ada'\\''s test'",
  );
  assert.equal(
    testCommandLine({ command: 'C:\\aos\\aosc.exe', args: [] }, 'C:\\ws\\a.aos', "it's", 'win32'),
    "& 'C:\\aos\\aosc.exe' 'test' 'C:\\ws\\a.aos' '--filter' 'it''s'",
  );
});
