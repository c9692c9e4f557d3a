"""Real-browser tests: headless Chromium drives pages served by `ferry --web` through Ferry.

Usage: python3 run_browser_tests.py PATH/TO/ferry
Needs `chromium` (Debian package) and the Python `websockets` package. Prints PASS/FAIL per check and
exits non-zero on any failure. Everything listens on 127.0.0.1 and stops by itself.

1. The test page (Tests/Browser/page) opens ws:// and wss:// (self-signed, trusted for the test with
   --ignore-certificate-errors) to a TCP echo backend: 1 B ... 1 MiB messages, a burst of small
   ones, a text message; a refused token; a valid token in the bearer. subprotocol.
2. The demo: `ferry demo` with two named headless pages and one named raw TCP client: everyone sees
   everyone's lines under the right names (the TCP client not its own), the roster lists all three,
   the byte counts move, a screenshot goes to .build/test-artifacts/demo.png, and after the demo
   process is killed and started again the pages show "reconnecting" and then rejoin by themselves.
3. The admin page (`GET /` on --admin-listen, with --admin-token): it asks for the token, then lists
   two live sessions and draws its charts; a screenshot goes to .build/test-artifacts/admin.png; its
   End button closes a session, which the client sees as close 1008.
4. HTTP/2 (RFC 8441): a page served over https:// opens six WebSockets to an echo backend (1 B ...
   1 MiB messages, every byte checked, each closed with 1000). DevTools reports the page as `h2` and
   each WebSocket handshake answered 200 (HTTP/2's answer; HTTP/1.1's is 101); Ferry's /metrics
   count one HTTP/2 connection carrying all six sessions.
The browser is driven over the DevTools protocol, so results are read after the async work is
done (Chromium's --dump-dom would return before it).
"""

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


