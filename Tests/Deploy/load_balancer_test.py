"""Ferry behind a real HAProxy (and nginx), using the shipped configurations in deploy/.

Usage: python3 load_balancer_test.py PATH/TO/ferry
Needs haproxy and nginx (Debian packages) and Python's `websockets`. Everything runs on 127.0.0.1
with ports chosen here (the configs are copied with their ports rewritten) and stops by itself.

HAProxy: two Ferry replicas with PROXY-protocol listeners; sessions spread over both; each backend
receives the real client address in a PROXY v2 header from Ferry; SIGTERM to one replica turns its
/readyz 503, HAProxy stops sending it new sessions, its live session keeps flowing until the drain
timeout and then gets 1001, and no new connection fails during the whole sequence.
nginx: a WebSocket session through deploy/nginx/ferry.conf echoes.
"""

import asyncio
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

import websockets

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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


class Backend:
    """An echo server that reads Ferry's PROXY v2 header and records the client address it names."""

    def __init__(self):
        self.sources = []
        self.bytes = 0

    async def start(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def handle(self, reader, writer):
        try:
            header = await reader.readexactly(16)
            assert header[:12] == b"\r\n\r\n\x00\r\nQUIT\n", "no PROXY v2 header"
            body = await reader.readexactly(struct.unpack(">H", header[14:16])[0])
            if header[13] == 0x11:
                self.sources.append((socket.inet_ntoa(body[0:4]), struct.unpack(">H", body[8:10])[0]))
            while data := await reader.read(65536):
                self.bytes += len(data)
                writer.write(data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def ferry(binary, port, backend, log):
    return subprocess.Popen(
        [binary, "--listen", f"127.0.0.1:{port},proxy-protocol", "--trusted-proxy", "127.0.0.1",
         "--route", f"/=127.0.0.1:{backend},proxy-protocol=v2", "--drain-delay", "3s", "--drain-timeout", "4s"],
        stdout=subprocess.DEVNULL, stderr=open(log, "w"))


def readyz(port):
    """GET /readyz on a PROXY-protocol listener (a v1 header first, as HAProxy's checks send one)."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"PROXY TCP4 127.0.0.1 127.0.0.1 1 1\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        return int(s.recv(100).split(b" ")[1])


async def echo_once(url):
    async with websockets.connect(url, open_timeout=5) as ws:
        local = ws.transport.get_extra_info("sockname")
        await ws.send(b"ping")
        assert await asyncio.wait_for(ws.recv(), 5) == b"ping"
        return local


async def haproxy_test(binary, folder):
    backends = [await Backend().start(), await Backend().start()]
    ports = [free_port(), free_port()]
    logs = [os.path.join(folder, f"ferry{i}.log") for i in (1, 2)]
    replicas = [ferry(binary, ports[i], backends[i].port, logs[i]) for i in (0, 1)]
    front = free_port()
    config = open(os.path.join(ROOT, "deploy/haproxy/haproxy.cfg")).read()
    config = config.replace("bind 0.0.0.0:6080", f"bind 127.0.0.1:{front}")
    config = config.replace("127.0.0.1:7001", f"127.0.0.1:{ports[0]}").replace("127.0.0.1:7002", f"127.0.0.1:{ports[1]}")
    config_path = os.path.join(folder, "haproxy.cfg")
    open(config_path, "w").write(config)
    url = f"ws://127.0.0.1:{front}/"
    haproxy = None
    try:
        # Inside the try: if haproxy cannot start, the replicas still stop.
        haproxy = subprocess.Popen(["haproxy", "-db", "-f", config_path], stdout=subprocess.DEVNULL, stderr=open(os.path.join(folder, "haproxy.log"), "w"))
        for port in ports + [front]:
            wait_port(port)
        await asyncio.sleep(2.5)  # both replicas pass their first health checks
        # Sessions spread over both replicas; each backend learns the client's real address.
        locals_ = [await echo_once(url) for _ in range(10)]
        spread = [len(b.sources) for b in backends]
        print(f"  10 sessions through HAProxy: {spread[0]} on replica 1, {spread[1]} on replica 2")
        assert all(count > 0 for count in spread), "sessions were not spread over both replicas"
        seen = set(sum((b.sources for b in backends), []))
        assert all((host, port) in seen for host, port in locals_), "a backend did not get the client's address via PROXY v2"
        print("  every backend connection carried the client's own address and port (PROXY v2 from Ferry)")

        # A long session on replica 1, then SIGTERM it while new connections keep coming.
        long = None
        for _ in range(20):
            ws = await websockets.connect(url)
            await ws.send(b"which")
            await ws.recv()
            if backends[0].sources and backends[0].sources[-1][1] == ws.transport.get_extra_info("sockname")[1]:
                long = ws
                break
            await ws.close()
        assert long is not None, "could not place a session on replica 1"
        failures, opened, long_echoes, close_code = 0, 0, 0, None
        replicas[0].send_signal(signal.SIGTERM)
        start = time.time()
        saw_503 = False
        while time.time() - start < 9:
            if not saw_503:
                try:
                    saw_503 = readyz(ports[0]) == 503
                except OSError:
                    pass
            try:
                await echo_once(url)
                opened += 1
            except Exception as error:
                failures += 1
                print("  new connection failed:", repr(error))
            if close_code is None:
                try:
                    await long.send(b"still here")
                    await asyncio.wait_for(long.recv(), 2)
                    long_echoes += 1
                except websockets.exceptions.ConnectionClosed as closed:
                    close_code = closed.rcvd.code if closed.rcvd else None
                    closed_after = time.time() - start
            await asyncio.sleep(0.1)
        exit_code = replicas[0].wait(timeout=15)
        print(f"  after SIGTERM: /readyz 503 seen: {saw_503}; {opened} new sessions opened, {failures} failed")
        print(f"  the live session on the draining replica echoed {long_echoes} times, then got close {close_code}"
              + (f" after {closed_after:.1f} s" if close_code else ""))
        print(f"  the drained replica exited with {exit_code}; backends relayed {backends[0].bytes + backends[1].bytes} bytes")
        assert saw_503, "/readyz did not turn 503 on SIGTERM"
        assert failures == 0, f"{failures} new connections failed during the drain"
        assert long_echoes > 10, "the live session did not keep flowing during the drain"
        assert close_code == 1001, f"the live session got {close_code}, not 1001"
        assert exit_code == 0, f"the drained replica exited with {exit_code}"
        return True, f"{opened} sessions during the drain, 0 failed, live session closed with 1001"
    finally:
        if haproxy is not None:
            haproxy.terminate()
        for replica in replicas:
            if replica.poll() is None:
                replica.kill()
        for backend in backends:
            backend.server.close()


async def nginx_test(binary, folder):
    backend = await Backend().start()
    ports = [free_port(), free_port()]
    replicas = [subprocess.Popen([binary, "--listen", f"127.0.0.1:{p}", "--trusted-proxy", "127.0.0.1",
                                  "--route", f"/=127.0.0.1:{backend.port},proxy-protocol=v2"],
                                 stdout=subprocess.DEVNULL, stderr=open(os.path.join(folder, f"nginx-ferry{i}.log"), "w"))
                for i, p in enumerate(ports)]
    front = free_port()
    site = open(os.path.join(ROOT, "deploy/nginx/ferry.conf")).read()
    site = site.replace("listen 8080;", f"listen 127.0.0.1:{front};")
    site = site.replace("127.0.0.1:7001", f"127.0.0.1:{ports[0]}").replace("127.0.0.1:7002", f"127.0.0.1:{ports[1]}")
    conf = os.path.join(folder, "nginx.conf")
    open(conf, "w").write(f"daemon off;\npid {folder}/nginx.pid;\nerror_log {folder}/nginx-error.log;\n"
                          f"events {{}}\nhttp {{\naccess_log off;\nclient_body_temp_path {folder};\nproxy_temp_path {folder};\n{site}\n}}\n")
    nginx = None
    try:
        # Inside the try: if nginx cannot start, the replicas still stop.
        nginx = subprocess.Popen(["nginx", "-c", conf, "-p", folder], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for port in ports + [front]:
            wait_port(port)
        for _ in range(4):
            await echo_once(f"ws://127.0.0.1:{front}/")
        return len(backend.sources) == 4, "4 sessions echoed through nginx"
    finally:
        if nginx is not None:
            nginx.terminate()
        for replica in replicas:
            replica.terminate()
        backend.server.close()


async def main(binary):
    folder = tempfile.mkdtemp(prefix="ferry-lb-")
    failures = 0
    for name, test in (("haproxy", haproxy_test), ("nginx", nginx_test)):
        try:
            ok, detail = await asyncio.wait_for(test(binary, folder), timeout=90)
        except Exception as error:
            ok, detail = False, repr(error)
        print(("PASS" if ok else "FAIL"), name, "-", detail, flush=True)
        failures += 0 if ok else 1
    print(f"load balancers: {2 - failures} passed, {failures} failed")
    return failures


if __name__ == "__main__":
    sys.exit(1 if asyncio.run(main(sys.argv[1])) else 0)
