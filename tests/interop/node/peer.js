#!/usr/bin/env node
// A WebSocket peer built on Node's `ws` package, driven by the Python interop
// tests (tests/interop/test_node_ws.py) over JSON lines.
//
//   node peer.js server [--port N] [--host H] [--deflate] [--protocols a,b]
//                       [--header "Name: value"]...
//   node peer.js client URL [--deflate] [--protocols a,b]
//                       [--header "Name: value"]...
// --deflate turns on ws's perMessageDeflate with its defaults;
// --deflate-options JSON gives its options object instead.
//
// stdout: one JSON object per line, each with an "event" field:
//   listening {port}                       server only, once
//   open {path, protocol, extensions, extensions_header, deflate_params,
//         headers}                         handshake done; headers are the
//                                          ones received from the other side
//   message {binary, size, sha256, text?}  a whole message arrived (text is
//                                          included up to 4 KiB); it is echoed
//   sent {binary, size, sha256}            a "send" command has been written
//   ping {data} / pong {data}              control frames received (hex)
//   close {code, reason}                   the connection is closed
//   error {message}                        anything that went wrong
// stdin: one JSON command per line, applied to the current connection:
//   {"cmd": "send", "binary": b, "size": n, "kind": "random"|"repeat",
//    "fragments": k}                       generated payload, k >= 1 frames
//   {"cmd": "send", "text": s} / {"cmd": "send", "b64": s}, "fragments": k
//   {"cmd": "ping", "data": hex}
//   {"cmd": "close"[, "code": n[, "reason": s]]}
//   {"cmd": "terminate"}                   drop TCP without a close frame
//   {"cmd": "exit"}                        (or end of stdin) stop the peer
'use strict';

const crypto = require('crypto');
const readline = require('readline');
const { WebSocket, WebSocketServer } = require('ws');

const TEXT_PREVIEW = 4096;

// Characters of every UTF-8 length (1 to 4 bytes), so that generated text
// exercises the peer's UTF-8 validation.
const ALPHABET = Array.from(
  'abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789' +
    'éèàçüßøåñ ΑΒΓΔαβγδ АБВГабвг' +
    '€中文字日本語한국어' +
    '😀🎉🚀𝄞🐍'
);

function emit(event, fields) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + '\n');
}

function sha256(buffer) {
  return crypto.createHash('sha256').update(buffer).digest('hex');
}

function parseArgs(argv) {
  const opts = {
    mode: argv[0],
    url: null,
    host: '127.0.0.1',
    port: 0,
    deflate: false,
    protocols: [],
    headers: []
  };
  let i = 1;
  if (opts.mode === 'client') opts.url = argv[i++];
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--deflate') opts.deflate = true;
    else if (arg === '--deflate-options') opts.deflate = JSON.parse(argv[++i]);
    else if (arg === '--port') opts.port = Number(argv[++i]);
    else if (arg === '--host') opts.host = argv[++i];
    else if (arg === '--protocols') opts.protocols = argv[++i].split(',');
    else if (arg === '--header') {
      const line = argv[++i];
      const colon = line.indexOf(':');
      opts.headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
    } else throw new Error(`unknown argument: ${arg}`);
  }
  if (opts.mode !== 'client' && opts.mode !== 'server') {
    throw new Error('usage: peer.js server|client ...');
  }
  if (opts.mode === 'client' && !opts.url) throw new Error('client needs a URL');
  return opts;
}

function randomText(size) {
  // Pick characters at random, then trim or pad with ASCII to the exact
  // number of UTF-8 bytes asked for.
  const picks = [];
  let length = 0;
  while (length < size) {
    const char = ALPHABET[crypto.randomInt(ALPHABET.length)];
    picks.push(char);
    length += Buffer.byteLength(char);
  }
  while (length > size) length -= Buffer.byteLength(picks.pop());
  return picks.join('') + 'x'.repeat(size - length);
}

function makePayload(command) {
  if (command.text !== undefined) return command.text;
  if (command.b64 !== undefined) return Buffer.from(command.b64, 'base64');
  const size = command.size;
  if (command.kind === 'repeat') {
    const unit = command.binary ? Buffer.from('anyws+ws ') : 'anyws+ws ';
    const whole = command.binary
      ? Buffer.alloc(size, unit)
      : unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
    return whole;
  }
  return command.binary ? crypto.randomBytes(size) : randomText(size);
}

function splitPayload(payload, count) {
  // Text is split on code point boundaries, so that every fragment is a
  // valid string for ws.send(); a fragment may be empty.
  const units = typeof payload === 'string' ? Array.from(payload) : payload;
  const step = Math.ceil(units.length / count);
  const parts = [];
  for (let i = 0; i < count; i++) {
    const part = units.slice(i * step, (i + 1) * step);
    parts.push(typeof payload === 'string' ? part.join('') : part);
  }
  return parts;
}