async def echo_server():
    async def handle(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
    return await asyncio.start_server(handle, "127.0.0.1", 0)


class Browser:
    """Headless Chromium with a DevTools connection per page."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="ferry-chromium-")
        # Port 0, read back from DevToolsActivePort: a port picked here and bound by Chromium a second
        # later could meanwhile go to a test running beside this one (its echo backend answered the
        # DevTools request once, and counted a connection it did not expect).
        self.process = subprocess.Popen(
            ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--ignore-certificate-errors", "--remote-debugging-port=0",
             *([f"--log-net-log={os.environ['FERRY_NETLOG']}", "--net-log-capture-mode=Everything"] if os.environ.get("FERRY_NETLOG") else []),
             f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        active = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.time() + 30
        while True:
            try:
                with open(active) as f:
                    self.port = int(f.readline().strip())
                break
            except (OSError, ValueError):
                if time.time() > deadline or self.process.poll() is not None:
                    raise RuntimeError("Chromium did not open its DevTools port")
                time.sleep(0.1)
        wait_port(self.port)

    async def open(self, url):
        quoted = urllib.parse.quote(url, safe=":/")
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?{quoted}", method="PUT")
        target = json.loads(urllib.request.urlopen(request, timeout=10).read())
        return Page(await websockets.connect(target["webSocketDebuggerUrl"], max_size=None))

    def close(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Page:
    def __init__(self, connection):
        self.connection = connection
        self.next_id = 0
        # DevTools events that came while waiting for answers (Network.* once enabled).
        self.events = []

    async def call(self, method, params=None):
        """Sends one DevTools command and returns its result (events in between are skipped)."""
        self.next_id += 1
        await self.connection.send(json.dumps({"id": self.next_id, "method": method, "params": params or {}}))
        while True:
            message = json.loads(await asyncio.wait_for(self.connection.recv(), timeout=20))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message and len(self.events) < 10000:
                self.events.append(message)

    async def evaluate(self, expression):
        result = await self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return result.get("result", {}).get("value")

    async def screenshot(self, path, width, height):
        """Saves a PNG of the page as it looks at `width` x `height` CSS pixels."""
        await self.call("Emulation.setDeviceMetricsOverride",
                        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
        await self.call("Page.bringToFront")
        await asyncio.sleep(0.3)
        data = (await self.call("Page.captureScreenshot", {"format": "png"}))["data"]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    async def wait_for(self, expression, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.2)
        raise TimeoutError(f"timed out waiting for {expression}")


def start(command):
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=open(os.environ.get("FERRY_BROWSER_LOG", os.devnull), "a"))


async def page_test(ferry, browser):
    echo = await echo_server()
    echo_port = echo.sockets[0].getsockname()[1]
    folder = tempfile.mkdtemp(prefix="ferry-browser-")
    cert, key, tokens = (os.path.join(folder, n) for n in ("cert.pem", "key.pem", "tokens"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    with open(tokens, "w") as f:
        f.write(f"browser-token: 127.0.0.1:{echo_port}\n")
    port = free_port()
    relay = start([ferry, "--listen", f"127.0.0.1:{port}", "--web", os.path.join(HERE, "page"),
                   "--route", f"/echo=127.0.0.1:{echo_port}",
                   "--route", f"/secure=127.0.0.1:{echo_port},auth=token", "--token-file", tokens,
                   "--tls-cert", cert, "--tls-key", key])
    try:
        wait_port(port)
        page = await browser.open(f"http://127.0.0.1:{port}/?wss=127.0.0.1:{port}&token=browser-token")
        result = await page.wait_for("document.title.startsWith('PASS') || document.title.startsWith('FAIL') ? document.title : ''")
        log = await page.evaluate("document.getElementById('log').textContent")
        print(log.rstrip())
        return result == "PASS", result
    finally:
        relay.terminate()
        relay.wait(timeout=10)
        echo.close()


ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(HERE)), ".build", "test-artifacts")

# The demo page's log as [kind, name, text] rows, kind being mine, said or notice.
LOG_ROWS = """[...document.querySelectorAll('#log .msg')].map(li => [
  li.classList.contains('mine') ? 'mine' : li.classList.contains('notice') ? 'notice' : 'said',
  li.querySelector('.who') ? li.querySelector('.who').textContent : '',
  li.querySelector('.text').textContent])"""
ROSTER = "[...document.querySelectorAll('#roster li')].map(li => li.dataset.name)"
STATE = "document.getElementById('status').dataset.state"


class TCPUser:
    """A terminal user: a raw TCP connection to the chat service, keeping all it receives."""

    def __init__(self, reader, writer):
        self.reader, self.writer, self.received = reader, writer, b""
        self.task = asyncio.ensure_future(self.read())

    @classmethod
    async def join(cls, port, name):
        user = cls(*await asyncio.open_connection("127.0.0.1", port))
        await user.wait_for(b"What is your name?")
        await user.say(name)
        await user.wait_for(f"* You are {name}.".encode())
        return user

    async def read(self):
        while data := await self.reader.read(65536):
            self.received += data

    async def say(self, text):
        self.writer.write(text.encode() + b"\n")
        await self.writer.drain()

    async def wait_for(self, text, timeout=15):
        deadline = time.time() + timeout
        while text not in self.received:
            if time.time() > deadline:
                raise TimeoutError(f"the TCP client never got {text!r}; it got {self.received!r}")
            await asyncio.sleep(0.05)

    def close(self):
        self.task.cancel()
        self.writer.close()


async def join(page, name):
    await page.wait_for("document.getElementById('join') !== null")
    await page.evaluate(f"document.getElementById('name').value = {json.dumps(name)};"
                        "document.getElementById('join').requestSubmit(); true")


async def say(page, text):
    await page.evaluate(f"document.getElementById('text').value = {json.dumps(text)};"
                        "document.getElementById('say').requestSubmit(); true")


async def sees(page, kind, name, text, timeout=15):
    row = json.dumps([kind, name, text], separators=(",", ":"), ensure_ascii=False)  # as JSON.stringify writes it
    await page.wait_for(f"{LOG_ROWS}.some(r => JSON.stringify(r) === {json.dumps(row)})", timeout=timeout)


async def demo_test(ferry, browser):
    port, chat = free_port(), free_port()
    command = [ferry, "demo", "--listen", f"127.0.0.1:{port}", "--chat", f"127.0.0.1:{chat}"]
    demo = start(command)
    users = []
    try:
        wait_port(port)
        wait_port(chat)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            policy = response.headers.get("Content-Security-Policy", "")
        if "script-src 'sha256-" not in policy or "connect-src 'self'" not in policy:
            return False, f"unexpected Content-Security-Policy: {policy!r}"
        print(f"  the page is served with: Content-Security-Policy: {policy}")

        alice = await browser.open(f"http://127.0.0.1:{port}/")
        bob = await browser.open(f"http://127.0.0.1:{port}/")
        for page, name in ((alice, "alice"), (bob, "bob")):
            await join(page, name)
            await page.wait_for(f"{STATE} === 'connected'")
            status = await page.evaluate("document.getElementById('status').textContent")
            if status != f"connected as {name}":
                return False, f"{name}'s status reads {status!r}"
        # The inline style applied (a CSP refusal would leave the browser's 8px body margin).
        if await alice.evaluate("getComputedStyle(document.body).margin") != "0px":
            return False, "the page's inline style did not apply (Content-Security-Policy?)"
        terminal = await TCPUser.join(chat, "terminal")
        users.append(terminal)
        await alice.wait_for(f"JSON.stringify({ROSTER}) === '[\"alice\",\"bob\",\"terminal\"]'", timeout=15)
        await bob.wait_for(f"JSON.stringify({ROSTER}) === '[\"alice\",\"bob\",\"terminal\"]'", timeout=15)
        print("  both pages list alice, bob and terminal in the room")

        bytes_before = await alice.evaluate("[document.getElementById('sent').textContent, document.getElementById('received').textContent]")
        await say(alice, "hello from a browser")
        await terminal.wait_for(b"alice: hello from a browser\n")
        await terminal.say("hello from nc")
        await say(bob, "hi both ✓")
        await terminal.wait_for("bob: hi both ✓\n".encode())
        await sees(alice, "mine", "alice", "hello from a browser")
        await sees(alice, "said", "terminal", "hello from nc")
        await sees(alice, "said", "bob", "hi both ✓")
        await sees(bob, "said", "alice", "hello from a browser")
        await sees(bob, "said", "terminal", "hello from nc")
        await sees(bob, "mine", "bob", "hi both ✓")
        print("  each page saw the three lines under the right names (its own as its own)")
        for page, who in ((alice, "alice"), (bob, "bob")):
            rows = await page.evaluate(LOG_ROWS)
            mine = [r for r in rows if r[2] in ("hello from a browser", "hi both ✓") and r[1] == who]
            if len(mine) != 1 or mine[0][0] != "mine":
                return False, f"{who}'s page shows its own line {mine!r} (an echo?)"
        # An echo of its own line would have been written before bob's line, which has arrived.
        if b"terminal: hello from nc" in terminal.received:
            return False, "the TCP client got its own line back"
        print("  the TCP client got the others' lines and not its own")

        markup = '<img src=x onerror="document.title=1">'
        await terminal.say(markup)
        await sees(alice, "said", "terminal", markup)
        if await alice.evaluate("document.querySelectorAll('#log img').length") != 0:
            return False, "a line from the TCP client was inserted as HTML"
        print("  markup from the TCP client is shown as text")

        bytes_after = await alice.evaluate("[document.getElementById('sent').textContent, document.getElementById('received').textContent]")
        if bytes_after[0] == bytes_before[0] or bytes_after[1] == bytes_before[1]:
            return False, f"the byte counts did not move: {bytes_before} -> {bytes_after}"
        print(f"  alice's byte counts moved: sent {bytes_before[0]} -> {bytes_after[0]}, received {bytes_before[1]} -> {bytes_after[1]}")

        screenshot = os.path.join(ARTIFACTS, "demo.png")
        await alice.screenshot(screenshot, 1280, 860)
        await bob.screenshot(os.path.join(ARTIFACTS, "demo-narrow.png"), 390, 1400)
        await bob.call("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        await bob.screenshot(os.path.join(ARTIFACTS, "demo-dark.png"), 1280, 860)
        await bob.call("Emulation.setEmulatedMedia", {"features": []})
        print(f"  screenshot: {screenshot} (and demo-narrow.png at phone width, demo-dark.png in dark mode)")

        # The relay (and with it the chat service) dies and comes back: the pages must say so and
        # rejoin under the same names by themselves.
        demo.kill()
        demo.wait(timeout=10)
        terminal.close()
        for page in (alice, bob):
            await page.wait_for(f"{STATE} === 'reconnecting'", timeout=15)
        status = await alice.evaluate("document.getElementById('status').textContent")
        if not status.startswith("reconnecting in "):
            return False, f"alice's status reads {status!r} while the relay is down"
        print(f"  with the demo killed, the pages show: {status!r}")
        demo = start(command)
        wait_port(port)
        wait_port(chat)
        for page, name in ((alice, "alice"), (bob, "bob")):
            await page.wait_for(f"{STATE} === 'connected'", timeout=60)
            status = await page.evaluate("document.getElementById('status').textContent")
            if status != f"connected as {name}":
                return False, f"after the restart {name}'s status reads {status!r}"
        print("  after the restart both pages are connected again under their names")
        second = await TCPUser.join(chat, "terminal2")
        users.append(second)
        await say(alice, "back again")
        await second.wait_for(b"alice: back again\n")
        await sees(bob, "said", "alice", "back again")
        await second.say("welcome back")
        await sees(alice, "said", "terminal2", "welcome back")
        await alice.wait_for(f"JSON.stringify({ROSTER}) === '[\"alice\",\"bob\",\"terminal2\"]'", timeout=15)
        print("  and they chat again, with the terminal that joined after the restart")
        return True, "demo chat"
    finally:
        for user in users:
            user.close()
        demo.terminate()
        demo.wait(timeout=10)


async def admin_test(ferry, browser):
    echo = await echo_server()
    echo_port = echo.sockets[0].getsockname()[1]
    folder = tempfile.mkdtemp(prefix="ferry-admin-")
    token_file = os.path.join(folder, "admin-token")
    with open(token_file, "w") as f:
        f.write("browser-admin-secret\n")
    port, admin = free_port(), free_port()
    relay = start([ferry, "--listen", f"127.0.0.1:{port}", "--route", f"/echo=127.0.0.1:{echo_port}",
                   "--route", f"/other=127.0.0.1:{echo_port}",
                   "--admin-listen", f"127.0.0.1:{admin}", "--admin-token", token_file])
    clients = []
    try:
        wait_port(port)
        wait_port(admin)
        for path in ("/echo", "/other"):
            client = await websockets.connect(f"ws://127.0.0.1:{port}{path}", subprotocols=["binary"])
            await client.send(b"x" * 5000)
            await client.recv()
            clients.append(client)
        page = await browser.open(f"http://127.0.0.1:{admin}/")
        await page.wait_for("getComputedStyle(document.getElementById('login')).display === 'block'", timeout=15)
        print("  without the token the page asks for it")
        await page.evaluate("document.getElementById('token').value = 'browser-admin-secret';"
                            "document.getElementById('login').requestSubmit(); true")
        await page.wait_for("document.querySelectorAll('#sessions tr').length === 2", timeout=15)
        routes = await page.evaluate("[...document.querySelectorAll('#sessions tr')].map(r => r.children[2].textContent)")
        if sorted(routes) != ["/echo", "/other"]:
            return False, f"the page lists routes {routes}"
        print(f"  with it, the page lists the two sessions: {routes}")
        # Traffic while the page ticks (and during the screenshots), so the charts have something to draw.
        async def traffic(seconds):
            deadline = time.time() + seconds
            while time.time() < deadline:
                for client in clients:
                    await client.send(b"y" * 20000)
                await asyncio.sleep(0.2)
        traffic_task = asyncio.ensure_future(traffic(6))
        await asyncio.sleep(4)
        await page.wait_for("document.querySelectorAll('#chart-bytes polyline').length === 2 && "
                            "document.querySelectorAll('#chart-sessions polyline').length === 2", timeout=15)
        now = await page.evaluate("[document.getElementById('now-sessions').textContent, document.getElementById('legend-sessions').textContent]")
        if now[0] != "2":
            return False, f"the sessions figure reads {now}"
        print(f"  the charts are drawn: sessions now {now[0]}, legend {now[1]!r}")
        screenshot = os.path.join(ARTIFACTS, "admin.png")
        await page.screenshot(screenshot, 1280, 760)
        await page.call("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        await page.screenshot(os.path.join(ARTIFACTS, "admin-dark.png"), 1280, 760)
        await page.call("Emulation.setEmulatedMedia", {"features": []})
        print(f"  screenshot: {screenshot} (and admin-dark.png)")
        await traffic_task

        first_route = await page.evaluate("document.querySelector('#sessions tr').children[2].textContent")
        await page.evaluate("document.querySelector('#sessions tr button').click(); true")
        ended = clients[["/echo", "/other"].index(first_route)]
        code = reason = None
        deadline = time.time() + 10
        try:
            while time.time() < deadline:
                # Echoes still on their way may come first (the relay frames per backend read).
                await asyncio.wait_for(ended.recv(), timeout=max(0.1, deadline - time.time()))
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            reason = closed.rcvd.reason if closed.rcvd else None
        except asyncio.TimeoutError:
            return False, "the ended session was not closed within 10 s"
        if code != 1008 or reason != "closed by administrator":
            return False, f"the ended session closed with {code} {reason!r}"
        await page.wait_for("document.querySelectorAll('#sessions tr').length === 1", timeout=15)
        print(f"  End closed the {first_route} session with 1008 {reason!r}; the page lists one session")
        return True, "admin page"
    finally:
        for client in clients:
            await client.close()
        relay.terminate()
        relay.wait(timeout=10)
        echo.close()


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


async def http2_test(ferry, browser):
    echo = await echo_server()
    echo_port = echo.sockets[0].getsockname()[1]
    folder = tempfile.mkdtemp(prefix="ferry-browser-h2-")
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    port, admin = free_port(), free_port()
    relay = start([ferry, "--listen", f"127.0.0.1:{port}", "--web", os.path.join(HERE, "page-h2"),
                   "--route", f"/echo=127.0.0.1:{echo_port}", "--tls-cert", cert, "--tls-key", key, "--tls-only",
                   "--admin-listen", f"127.0.0.1:{admin}"])
    try:
        wait_port(port)
        wait_port(admin)
        page = await browser.open("about:blank")
        await page.call("Network.enable")
        await page.call("Page.navigate", {"url": f"https://127.0.0.1:{port}/?n=6"})
        result = await page.wait_for("document.title === 'PASS' || document.title === 'FAIL' ? document.title : ''")
        print((await page.evaluate("document.getElementById('log').textContent")).rstrip())
        await page.evaluate("1")  # collects the events that came meanwhile
        responses = [e["params"]["response"] for e in page.events if e["method"] == "Network.responseReceived"]
        for response in responses:
            print(f"  {response.get('url')} {response.get('protocol')} connection {response.get('connectionId')}")
        protocols = sorted({r.get("protocol", "?") for r in responses if r.get("url", "").startswith("https:")})
        handshakes = [e["params"]["response"].get("status") for e in page.events
                      if e["method"] == "Network.webSocketHandshakeResponseReceived"]
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=10) as response:
            metrics = response.read().decode()
        connections = metric(metrics, "ferry_http2_connections_total")
        sessions = metric(metrics, "ferry_http2_sessions_total")
        print(f"  DevTools: page protocol(s) {protocols}; WebSocket handshake statuses {handshakes}")
        print(f"  Ferry /metrics: ferry_http2_connections_total {connections}, ferry_http2_sessions_total {sessions}")
        ok = (result == "PASS" and protocols == ["h2"] and handshakes == [200] * 6
              and connections == 1 and sessions == 6)
        return ok, "six WebSockets as streams of one HTTP/2 connection" if ok else "not over one HTTP/2 connection"
    finally:
        relay.terminate()
        relay.wait(timeout=10)
        echo.close()


async def main(ferry):
    browser = Browser()
    failures = 0
    try:
        tests = (("page", page_test), ("demo", demo_test), ("admin", admin_test), ("http2", http2_test))
        # FERRY_BROWSER_ONLY=http2 runs one of them (when working on it).
        only = os.environ.get("FERRY_BROWSER_ONLY")
        tests = tuple(t for t in tests if not only or t[0] == only)
        for name, test in tests:
            try:
                ok, detail = await asyncio.wait_for(test(ferry, browser), timeout=120)
            except Exception as error:
                ok, detail = False, repr(error)
            print(("PASS" if ok else "FAIL"), name, "-", detail, flush=True)
            failures += 0 if ok else 1
    finally:
        browser.close()
    print(f"browser: {len(tests) - failures} passed, {failures} failed")
    return failures


if __name__ == "__main__":
    sys.exit(1 if asyncio.run(main(sys.argv[1])) else 0)
