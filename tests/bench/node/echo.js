#!/usr/bin/env node
// The WebSocket echo backend of tests/bench/relay.py: every frame back as it
// came (text as text, binary as binary), on any path. permessage-deflate off.
//
// usage: node echo.js [PORT]     (0 or none: a free port)
// Prints {"port":N} once listening on 127.0.0.1.
'use strict';
const { WebSocketServer } = require('ws');

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: Number(process.argv[2] || 0),
  perMessageDeflate: false,
  clientTracking: false,
  backlog: 4096,
  maxPayload: 1 << 20,
});
wss.on('listening', () => {
  process.stdout.write(JSON.stringify({ port: wss.address().port }) + '\n');
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});     // a peer gone is the load generator's to report
});
wss.on('error', (e) => {
  process.stderr.write(`echo.js: ${e.message}\n`);
  process.exit(1);
});
process.on('SIGTERM', () => process.exit(0));
