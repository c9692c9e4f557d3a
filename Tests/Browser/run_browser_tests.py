"""Real-browser tests: headless Chromium drives pages served by `ferry --web` through Ferry.

Usage: python3 run_browser_tests.py PATH/TO/ferry
Needs `chromium` (Debian package) and the Python `websockets` package. Prints PASS/FAIL per check and
exits non-zero on any failure. Everything listens on 127.0.0.1 and stops by itself.

1. The test page (Tests/Browser/page) opens ws:// and wss:// (self-signed, trusted for the test with
   --ignore-certificate-errors) to a TCP echo backend: 1 B ... 1 MiB messages, a burst of small
   ones, a text message; a refused token; a valid token in the bearer. subprotocol.
2. The demo: `ferry demo` with two headless pages and one raw TCP client exchanging lines.
The browser is driven over the DevTools protocol, so results are read after the async work is
done (Chromium's --dump-dom would return before it).
"""

import asyncio
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
        self.port = free_port()
        self.profile = tempfile.mkdtemp(prefix="ferry-chromium-")
        self.process = subprocess.Popen(
            ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--ignore-certificate-errors", f"--remote-debugging-port={self.port}",
             f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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

    async def evaluate(self, expression):
        self.next_id += 1
        await self.connection.send(json.dumps({"id": self.next_id, "method": "Runtime.evaluate",
                                               "params": {"expression": expression, "returnByValue": True}}))
        while True:
            message = json.loads(await asyncio.wait_for(self.connection.recv(), timeout=20))
            if message.get("id") == self.next_id:
                return message.get("result", {}).get("result", {}).get("value")

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


async def demo_test(ferry, browser):
    port, chat = free_port(), free_port()
    demo = start([ferry, "demo", "--listen", f"127.0.0.1:{port}", "--chat", f"127.0.0.1:{chat}"])
    try:
        wait_port(port)
        wait_port(chat)
        alice = await browser.open(f"http://127.0.0.1:{port}/")
        bob = await browser.open(f"http://127.0.0.1:{port}/")
        for page in (alice, bob):
            await page.wait_for("document.getElementById('status').textContent === 'connected'")
        reader, writer = await asyncio.open_connection("127.0.0.1", chat)

        async def say(page, name, text):
            await page.evaluate(f"document.getElementById('name').value = {json.dumps(name)};"
                                f"document.getElementById('text').value = {json.dumps(text)};"
                                "document.getElementById('form').requestSubmit(); true")

        await say(alice, "alice", "hello from a browser")
        writer.write(b"terminal: hello from nc\n")
        await writer.drain()
        await say(bob, "bob", "hi both")
        expected = ["alice: hello from a browser", "terminal: hello from nc", "bob: hi both"]
        for page, who in ((alice, "alice's page"), (bob, "bob's page")):
            for line in expected:
                await page.wait_for(f"document.getElementById('log').textContent.includes({json.dumps(line)})", timeout=15)
            print(f"  {who} saw all three lines")
        seen = b""
        deadline = time.time() + 15
        while not all(line.encode() in seen for line in expected) and time.time() < deadline:
            seen += await asyncio.wait_for(reader.read(4096), timeout=15)
        ok = all(line.encode() in seen for line in expected)
        print(f"  the TCP client saw {'all' if ok else 'not all'} three lines")
        writer.close()
        return ok, "demo chat"
    finally:
        demo.terminate()
        demo.wait(timeout=10)


async def main(ferry):
    browser = Browser()
    failures = 0
    try:
        for name, test in (("page", page_test), ("demo", demo_test)):
            try:
                ok, detail = await asyncio.wait_for(test(ferry, browser), timeout=120)
            except Exception as error:
                ok, detail = False, repr(error)
            print(("PASS" if ok else "FAIL"), name, "-", detail, flush=True)
            failures += 0 if ok else 1
    finally:
        browser.close()
    print(f"browser: {2 - failures} passed, {failures} failed")
    return failures


if __name__ == "__main__":
    sys.exit(1 if asyncio.run(main(sys.argv[1])) else 0)