function sendCommand(ws, command) {
  const payload = makePayload(command);
  const binary = typeof payload !== 'string';
  const parts = splitPayload(payload, command.fragments || 1);
  const bytes = binary ? payload : Buffer.from(payload);
  parts.forEach((part, index) => {
    const fin = index === parts.length - 1;
    const done = fin
      ? (err) => {
          if (err) emit('error', { message: `send: ${err.message}` });
          else emit('sent', { binary, size: bytes.length, sha256: sha256(bytes) });
        }
      : undefined;
    ws.send(part, { binary, fin }, done);
  });
}

function runCommand(ws, command) {
  if (!ws) {
    emit('error', { message: `no connection for ${command.cmd}` });
    return;
  }
  switch (command.cmd) {
    case 'send':
      sendCommand(ws, command);
      break;
    case 'ping':
      ws.ping(Buffer.from(command.data || '', 'hex'));
      break;
    case 'close':
      if (command.code === undefined) ws.close();
      else ws.close(command.code, command.reason || '');
      break;
    case 'terminate':
      ws.terminate();
      break;
    default:
      emit('error', { message: `unknown command: ${command.cmd}` });
  }
}

function safely(action) {
  try {
    action();
  } catch (err) {
    emit('error', { message: err.message });
  }
}

function attach(ws, info, state) {
  const deflate = ws._extensions['permessage-deflate'];
  emit('open', {
    ...info,
    protocol: ws.protocol,
    extensions: ws.extensions,
    // ws has no public accessor for the agreed parameters.
    deflate_params: deflate ? deflate.params : null
  });
  state.ws = ws;
  state.opened = true;
  for (const command of state.pending.splice(0)) safely(() => runCommand(ws, command));
  ws.on('message', (data, isBinary) => {
    const fields = { binary: isBinary, size: data.length, sha256: sha256(data) };
    if (!isBinary && data.length <= TEXT_PREVIEW) fields.text = data.toString();
    emit('message', fields);
    // Echo with the same type; the Python side checks what comes back.
    ws.send(data, { binary: isBinary });
  });
  ws.on('ping', (data) => emit('ping', { data: data.toString('hex') }));
  ws.on('pong', (data) => emit('pong', { data: data.toString('hex') }));
  ws.on('close', (code, reason) => emit('close', { code, reason: reason.toString() }));
}

function extensionsHeader(lines) {
  const prefix = 'sec-websocket-extensions:';
  const line = lines.find((item) => item.toLowerCase().startsWith(prefix));
  return line ? line.slice(prefix.length).trim() : null;
}

function startServer(opts, state) {
  const server = new WebSocketServer({
    host: opts.host,
    port: opts.port,
    perMessageDeflate: opts.deflate,
    handleProtocols: (offered) => opts.protocols.find((p) => offered.has(p)) || false
  });
  let sentExtensions = null;
  server.on('headers', (lines) => {
    for (const [name, value] of opts.headers) lines.push(`${name}: ${value}`);
    sentExtensions = extensionsHeader(lines);
  });
  server.on('listening', () => emit('listening', { port: server.address().port }));
  server.on('connection', (ws, request) => {
    ws.on('error', (err) => emit('error', { message: err.message }));
    attach(ws, {
      path: request.url,
      headers: request.headers,
      extensions_header: sentExtensions
    }, state);
  });
  server.on('error', (err) => emit('error', { message: err.message }));
  state.server = server;
}

function startClient(opts, state) {
  const ws = new WebSocket(opts.url, opts.protocols, {
    perMessageDeflate: opts.deflate,
    headers: Object.fromEntries(opts.headers)
  });
  let received = {};
  ws.on('upgrade', (response) => {
    received = response.headers;
  });
  ws.on('unexpected-response', (request, response) => {
    emit('error', { message: `unexpected response ${response.statusCode}` });
    request.destroy();
  });
  ws.on('open', () =>
    attach(ws, {
      path: new URL(opts.url).pathname,
      headers: received,
      extensions_header: received['sec-websocket-extensions'] || null
    }, state)
  );
  ws.on('error', (err) => emit('error', { message: err.message }));
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  // Commands that arrive before the handshake ends wait for it.
  const state = { ws: null, server: null, opened: false, pending: [] };
  if (opts.mode === 'server') startServer(opts, state);
  else startClient(opts, state);

  const stop = () => {
    if (state.ws) state.ws.terminate();
    if (state.server) state.server.close();
    process.exit(0);
  };
  const input = readline.createInterface({ input: process.stdin });
  input.on('line', (line) => {
    if (!line.trim()) return;
    const command = JSON.parse(line);
    if (command.cmd === 'exit') stop();
    else if (!state.opened) state.pending.push(command);
    else safely(() => runCommand(state.ws, command));
  });
  input.on('close', stop);
}

main();
