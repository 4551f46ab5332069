#!/usr/bin/env node
// The load generator of tests/bench/relay.py: C connections to URL, frames
// sent at a fixed total rate R (open loop: a frame never waits for an echo),
// spread round-robin over the connections, each frame tagged with its
// sequence number so that its echo gives its round trip.
//
// usage: node load.js --url ws://127.0.0.1:P/path --conns C --rate R
//                     --seconds D [--warmup W] [--drain 3] [--agent bench]
//                     [--control 1]
//
// Stdout, one JSON object a line: {"event":"open"} once every connection is
// up, {"event":"measure"} when the measured D seconds begin (after W of
// warm-up, not counted), {"event":"done"} when the measured frames are all
// back (or after --drain seconds), then the result:
//   {"sent", "received", "p50_us", "p99_us", "mean_us", "max_us", "errors",
//    "error_samples", "other_frames", "late_ms"}
// sent and received count the measured frames only; errors counts
// connections that failed or closed, echoes that differ from what was sent
// and frames that are no echo (other_frames: chatmond's warnings, say);
// late_ms is how far the sender fell behind its schedule at worst.
//
// Before closing, each connection ends its conversation ({"type":"end"}) and
// waits for that echo, so that chatmond keeps no round open (which would
// raise SLA warnings long after).
//
// With --control 1 it waits, once every connection is up, for a line "go"
// on stdin before sending, and after the result for the end of stdin
// before closing the connections: the harness counts a proxy's system
// calls (strace -c) over the frames alone, without the handshakes and
// closes.
'use strict';
const WebSocket = require('ws');

function parseArgs(argv) {
  const a = { warmup: 2, drain: 3, agent: 'bench' };
  for (let i = 2; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '');
    a[k] = k === 'url' || k === 'agent' ? argv[i + 1] : Number(argv[i + 1]);
  }
  for (const k of ['url', 'conns', 'rate', 'seconds'])
    if (a[k] === undefined || Number.isNaN(a[k])) {
      process.stderr.write(`load.js: --${k} is required\n`);
      process.exit(2);
    }
  return a;
}

const args = parseArgs(process.argv);
const control = args.control === 1;
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

// Ordinary shop talk that breaks no rule of conf/rules.d; with the JSON
// around it a frame is 150-160 bytes.
const TEXTS = [
  '亲，您好，这款保温杯是304不锈钢的，保温六到八个小时，今天下单明天发货哦',
  '亲，这件外套有黑色和灰色两个颜色，尺码是标准的，按平时穿的选就可以了',
  '好的亲，已经帮您备注了，仓库打包的时候会仔细检查，请您放心等待收货哦',
  '亲，这款杯子容量是五百毫升，杯盖可以拆下来清洗，日常使用很方便的呢',
];
// The frame a connection sends as its seq-th; the echo must be it exactly.
function frame(conn, seq) {
  return `{"type":"message","conversation":"c-${conn}","seq":${seq},` +
         `"text":"${TEXTS[seq % TEXTS.length]}"}`;
}

const conns = [];
const sentAt = new Map();       // seq -> send time (ms, performance.now)
const rtts = [];                // the measured frames' round trips, ms
let seq = 0;
let measuring = false, measureFrom = Infinity, measureTo = Infinity;
let sent = 0, received = 0, errors = 0, other = 0, late = 0, finished = false;
let endsLeft = 0, endsDone = null;
const samples = [];

function error(msg) {
  errors++;
  if (samples.length < 5) samples.push(msg);
}

function onMessage(i, data, isBinary) {
  const s = data.toString();
  if (finished) {               // the ends' echoes
    if (s.startsWith('{"type":"end"') && --endsLeft === 0 && endsDone) endsDone();
    return;
  }
  const at = s.indexOf('"seq":');
  const n = at < 0 || isBinary ? NaN : parseInt(s.slice(at + 6), 10);
  const t0 = sentAt.get(n);
  if (t0 === undefined) {
    other++;
    error(`connection ${i}: not an echo: ${s.slice(0, 80)}`);
    return;
  }
  sentAt.delete(n);
  if (s !== frame(i, n)) error(`connection ${i}: frame ${n} came back changed`);
  if (n >= measureFrom && n < measureTo) {
    rtts.push(performance.now() - t0);
    received++;
  }
  if (measureTo !== Infinity && sentAt.size === 0 && !finished) finish();
}

