"""Side by side: the real websockify and Ferry (run as `websockify`) with the same command lines.

Usage: python3 websockify_compare.py --ferry PATH/TO/websockify-link [--keep]

For each scenario it starts a recording TCP backend on 127.0.0.1 (it sends a greeting, echoes what it
reads and keeps every byte), runs websockify and then Ferry with the same argument list on a free
127.0.0.1 port, drives the same client sequence with the `websockets` library (binary messages
including all 256 byte values, a 1 MiB message and an empty message), and checks that both backends
received byte-identical streams and that the client received identical bytes from both. A text message
is sent on a session of its own.

Known differences, checked as such: websockify closes a session that sends a text message (1003) where
Ferry relays its UTF-8 bytes; Ferry refuses an unknown token with HTTP 403 where websockify closes the
connection; Ferry checks Origin, so the client sends none (as websockets does by default).

Prints one PASS or FAIL line per check and exits non-zero on any failure. Every wait is bounded, and
every process started here is killed on the way out.
"""

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import websockets
from jwcrypto import jwk, jwt

GREETING = b"RFB 003.008\n"
WAIT = 15  # seconds, for any one thing


class RecordingBackend:
    """A TCP server that greets, echoes, and records what each connection received."""

    def __init__(self):
        self.sessions = []  # one bytearray per connection
        self.ended = []  # one asyncio.Event per connection
        self.server = None
        self.port = None

    async def start(self):
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader, writer):
        received = bytearray()
        ended = asyncio.Event()
        self.sessions.append(received)
        self.ended.append(ended)
        try:
            writer.write(GREETING)
            await writer.drain()
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                received += data
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            ended.set()
            writer.close()

    async def stop(self):
        self.server.close()
        await self.server.wait_closed()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Relay:
    """A relay process (websockify or Ferry), in its own process group, logging to a file."""

    def __init__(self, name, command, log_path, ready_marker):
        self.name = name
        self.command = command
        self.log_path = log_path
        self.ready_marker = ready_marker
        self.process = None

    def start(self, cwd):
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            self.command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()

    def output(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    async def wait_ready(self):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if self.ready_marker in self.output():
                return
            if self.process.poll() is not None:
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"{self.name} did not start ({' '.join(self.command)}):\n{self.output()}")

    def kill(self):
        if self.process is None or self.process.poll() is not None:
            return
        # websockify forks a process per connection: signal the whole group.
        for sig, grace in ((signal.SIGINT, 3), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue


async def read_bytes(ws, count):
    data = bytearray()
    while len(data) < count:
        message = await asyncio.wait_for(ws.recv(), timeout=WAIT)
        if isinstance(message, str):
            raise AssertionError("the relay sent a text message; it must send binary")
        data += message
    return bytes(data)


def messages():
    """The client's binary sequence."""
    pattern = bytes((i * 7 + (i >> 8)) & 0xFF for i in range(1 << 20))
    return [b"hello", bytes(range(256)), pattern, b"", bytes(range(255, -1, -1)) * 3, b"bye"]


TEXT = "text message: h\u00e9llo \u2713"


async def drive(url):
    """Runs the binary sequence; returns (bytes received, subprotocol)."""
    received = bytearray()
    async with websockets.connect(url, subprotocols=["binary"], max_size=None, compression=None, open_timeout=WAIT, close_timeout=WAIT) as ws:
        subprotocol = ws.subprotocol
        received += await read_bytes(ws, len(GREETING))
        for payload in messages():
            await ws.send(payload)
            if payload:
                received += await read_bytes(ws, len(payload))
        await ws.close(code=1000)
    return bytes(received), subprotocol


async def drive_text(url):
    """Sends one text message on a new session: 'echo' if its bytes come back, else how it closed."""
    async with websockets.connect(url, subprotocols=["binary"], max_size=None, compression=None, open_timeout=WAIT, close_timeout=WAIT) as ws:
        await read_bytes(ws, len(GREETING))
        await ws.send(TEXT)
        try:
            echoed = await read_bytes(ws, len(TEXT.encode("utf-8")))
        except websockets.exceptions.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            return f"closed {code}"
        await ws.close(code=1000)
        return "echo" if echoed == TEXT.encode("utf-8") else f"wrong echo {echoed!r}"


def expected_stream():
    return b"".join(messages())


async def refused(url):
    """How a client that must be refused is refused: a short description, or None if it got in."""
    try:
        async with websockets.connect(url, subprotocols=["binary"], open_timeout=WAIT, close_timeout=2) as ws:
            try:
                await asyncio.wait_for(ws.recv(), timeout=2)
            except Exception as error:  # the relay closed right after the upgrade
                return f"upgraded, then closed ({type(error).__name__})"
            return None
    except Exception as error:
        status = getattr(getattr(error, "response", None), "status_code", None)
        return f"HTTP {status}" if status else type(error).__name__


class Comparison:
    def __init__(self, ferry_link, work):
        self.ferry_link = ferry_link
        self.work = work
        self.failures = 0

    def check(self, ok, what, detail=""):
        print(("PASS " if ok else "FAIL ") + what + ("" if ok else f": {detail}"), flush=True)
        if not ok:
            self.failures += 1

    def websockify_command(self, arguments):
        return [sys.executable, "-m", "websockify"] + arguments

    async def run_scenario(self, name, make, refused_path=None):
        """Runs websockify, then Ferry, with make(port, backend_port) -> (arguments, path); compares."""
        results = {}
        for relay_name in ("websockify", "ferry"):
            backend = RecordingBackend()
            await backend.start()
            port = free_port()
            arguments, path = make(port, backend.port)
            if relay_name == "websockify":
                relay = Relay("websockify", self.websockify_command(arguments), os.path.join(self.work, f"{name}-websockify.log"), "proxying from")
            else:
                relay = Relay("ferry", [self.ferry_link] + arguments, os.path.join(self.work, f"{name}-ferry.log"), "listening address=")
            try:
                relay.start(self.work)
                await relay.wait_ready()
                url = f"ws://127.0.0.1:{port}{path}"
                client_bytes, subprotocol = await asyncio.wait_for(drive(url), timeout=60)
                await asyncio.wait_for(backend.ended[0].wait(), timeout=WAIT)
                text = await asyncio.wait_for(drive_text(url), timeout=WAIT * 2)
                connections = len(backend.sessions)
                refusal = None
                if refused_path is not None:
                    refusal = await asyncio.wait_for(refused(f"ws://127.0.0.1:{port}{refused_path}"), timeout=WAIT * 2)
                    await asyncio.sleep(0.2)  # a wrongly connected backend would show up by now
                results[relay_name] = {
                    "client": client_bytes,
                    "backend": bytes(backend.sessions[0]),
                    "subprotocol": subprotocol,
                    "text": text,
                    "refusal": refusal,
                    "refused_connections": len(backend.sessions) - connections,
                }
            except Exception as error:
                self.check(False, f"{name}: {relay_name} session", f"{type(error).__name__}: {error}\n{relay.output()[-3000:]}")
            finally:
                relay.kill()
                await backend.stop()

        if len(results) != 2:
            return
        w, f = results["websockify"], results["ferry"]
        expected = expected_stream()
        self.check(w["backend"] == expected, f"{name}: websockify's backend received the client's bytes", f"{len(w['backend'])} bytes, expected {len(expected)}")
        self.check(f["backend"] == w["backend"], f"{name}: both backends received byte-identical streams ({len(w['backend'])} bytes)", f"ferry {len(f['backend'])} bytes, websockify {len(w['backend'])}")
        self.check(w["client"] == GREETING + expected, f"{name}: the client received the greeting and every echo from websockify", f"{len(w['client'])} bytes")
        self.check(f["client"] == w["client"], f"{name}: the client received identical bytes from both ({len(w['client'])} bytes)", f"ferry {len(f['client'])}, websockify {len(w['client'])}")
        self.check(f["subprotocol"] == w["subprotocol"] == "binary", f"{name}: both chose the 'binary' subprotocol", f"ferry {f['subprotocol']!r}, websockify {w['subprotocol']!r}")
        # Documented difference: websockify refuses text messages (close 1003); Ferry relays their
        # UTF-8 bytes like a binary message's.
        self.check(w["text"] == "closed 1003", f"{name}: websockify closes a text message with 1003", w["text"])
        self.check(f["text"] == "echo", f"{name}: Ferry relays a text message's bytes", f["text"])
        if refused_path is not None:
            # Documented difference: websockify closes the connection, Ferry answers 403. Both refuse,
            # and neither connects a backend for it.
            self.check(w["refusal"] is not None, f"{name}: websockify refuses an unknown token ({w['refusal']})", "it let the client in")
            self.check(f["refusal"] == "HTTP 403", f"{name}: Ferry refuses an unknown token with 403", f"{f['refusal']}")
            self.check(w["refused_connections"] == 0 and f["refused_connections"] == 0, f"{name}: no backend connection for the refused token", f"websockify {w['refused_connections']}, ferry {f['refused_connections']}")


def sign(key, algorithm, claims):
    token = jwt.JWT(header={"alg": algorithm}, claims=claims)
    token.make_signed_token(key)
    return token.serialize()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ferry", required=True, help="a 'websockify' symbolic link to the ferry executable")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    options = parser.parse_args()
    if os.path.basename(options.ferry) != "websockify":
        raise SystemExit("--ferry must be a link named 'websockify'")

    work = tempfile.mkdtemp(prefix="ferry-websockify-compare-")
    comparison = Comparison(os.path.abspath(options.ferry), work)
    try:
        # 1. The plain form.
        await comparison.run_scenario(
            "plain",
            lambda port, target: ([f"127.0.0.1:{port}", f"127.0.0.1:{target}"], "/websockify"),
        )

        # 2. TokenFile with a token folder (one file per instance, several tokens).
        token_dir = os.path.join(work, "tokens")
        os.mkdir(token_dir)

        def token_file_arguments(port, target):
            with open(os.path.join(token_dir, "instance-a"), "w") as f:
                f.write(f"# instance a\ntok-a: 127.0.0.1:{target}\n")
            with open(os.path.join(token_dir, "instance-b"), "w") as f:
                f.write(f"other: 127.0.0.1:9\ntok-b: 127.0.0.1:{target}\n")
            return ["--token-plugin", "TokenFile", "--token-source", token_dir, f"127.0.0.1:{port}"], "/websockify?token=tok-b"

        await comparison.run_scenario("token-folder", token_file_arguments, refused_path="/websockify?token=nope")

        # 3. JWTTokenApi with an RSA private key file (websockify's tests sign with RS256).
        rsa = jwk.JWK.generate(kty="RSA", size=2048)
        rsa_file = os.path.join(work, "private.pem")
        with open(rsa_file, "wb") as f:
            f.write(rsa.export_to_pem(private_key=True, password=None))
        signing = jwk.JWK()
        with open(rsa_file, "rb") as f:
            signing.import_from_pem(f.read())

        def jwt_rsa_arguments(port, target):
            token = sign(signing, "RS256", {"host": "127.0.0.1", "port": target})
            return ["--token-plugin", "JWTTokenApi", "--token-source", rsa_file, f"127.0.0.1:{port}"], f"/websockify?token={token}"

        await comparison.run_scenario("jwt-rsa-keyfile", jwt_rsa_arguments)

        # 4. JWTTokenApi with a symmetric key file (a JWK 'k', base64url), port as a string.
        secret = jwk.JWK.generate(kty="oct", size=384)
        secret_file = os.path.join(work, "symmetric.key")
        with open(secret_file, "w") as f:
            f.write(secret.export(as_dict=True)["k"])
        with open(secret_file) as f:
            from_file = jwk.JWK(kty="oct", k=f.read())

        def jwt_oct_arguments(port, target):
            token = sign(from_file, "HS256", {"host": "127.0.0.1", "port": str(target)})
            return ["--token-plugin", "JWTTokenApi", "--token-source", secret_file, f"127.0.0.1:{port}"], f"/websockify?token={token}"

        await comparison.run_scenario("jwt-symmetric-keyfile", jwt_oct_arguments)
    finally:
        if not options.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs kept in {work}")

    print(f"compare: {comparison.failures} failure(s)")
    return 1 if comparison.failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
