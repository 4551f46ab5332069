#!/usr/bin/env node
// The idle agents of tests/bench/relay.py: N connections to URL that send
// nothing. Opens them --parallel at a time; prints {"event":"open","count":N}
// when all are up (or {"event":"failed",...} and exits 1), then waits for a
// line on stdin: "add K" opens K more the same way (and prints again);
// "close" or end of input closes them all and exits.
//
// usage: node idle.js --url ws://127.0.0.1:P/path --count N [--parallel 50] [--agent idle]
'use strict';
const WebSocket = require('ws');
const readline = require('readline');

const a = { parallel: 50, agent: 'idle' };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  a[k] = k === 'url' || k === 'agent' ? process.argv[i + 1] : Number(process.argv[i + 1]);
}
if (!a.url || !(a.count >= 0)) {
  process.stderr.write('usage: node idle.js --url URL --count N [--parallel K]\n');
  process.exit(2);
}
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const conns = [];
let closing = false, dropped = 0;
const samples = [];

function open(i) {
  return new Promise((resolve) => {
    const sep = a.url.includes('?') ? '&' : '?';
    const ws = new WebSocket(`${a.url}${sep}agent=${a.agent}-${i}`,
                             { perMessageDeflate: false, handshakeTimeout: 30000 });
    let up = false;
    ws.on('open', () => { up = true; resolve(ws); });
    ws.on('message', () => {});
    ws.on('error', (e) => { if (samples.length < 5) samples.push(`${i}: ${e.message}`); });
    ws.on('close', (code) => {
      if (!up) resolve(null);
      else if (!closing) {
        dropped++;
        if (samples.length < 5) samples.push(`${i}: closed (${code})`);
      }
    });
  });
}

async function add(k) {
  const base = conns.length;
  let nextIdx = 0, failed = 0;
  const worker = async () => {
    while (nextIdx < k) {
      const i = base + nextIdx++;
      const ws = await open(i);
      if (ws === null) failed++;
      else conns.push(ws);
    }
  };
  await Promise.all(Array.from({ length: Math.min(a.parallel, k) }, worker));
  if (failed > 0) {
    out({ event: 'failed', count: conns.length, failed, error_samples: samples });
    process.exit(1);
  }
  out({ event: 'open', count: conns.length, dropped, error_samples: samples });
}

function close() {
  closing = true;
  for (const ws of conns) ws.terminate();
  setTimeout(() => process.exit(0), 100);
}

const rl = readline.createInterface({ input: process.stdin });
let queue = add(a.count);
rl.on('line', (line) => {
  const [cmd, n] = line.trim().split(/\s+/);
  if (cmd === 'add') queue = queue.then(() => add(Number(n)));
  else if (cmd === 'close') queue.then(close);
});
rl.on('close', () => queue.then(close));
process.on('SIGTERM', () => process.exit(1));