function open(i) {
  return new Promise((resolve) => {
    const sep = args.url.includes('?') ? '&' : '?';
    const ws = new WebSocket(`${args.url}${sep}agent=${args.agent}-${i}`,
                             { perMessageDeflate: false, handshakeTimeout: 10000 });
    let up = false;
    ws.on('open', () => { up = true; resolve(ws); });
    ws.on('message', (d, b) => onMessage(i, d, b));
    ws.on('error', (e) => { if (!finished) error(`connection ${i}: ${e.message}`); });
    ws.on('close', (code) => {
      if (!finished) error(`connection ${i}: closed (${code})`);
      if (!up) resolve(null);
    });
  });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const k = (sorted.length - 1) * p;
  const lo = Math.floor(k), hi = Math.ceil(k);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (k - lo);
}

function finish() {
  finished = true;
  out({ event: 'done' });
  rtts.sort((x, y) => x - y);
  const us = (v) => (v === null ? null : Math.round(v * 1000 * 10) / 10);
  out({
    sent, received,
    p50_us: us(percentile(rtts, 0.5)), p99_us: us(percentile(rtts, 0.99)),
    mean_us: us(rtts.length ? rtts.reduce((x, y) => x + y, 0) / rtts.length : null),
    max_us: us(rtts.length ? rtts[rtts.length - 1] : null),
    errors: errors + (sent - received), error_samples: samples,
    lost: sent - received, other_frames: other, late_ms: Math.round(late * 10) / 10,
  });
  const close = async () => {
    await new Promise((resolve) => {
      endsDone = resolve;
      endsLeft = conns.length;
      conns.forEach((ws, i) => ws.send(`{"type":"end","conversation":"c-${i}"}`));
      setTimeout(resolve, 3000);
    });
    for (const ws of conns) ws.terminate();
    setTimeout(() => process.exit(0), 100);
  };
  if (control) {
    process.stdin.on('end', close);
    process.stdin.resume();
  } else {
    close();
  }
}

// The next line of stdin (--control).
function line() {
  return new Promise((resolve) => {
    let buf = '';
    const onData = (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        process.stdin.off('data', onData);
        process.stdin.off('end', onEnd);
        process.stdin.pause();
        resolve(buf.slice(0, nl).trim());
      }
    };
    const onEnd = () => resolve(null);
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', onData);
    process.stdin.on('end', onEnd);
  });
}

async function main() {
  for (let i = 0; i < args.conns; i++) {
    const ws = await open(i);
    if (ws === null) {
      out({ event: 'failed' });
      process.stderr.write(`load.js: connection ${i} did not open: ${samples.join('; ')}\n`);
      process.exit(1);
    }
    conns.push(ws);
  }
  out({ event: 'open' });
  if (control && (await line()) !== 'go') process.exit(1);

  const start = performance.now();
  const warmEnd = start + args.warmup * 1000;
  const end = warmEnd + args.seconds * 1000;
  let due = 0, next = 0;        // frames due since start; round-robin index
  const tick = () => {
    const now = performance.now();
    if (!measuring && now >= warmEnd) {
      measuring = true;
      measureFrom = seq;
      out({ event: 'measure' });
    }
    if (now >= end) {
      measureTo = seq;
      if (sentAt.size === 0) finish();
      else setTimeout(() => { if (!finished) finish(); }, args.drain * 1000);
      return;
    }
    due = Math.floor((now - start) / 1000 * args.rate);
    // how far behind schedule: the oldest frame still owed
    if (seq < due) late = Math.max(late, now - start - seq / args.rate * 1000);
    while (seq < due) {
      const i = next;
      next = (next + 1) % conns.length;
      const n = seq++;
      sentAt.set(n, performance.now());
      conns[i].send(frame(i, n));
      if (measuring) sent++;
    }
    setTimeout(tick, 1);
  };
  tick();
}

process.on('SIGTERM', () => process.exit(1));
main();
