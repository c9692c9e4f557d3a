"""Interoperability check: drives a Ferry relay with the independent Python `websockets` client.

Usage: python3 websockets_client.py ws://127.0.0.1:PORT/path
The relay must route the path to a TCP echo backend. Prints PASS or FAIL lines and exits non-zero on
any failure, so a Swift test (InteropTests) can run it against a relay it started.
"""

import asyncio
import hashlib
import sys

import websockets
from websockets.exceptions import ConnectionClosed


async def read_exactly(ws, count):
    data = bytearray()
    while len(data) < count:
        message = await asyncio.wait_for(ws.recv(), timeout=10)
        if isinstance(message, str):
            raise AssertionError("relay sent a text message; it must send binary")
        data += message
    return bytes(data)


async def check_sizes(url):
    async with websockets.connect(url, subprotocols=["binary"], max_size=None) as ws:
        assert ws.subprotocol == "binary", f"subprotocol {ws.subprotocol!r}"
        for size in (0, 1, 125, 126, 65535, 65536, 1 << 20):
            payload = bytes((i * 31 + size) % 251 for i in range(size))
            await ws.send(payload)
            echoed = await read_exactly(ws, size)
            assert echoed == payload, f"echo mismatch at {size} bytes"
    return "sizes 0..1MiB echoed intact"


async def check_text_and_fragments(url):
    async with websockets.connect(url, max_size=None) as ws:
        assert ws.subprotocol is None
        text = "héllo wörld ✓ 😀"
        await ws.send(text)
        assert (await read_exactly(ws, len(text.encode()))) == text.encode()
        # A fragmented message: websockets sends an iterable as continuation frames.
        parts = [b"frag-one|", b"frag-two|", b"frag-three"]
        await ws.send(parts)
        joined = b"".join(parts)
        assert (await read_exactly(ws, len(joined))) == joined
        # A ping is answered with a pong (websockets waits for it).
        pong = await ws.ping(b"interop")
        await asyncio.wait_for(pong, timeout=5)
    return "text, fragments and ping answered"


async def check_stream(url):
    total = 16 << 20
    chunk = bytes(range(256)) * 256  # 64 KiB
    async with websockets.connect(url, max_size=None) as ws:
        sent = hashlib.sha256()
        received = hashlib.sha256()
        count = 0

        async def reader():
            nonlocal count
            while count < total:
                message = await asyncio.wait_for(ws.recv(), timeout=20)
                received.update(message)
                count += len(message)

        task = asyncio.create_task(reader())
        for offset in range(0, total, len(chunk)):
            block = chunk[offset % 256:] + chunk[:offset % 256]
            sent.update(block)
            await ws.send(block)
        await asyncio.wait_for(task, timeout=60)
        assert sent.digest() == received.digest(), "16 MiB stream corrupted"
    return "16 MiB stream intact"


async def check_close(url):
    ws = await websockets.connect(url)
    await ws.close(code=1000, reason="bye")
    assert ws.close_code == 1000, f"close code {ws.close_code}"
    return "close handshake completed with 1000"


async def check_refused(url):
    bad = url.rsplit("/", 1)[0] + "/no-such-route-for-interop"
    try:
        async with websockets.connect(bad, additional_headers={"Origin": "https://evil.example"}):
            raise AssertionError("a foreign Origin was accepted")
    except websockets.exceptions.InvalidStatus as error:
        assert error.response.status_code in (403, 404), error.response.status_code
    return "refusal answered with an HTTP status"


async def main(url):
    failures = 0
    for check in (check_sizes, check_text_and_fragments, check_stream, check_close, check_refused):
        try:
            print("PASS", check.__name__, "-", await check(url), flush=True)
        except (AssertionError, ConnectionClosed, OSError, asyncio.TimeoutError, Exception) as error:
            failures += 1
            print("FAIL", check.__name__, "-", repr(error), flush=True)
    return failures


if __name__ == "__main__":
    sys.exit(1 if asyncio.run(main(sys.argv[1])) else 0)
