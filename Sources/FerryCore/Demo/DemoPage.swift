/// The demo's web page: a chat client that reaches the TCP chat service through the relay with the
/// browser's own WebSocket API. Served by the relay at `/`, so it is same-origin with it.
public enum DemoPage {
    public static let html = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Ferry demo chat</title>
    <style>
      body { font: 15px/1.4 system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; padding: 0 1rem; }
      #log { border: 1px solid #ccc; height: 22rem; overflow-y: auto; padding: .5rem; white-space: pre-wrap; font-family: ui-monospace, monospace; }
      form { display: flex; gap: .5rem; margin-top: .5rem; } #text { flex: 1; }
      #status { color: #666; }
    </style>
    </head>
    <body>
    <h1>Ferry demo chat</h1>
    <p>This page talks to a plain TCP chat service through Ferry. Join from a terminal too: <code>nc 127.0.0.1 8081</code>.
    Status: <span id="status">connecting…</span></p>
    <div id="log"></div>
    <form id="form"><input id="name" size="10" placeholder="name"><input id="text" placeholder="say something" autocomplete="off"><button>Send</button></form>
    <script>
    const log = document.getElementById("log"), status = document.getElementById("status");
    const name = document.getElementById("name"); name.value = "web" + Math.floor(Math.random() * 1000);
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/chat", ["binary"]);
    ws.binaryType = "arraybuffer";
    const decoder = new TextDecoder(), encoder = new TextEncoder();
    let pending = "";
    function show(line) { log.textContent += line + "\n"; log.scrollTop = log.scrollHeight; }
    ws.onopen = () => { status.textContent = "connected"; };
    ws.onclose = (e) => { status.textContent = "closed (" + e.code + (e.reason ? " " + e.reason : "") + ")"; };
    ws.onmessage = (e) => {
      pending += decoder.decode(e.data, { stream: true });
      let i;
      while ((i = pending.indexOf("\n")) >= 0) { show(pending.slice(0, i)); pending = pending.slice(i + 1); }
    };
    document.getElementById("form").onsubmit = (e) => {
      e.preventDefault();
      const text = document.getElementById("text");
      if (text.value && ws.readyState === WebSocket.OPEN) { ws.send(encoder.encode(name.value + ": " + text.value + "\n")); text.value = ""; }
    };
    </script>
    </body>
    </html>
    """#
}
