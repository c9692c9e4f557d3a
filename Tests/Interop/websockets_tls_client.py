"""wss:// interoperability check: Python's own TLS stack (ssl) and the `websockets` client against Ferry.

Usage: python3 websockets_tls_client.py CA.pem wss://localhost:PORT/path [wss://127.0.0.1:PORT/path ...]
Each URL must be routed to a TCP echo backend. The client trusts only CA.pem and checks the server's
name (or IP address) against its certificate. Prints a PASS or FAIL line per URL and exits non-zero
on any failure, so a Swift test (TLSTests) can run it against a relay it started.
"""

import asyncio
import ssl
import sys

import websockets


async def read_exactly(ws, count):
    data = bytearray()
    while len(data) < count:
        message = await asyncio.wait_for(ws.recv(), timeout=5)
        if isinstance(message, str):
            message = message.encode()
        data += message
    return bytes(data)


async def check(url, context):
    async with websockets.connect(url, ssl=context, max_size=None, open_timeout=5) as ws:
        tls = ws.transport.get_extra_info("ssl_object")
        assert tls is not None, "no TLS on the connection"
        payload = bytes(range(256)) * 300
        await ws.send(payload)
        assert await read_exactly(ws, len(payload)) == payload, "binary echo differs"
        text = "wss héllo ✓"
        await ws.send(text)
        assert await read_exactly(ws, len(text.encode())) == text.encode(), "text echo differs"
        await ws.close(code=1000)
        assert ws.close_code == 1000, f"close code {ws.close_code}"
        return f"{tls.version()} {tls.cipher()[0]}, peer {dict(x[0] for x in tls.getpeercert()['subject'])}"


async def main(ca_path, urls):
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_path)
    failures = 0
    for url in urls:
        try:
            print("PASS", url, "-", await asyncio.wait_for(check(url, context), timeout=15), flush=True)
        except Exception as error:  # every failure is reported, whatever its kind
            failures += 1
            print("FAIL", url, "-", repr(error), flush=True)
    return failures


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print("usage: websockets_tls_client.py CA.pem URL [URL ...]", file=sys.stderr)
        sys.exit(2)
    sys.exit(1 if asyncio.run(main(sys.argv[1], sys.argv[2:])) else 0)
