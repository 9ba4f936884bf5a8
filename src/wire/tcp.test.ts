// TCP: a Linux-style SYN (MSS, SACK-permitted, timestamps, window scale) parsed and re-emitted
// byte for byte with its pseudo-header checksum; options walked safely; typed errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4Bytes } from './addr.ts';
import { fromHex, toHex } from './bytes.ts';
import { emitTcp, encodeTcpOptions, findTcpOption, parseTcp, tcpHeaderLen, TcpOptionKind, TcpSegment } from './tcp.ts';
import { a5, refChecksum, refPseudoHeader } from './testutil.ts';

const IP = { src: '192.0.2.10', dst: '203.0.113.5' };
/** A 40-byte SYN header, checksum zeroed (filled below by the reference). */
const SYN = fromHex(`
  9c40 01bb            # ports 40000 → 443
  0000 03e8 0000 0000  # seq 1000, ack 0
  a002 faf0 0000 0000  # data offset 10, SYN, window 64240, checksum, urgent
  0204 05b4            # MSS 1460
  0402                 # SACK permitted
  080a 0000 000b 0000 0000  # timestamps 11, 0
  01                   # NOP
  0303 07              # window scale 7
`);
const ck = refChecksum(refPseudoHeader(ipv4Bytes(IP.src), ipv4Bytes(IP.dst), 6, SYN.length), SYN);
SYN[16] = ck >>> 8;
SYN[17] = ck & 0xff;

test('parses a SYN with options and emits the same bytes, checksum included', () => {
  const r = parseTcp(SYN, 0, SYN.length, { verifyWith: IP });
  assert.ok(r.ok, JSON.stringify(r));
  assert.deepEqual(r.value, {
    srcPort: 40000, dstPort: 443, seq: 1000, ack: 0, flags: 0x002, window: 64240, urgent: 0,
    options: [{ kind: 'mss', value: 1460 }, { kind: 'sack_permitted' }, { kind: 'timestamps', tsval: 11, tsecr: 0 }, { kind: 'nop' }, { kind: 'window_scale', shift: 7 }],
  });
  assert.equal(tcpHeaderLen(r.value), 40);
  const out = a5(40);
  assert.equal(emitTcp(r.value, out, 0, 0, IP), 40);
  assert.equal(toHex(out), toHex(SYN));
});

test('the MSS option is found in place without allocating a list (the clamp path)', () => {
  const v = new TcpSegment().reset(SYN);
  assert.equal(v.check(), null);
  const at = v.findOption(TcpOptionKind.MSS, 4);
  assert.equal(at, 20);
  assert.equal(findTcpOption(SYN, 20, 40, TcpOptionKind.WINDOW_SCALE, 3), 37);
  assert.equal(findTcpOption(SYN, 20, 40, 99, 4), -1);
});

test('SACK blocks, unknown options and padding survive a round trip', () => {
  const options = [{ kind: 'sack', blocks: [{ left: 1, right: 2 }, { left: 0xfffffff0, right: 5 }] }, { kind: 'unknown', type: 30, data: new Uint8Array([1, 2]) }] as const;
  const bytes = encodeTcpOptions(options);
  assert.equal(bytes.length, 24);
  const seg = new Uint8Array(20 + bytes.length);
  const r0 = { srcPort: 1, dstPort: 2, seq: 3, ack: 4, flags: 0x18, window: 5, urgent: 0, options };
  emitTcp(r0, seg, 0, 0, IP);
  const r = parseTcp(seg, 0, seg.length, { verifyWith: IP });
  assert.ok(r.ok);
  assert.deepEqual(r.value.options, [...options, { kind: 'eol' }]);
});

test('malformed headers and options are typed errors, never exceptions', () => {
  const cases: [string, Uint8Array, string, number][] = [
    ['19 bytes', SYN.subarray(0, 19), 'truncated', 0],
    ['data offset 4', (() => { const b = SYN.slice(); b[12] = 0x42; return b; })(), 'malformed', 12],
    ['data offset past segment', SYN.subarray(0, 36), 'truncated', 12],
    ['option length 0', (() => { const b = SYN.slice(); b[21] = 0; return b; })(), 'malformed', 20],
    ['option past header', (() => { const b = SYN.slice(); b[38] = 9; return b; })(), 'malformed', 37],
    ['kind without length byte', (() => { const b = SYN.slice(0, 24); b[12] = 0x60; b.set([1, 1, 1, 2], 20); return b; })(), 'malformed', 23],
  ];
  for (const [what, b, code, offset] of cases) {
    const r = parseTcp(b);
    assert.ok(!r.ok, what);
    assert.equal(r.error.layer, 'tcp');
    assert.equal(r.error.code, code, `${what}: ${r.error.message}`);
    assert.equal(r.error.offset, offset, `${what}: ${r.error.message}`);
  }
  const bad = parseTcp(SYN, 0, SYN.length, { verifyWith: { src: IP.src, dst: '203.0.113.6' } });
  assert.ok(!bad.ok && bad.error.code === 'bad_checksum' && bad.error.offset === 16);
});
