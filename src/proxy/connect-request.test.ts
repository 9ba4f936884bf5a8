import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FIELD_LIMIT, HEAD_LIMIT, parseConnect, scanHead } from './connect-request.ts';

function parse(text: string): ReturnType<typeof parseConnect> {
  const scan = scanHead(Buffer.from(text, 'latin1'));
  assert.equal(scan.kind, 'head', `expected a complete head in ${JSON.stringify(text)}`);
  if (scan.kind !== 'head') throw new Error('unreachable');
  return parseConnect(scan.head);
}

function refused(text: string, status: number, reason: RegExp): void {
  const r = parse(text);
  assert.equal(r.ok, false, `expected ${JSON.stringify(text)} refused`);
  if (r.ok) return;
  assert.equal(r.error.status, status, `${JSON.stringify(text)}: ${r.error.reason}`);
  assert.match(r.error.reason, reason);
}

test('a well-formed CONNECT gives the target, the version and the fields', () => {
  const r = parse('CONNECT 203.0.113.10:443 HTTP/1.1\r\nHost: 203.0.113.10:443\r\nUser-Agent: curl/8\r\n\r\n');
  assert.ok(r.ok);
  assert.deepEqual(r.value.target, { host: '203.0.113.10', family: 4, port: 443 });
  assert.equal(r.value.version, 'HTTP/1.1');
  assert.deepEqual(r.value.fields, [['host', '203.0.113.10:443'], ['user-agent', 'curl/8']]);
});

test('IPv6 targets are canonicalised, names are kept lower case, HTTP/1.0 and LF-only heads are accepted', () => {
  const v6 = parse('CONNECT [2001:DB8:0::1]:8443 HTTP/1.0\r\n\r\n');
  assert.ok(v6.ok);
  assert.deepEqual(v6.value.target, { host: '2001:db8::1', family: 6, port: 8443 });
  assert.equal(v6.value.version, 'HTTP/1.0');
  const name = parse('CONNECT Example.TEST:443 HTTP/1.1\nHost: example.test\n\n');
  assert.ok(name.ok);
  assert.deepEqual(name.value.target, { host: 'example.test', family: null, port: 443 });
});

test('scanHead waits for the blank line, keeps the bytes after it, and skips leading empty lines', () => {
  assert.equal(scanHead(Buffer.from('CONNECT 192.0.2.1:80 HTTP/1.1\r\nHost: x\r\n')).kind, 'more');
  const s = scanHead(Buffer.from('\r\nCONNECT 192.0.2.1:80 HTTP/1.1\r\n\r\n\x16\x03\x01early'));
  assert.equal(s.kind, 'head');
  if (s.kind !== 'head') return;
  assert.equal(s.head.toString(), 'CONNECT 192.0.2.1:80 HTTP/1.1\r\n');
  assert.equal(s.rest.toString('latin1'), '\x16\x03\x01early');
});

test('a head over the limit is 431, before and after its end arrives', () => {
  const big = Buffer.from(`CONNECT 192.0.2.1:80 HTTP/1.1\r\nX: ${'a'.repeat(HEAD_LIMIT)}`);
  const s = scanHead(big);
  assert.equal(s.kind, 'error');
  if (s.kind === 'error') {
    assert.equal(s.error.status, 431);
    assert.match(s.error.reason, /over 8192 bytes/);
  }
  const fields = Array.from({ length: FIELD_LIMIT + 1 }, (_, i) => `X-${i}: 1\r\n`).join('');
  refused(`CONNECT 192.0.2.1:80 HTTP/1.1\r\n${fields}\r\n`, 431, /more than 64 header fields/);
});

