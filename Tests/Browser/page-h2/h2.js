// Opens N WebSockets at once to wss://<this host>/echo (the page came over HTTP/2, so the browser
// carries them as streams of the page's connection, RFC 8441), sends each a run of random binary
// messages from 1 byte to 1 MiB, checks every echoed byte, closes each with 1000 and sets the title
// to PASS or FAIL.
const count = Number(new URLSearchParams(location.search).get("n") || "6");
const sizes = [1, 125, 126, 65535, 65536, 200000, 1 << 20];
const log = (line) => { document.getElementById("log").textContent += line + "\n"; };

function randomBytes(length) {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i += 65536) crypto.getRandomValues(bytes.subarray(i, Math.min(length, i + 65536)));
  return bytes;
}

function session(index) {
  return new Promise((resolve) => {
    const socket = new WebSocket(`wss://${location.host}/echo`, ["binary"]);
    socket.binaryType = "arraybuffer";
    const sent = sizes.map(randomBytes);
    const total = sent.reduce((sum, part) => sum + part.length, 0);
    const expected = new Uint8Array(total);
    sent.reduce((offset, part) => { expected.set(part, offset); return offset + part.length; }, 0);
    const received = new Uint8Array(total);
    let got = 0;
    let intact = false;
    socket.onopen = () => sent.forEach((part) => socket.send(part));
    socket.onmessage = (event) => {
      const part = new Uint8Array(event.data);
      if (got + part.length > total) { got = total + 1; socket.close(4000, "too much"); return; }
      received.set(part, got);
      got += part.length;
      if (got === total) {
        intact = received.every((byte, i) => byte === expected[i]);
        socket.close(1000, "done");
      }
    };
    socket.onclose = (event) => resolve({ index, intact, bytes: got, code: event.code, clean: event.wasClean });
  });
}

Promise.all(Array.from({ length: count }, (_, i) => session(i))).then((results) => {
  for (const r of results) log(`socket ${r.index}: ${r.bytes} bytes echoed, intact=${r.intact}, close ${r.code} clean=${r.clean}`);
  const ok = results.every((r) => r.intact && r.code === 1000 && r.clean);
  document.title = ok ? "PASS" : "FAIL";
});
