import FerryCore
import Crypto
import Foundation

/// The demo's web page: a chat client that reaches the TCP chat service through the relay with the
/// browser's own WebSocket API, and shows the path its bytes take. Served by the relay at `/`, so it is
/// same-origin with it; one self-contained response (inline style and script, no fonts or CDNs).
public enum DemoPage {
    /// The page, with a Content-Security-Policy that allows exactly its own inline style and script
    /// (by hash) and WebSockets to its own origin, and nothing else.
    public static func staticPage(chat: ListenAddress) -> StaticPage {
        StaticPage(
            contentType: "text/html; charset=utf-8",
            body: Self.html(chat: chat),
            headers: [
                "Content-Security-Policy": Self.contentSecurityPolicy,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            ]
        )
    }

    static let contentSecurityPolicy = [
        "default-src 'none'",
        "script-src '\(Self.sha256(DemoPageScript.js))'",
        "style-src '\(Self.sha256(DemoPageStyle.css))'",
        "connect-src 'self'",
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ].joined(separator: "; ")

    /// A CSP source expression for an inline block: the hash of exactly the text between its tags.
    static func sha256(_ text: String) -> String {
        "sha256-" + Data(SHA256.hash(data: Array(text.utf8))).base64EncodedString()
    }

    static func html(chat: ListenAddress) -> String {
        let dialed = "\(DemoTerminalCommands.dialHost(chat)):\(chat.port)"
        let commands = DemoTerminalCommands.commands(chat: chat).map { "<pre><code>\(Self.escape($0))</code></pre>" }
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="color-scheme" content="light dark">
            <title>Ferry demo chat</title>
            <link rel="icon" href="data:,">
            <style>\(DemoPageStyle.css)</style>
            </head>
            <body>
            <div class="wrap">
            <header class="top">
              <div>
                <h1>Ferry <span>demo chat</span></h1>
                <p class="lede">A plain TCP chat service, joined from this page over a WebSocket that Ferry relays, and from terminals directly.</p>
              </div>
              <p id="status" class="status" data-state="idle" aria-hidden="true">not connected</p>
              <p id="status-spoken" class="visually-hidden" role="status"></p>
            </header>

            <section class="path" aria-labelledby="path-title">
              <h2 id="path-title">The path your bytes take</h2>
              <ol>
                <li class="node here"><strong>This page</strong><small>your browser</small></li>
                <li class="edge" id="edge-ws"><span class="proto">WebSocket</span><span class="wire" aria-hidden="true"></span><span class="detail"><code id="ws-url"></code><br>
                  <span class="counts"><span>sent <b id="sent">0 B</b></span><span>received <b id="received">0 B</b></span></span></span></li>
                <li class="node"><strong>Ferry</strong><small>relay · <span id="relay-address"></span></small></li>
                <li class="edge" id="edge-tcp"><span class="proto">TCP</span><span class="wire" aria-hidden="true"></span><span class="detail">the same bytes, unframed</span></li>
                <li class="node"><strong>Chat service</strong><small>plain TCP · \(Self.escape(dialed))</small></li>
                <li class="edge"><span class="proto">TCP</span><span class="wire" aria-hidden="true"></span><span class="detail">no Ferry in between</span></li>
                <li class="node"><strong>Terminal</strong><small>nc, socat, python3</small></li>
              </ol>
            </section>

            <main class="room">
              <section class="panel chat" aria-label="Chat">
                <form id="join" class="join">
                  <label for="name">Your name</label>
                  <input id="name" name="name" maxlength="24" autocomplete="nickname" spellcheck="false" aria-describedby="name-problem">
                  <button>Join</button>
                  <p id="name-problem" class="problem" role="alert"></p>
                </form>
                <ol id="log" class="log" role="log" aria-live="polite" aria-label="Messages" tabindex="0"></ol>
                <form id="say">
                  <label for="text" class="visually-hidden">Message</label>
                  <input id="text" name="text" maxlength="1000" autocomplete="off" placeholder="Say something to the room">
                  <button id="send">Send</button>
                </form>
              </section>
              <aside class="side">
                <section class="panel" aria-labelledby="who-title">
                  <h2 id="who-title">In the room · <span id="count" class="count">0</span></h2>
                  <ul id="roster" class="roster"></ul>
                </section>
                <section class="panel" aria-labelledby="terminal-title">
                  <h2 id="terminal-title">Join from a terminal</h2>
                  <p>The chat service is plain TCP, a line per message: no WebSocket, no Ferry. Any of these works on the machine running <code>ferry demo</code>:</p>
                  \(commands.joined(separator: "\n      "))
                  <p class="small">Your first line is your name. <code>/who</code> lists who is here, <code>/quit</code> leaves.</p>
                </section>
              </aside>
            </main>
            </div>
            <script>\(DemoPageScript.js)</script>
            </body>
            </html>

            """
    }

    /// Text for HTML element content and attribute values.
    static func escape(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