test('every malformed request gets its status and a reason naming the fault', () => {
  const cases: Array<[string, number, RegExp]> = [
    ['GET http://192.0.2.1/ HTTP/1.1\r\n\r\n', 405, /method GET is not allowed.*only opens tunnels with CONNECT.*plain HTTP proxying is not offered/],
    ['connect 192.0.2.1:80 HTTP/1.1\r\n\r\n', 405, /case-sensitive: write CONNECT/],
    ['POST 192.0.2.1:80 HTTP/1.1\r\n\r\n', 405, /method POST is not allowed/],
    ['CONNECT 192.0.2.1:80\r\n\r\n', 400, /is not "METHOD TARGET HTTP\/1.1"/],
    ['CONNECT  192.0.2.1:80 HTTP/1.1\r\n\r\n', 400, /single spaces/],
    ['CONNECT 192.0.2.1:80 HTTP/1.1 extra\r\n\r\n', 400, /is not "METHOD TARGET/],
    ['CONNECT 192.0.2.1:80 HTTX/1.1\r\n\r\n', 400, /is not an HTTP version/],
    ['CONNECT 192.0.2.1:80 HTTP/2.0\r\n\r\n', 505, /HTTP\/2.0 is not supported/],
    ['CONNECT 192.0.2.1 HTTP/1.1\r\n\r\n', 400, /the port is missing/],
    ['CONNECT 192.0.2.1:0 HTTP/1.1\r\n\r\n', 400, /port 0 is outside 1–65535/],
    ['CONNECT 192.0.2.1:65536 HTTP/1.1\r\n\r\n', 400, /port 65536 is outside/],
    ['CONNECT 192.0.2.1:http HTTP/1.1\r\n\r\n', 400, /port "http" is not a number/],
    ['CONNECT :443 HTTP/1.1\r\n\r\n', 400, /the host is empty/],
    ['CONNECT http://192.0.2.1:443/ HTTP/1.1\r\n\r\n', 400, /authority form/],
    ['CONNECT user@192.0.2.1:443 HTTP/1.1\r\n\r\n', 400, /not a URL or userinfo/],
    ['CONNECT 2001:db8::1:443 HTTP/1.1\r\n\r\n', 400, /must be written in brackets/],
    ['CONNECT [2001:db8::1:443 HTTP/1.1\r\n\r\n', 400, /not closed with "]"/],
    ['CONNECT [2001:db8::1]443 HTTP/1.1\r\n\r\n', 400, /port is missing after the IPv6 address/],
    ['CONNECT [192.0.2.1]:443 HTTP/1.1\r\n\r\n', 400, /inside \[\] is not an IPv6 address/],
    ['CONNECT 192.0.2.300:443 HTTP/1.1\r\n\r\n', 400, /300 is above 255/],
    ['CONNECT exa_mple.test:443 HTTP/1.1\r\n\r\n', 400, /neither an IP address nor a host name/],
    ['CONNECT 192.0.2.1:443 HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n', 400, /obs-fold/],
    ['CONNECT 192.0.2.1:443 HTTP/1.1\r\nno colon here\r\n\r\n', 400, /line 2: .* is not a header field/],
    ['CONNECT 192.0.2.1:443 HTTP/1.1\r\nHost : a\r\n\r\n', 400, /field name "Host " is not a token/],
    ['CONNECT 192.0.2.1:443 HTTP/1.1\r\nX: a\x01b\r\n\r\n', 400, /field X has control characters/],
    ['CONNECT 192.0.2.1:443 HTTP/1.1\r\nX: a\rb\r\n\r\n', 400, /line 2 holds a bare CR/],
    ['CONNECT 192.0.2.1:443 HTTP/1.1\r\nX: a\0b\r\n\r\n', 400, /line 2 holds a NUL byte/],
    ['CONNECT 192.0.2.1:443 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400, /more than one Host field/],
    ['CONNECT 192.0.2.1:443 HTTP/1.1\r\nContent-Length: 5\r\n\r\n', 400, /Content-Length other than 0.*has no content/],
    ['CONNECT 192.0.2.1:443 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n', 400, /Transfer-Encoding on CONNECT/],
    ['CONN\x80CT 192.0.2.1:443 HTTP/1.1\r\n\r\n', 400, /is not a token/],
  ];
  for (const [text, status, reason] of cases) refused(text, status, reason);
});

test('405 carries Allow: CONNECT', () => {
  const r = parse('GET / HTTP/1.1\r\n\r\n');
  assert.ok(!r.ok);
  assert.deepEqual(r.error.headers, { allow: 'CONNECT' });
});

test('Content-Length: 0 is harmless and accepted', () => {
  assert.ok(parse('CONNECT 192.0.2.1:443 HTTP/1.1\r\nContent-Length: 0\r\n\r\n').ok);
});
