// Runs in a real browser: opens WebSockets through Ferry to a TCP echo backend and checks every byte.
// The page reports PASS or FAIL in document.title and #result; run_browser_tests.py reads them.
"use strict";

const log = (line) => { document.getElementById("log").textContent += line + "\n"; };
const params = new URLSearchParams(location.search);

function pattern(size, seed) {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed) & 0xff;
  return bytes;
}

function open(url, protocols) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error("could not open " + url));
  });
}

// Reads `count` bytes from the byte stream of binary messages, whatever their boundaries.
function reader(ws) {
  let chunks = [], have = 0, waiting = null;
  ws.onmessage = (event) => {
    if (typeof event.data === "string") { chunks.push(new TextEncoder().encode(event.data)); }
    else { chunks.push(new Uint8Array(event.data)); }
    have += chunks[chunks.length - 1].length;
    if (waiting && have >= waiting.count) { const w = waiting; waiting = null; w.resolve(); }
  };
  return async (count, what) => {
    if (have < count) {
      await new Promise((resolve, reject) => {
        waiting = { count, resolve };
        setTimeout(() => reject(new Error("timeout reading " + what)), 20000);
      });
    }
    const out = new Uint8Array(count);
    let filled = 0;
    while (filled < count) {
      const chunk = chunks[0];
      const take = Math.min(chunk.length, count - filled);
      out.set(chunk.subarray(0, take), filled);
      filled += take;
      if (take === chunk.length) chunks.shift(); else chunks[0] = chunk.subarray(take);
    }
    have -= count;
    return out;
  };
}

function same(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function echoChecks(url) {
  const ws = await open(url, ["binary"]);
  if (ws.protocol !== "binary") throw new Error("subprotocol " + ws.protocol);
  const read = reader(ws);
  for (const size of [1, 125, 126, 65535, 65536, 1 << 20]) {
    const data = pattern(size, size & 0xff);
    ws.send(data);
    if (!same(await read(size, size + " bytes"), data)) throw new Error("echo of " + size + " bytes differs");
    log("  " + size + " bytes ok");
  }
  // A burst of many small messages, reassembled as one stream.
  const burst = [];
  for (let i = 0; i < 500; i++) { const m = pattern(1 + (i % 97), i); burst.push(m); ws.send(m); }
  const total = burst.reduce((n, m) => n + m.length, 0);
  const joined = new Uint8Array(total);
  let at = 0;
  for (const m of burst) { joined.set(m, at); at += m.length; }
  if (!same(await read(total, "burst"), joined)) throw new Error("burst differs");
  log("  burst of 500 messages ok");
  // A text message round trip (comes back as binary bytes).
  const text = "héllo ✓ 😀";
  ws.send(text);
  const back = new TextDecoder().decode(await read(new TextEncoder().encode(text).length, "text"));
  if (back !== text) throw new Error("text came back as " + back);
  log("  text ok");
  ws.close(1000);
}

async function refusedToken(url) {
  // The relay answers 403 before upgrading: the browser sees an error and a close, never an open.
  const outcome = await new Promise((resolve) => {
    const ws = new WebSocket(url, ["binary", "bearer.not-a-valid-token"]);
    let opened = false;
    ws.onopen = () => { opened = true; };
    ws.onclose = (event) => resolve({ opened, code: event.code });
    setTimeout(() => resolve({ opened, code: "timeout" }), 10000);
  });
  if (outcome.opened) throw new Error("a refused token opened a session");
  log("  refused token: closed before open (" + outcome.code + ")");
  const good = await open(url, ["binary", "bearer." + params.get("token")]);
  if (good.protocol !== "binary") throw new Error("bearer token was echoed as subprotocol " + good.protocol);
  good.close(1000);
  log("  valid token in the subprotocol: opened");
}

async function main() {
  const host = location.host;
  const wssHost = params.get("wss");
  try {
    log("ws://");
    await echoChecks("ws://" + host + "/echo");
    if (wssHost) { log("wss://"); await echoChecks("wss://" + wssHost + "/echo"); }
    log("token");
    await refusedToken("ws://" + host + "/secure");
    document.title = "PASS";
    document.getElementById("result").textContent = "PASS";
  } catch (error) {
    document.title = "FAIL: " + error.message;
    document.getElementById("result").textContent = "FAIL: " + error.message;
  }
}
main();
