"""An independent HTTP/2 client (Python's `h2`, from PyPI) that drives Ferry's RFC 8441 WebSockets.

Usage: h2_websocket_client.py MODE PORT [ARGS...] (H2_CLIENT_CERT and H2_CLIENT_KEY: a client
certificate for mutual TLS). Every mode prints `RESULT key=value ...` lines
the Swift tests read, and `FAIL ...` on anything wrong; every loop is bounded and stops by itself.

  streams PORT N          N WebSockets at once on one connection to /echo: random messages, every byte
                          checked, then a clean close on each.
  bulk PORT MIB           MIB mebibytes echoed on one stream (far past its window).
  stall PORT              a stream to /sink (a backend that never reads) filled until its window stays
                          shut, while a stream to /echo keeps echoing.
  reset PORT              a session reset (RST_STREAM) by the client; a new stream works after it.
  rapid-reset PORT        streams opened and reset at once, until the server says GOAWAY (CVE-2023-44487).
  continuation PORT       one HEADERS frame and endless CONTINUATION frames (2024 CONTINUATION floods).
  ping-flood PORT         PING frames without end.
  settings-flood PORT     SETTINGS frames without end.
  hpack-bomb PORT         a 4 KiB header sent once and then referenced by index, decoded size far past
                          the server's SETTINGS_MAX_HEADER_LIST_SIZE.
  zero-window PORT S      a client that never reads (1 KiB window, never acknowledged) on /flood for S s.
  get PORT PATH           a GET (a page, /healthz): its status.
  open PORT N PATH [PROTOCOLS [HOLD]]
                          N streams opened (Sec-WebSocket-Protocol PROTOCOLS, default binary); prints each one's status or reset, then holds them
                          (up to HOLD s, default 20) and reports any GOAWAY and close frames (for drain).
"""

import os
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings


def out(line):
    print(line, flush=True)


def connect(port, window=1 << 20):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2", "http/1.1"])
    # A client certificate for mutual TLS, when the test gives one.
    if os.environ.get("H2_CLIENT_CERT"):
        context.load_cert_chain(os.environ["H2_CLIENT_CERT"], os.environ["H2_CLIENT_KEY"])
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock = context.wrap_socket(raw, server_hostname="localhost")
    if sock.selected_alpn_protocol() != "h2":
        out("FAIL alpn=%s" % sock.selected_alpn_protocol())
        sys.exit(1)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
    sock.sendall(conn.data_to_send())
    client = Client(sock, conn, port)
    # RFC 8441 §3: extended CONNECT only after the server's SETTINGS_ENABLE_CONNECT_PROTOCOL.
    client.pump_until(lambda: client.settings_seen, 10)
    enabled = conn.remote_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL, 0)
    out("RESULT enable_connect_protocol=%d max_concurrent_streams=%s max_header_list_size=%s"
        % (enabled, conn.remote_settings.max_concurrent_streams, conn.remote_settings.max_header_list_size))
    return client


def ws_frame(opcode, payload):
    """A masked client frame (RFC 6455 §5.3: a client masks every frame, over HTTP/2 too)."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    key = (mask * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big") if n else b""
    return head + mask + masked


def parse_frames(buffer):
    """Complete server frames at the front of `buffer`: [(opcode, payload)], rest."""
    frames = []
    while len(buffer) >= 2:
        opcode = buffer[0] & 0x0F
        if buffer[1] & 0x80:
            raise ValueError("server frame is masked")
        n = buffer[1] & 0x7F
        offset = 2
        if n == 126:
            if len(buffer) < 4:
                break
            n = int.from_bytes(buffer[2:4], "big")
            offset = 4
        elif n == 127:
            if len(buffer) < 10:
                break
            n = int.from_bytes(buffer[2:10], "big")
            offset = 10
        if len(buffer) < offset + n:
            break
        frames.append((opcode, bytes(buffer[offset:offset + n])))
        buffer = buffer[offset + n:]
    return frames, buffer


class Stream:
    def __init__(self, stream_id):
        self.id = stream_id
        self.status = None
        self.reset = None
        self.ended = False
        self.bytes = b""
        self.frames = []
        self.websocket = True
        self.body_length = 0


class Client:
    def __init__(self, sock, conn, port):
        self.sock = sock
        self.conn = conn
        self.port = port
        self.streams = {}
        self.settings_seen = False
        self.goaway = None
        self.closed = False
        # False: received data is never acknowledged, so the server's windows stay shut.
        self.acknowledges = True
        self.origin = os.environ.get("H2_ORIGIN", "https://localhost:%d" % port)

    def open(self, path, subprotocol=None):
        stream_id = self.conn.get_next_available_stream_id()
        headers = [
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "https"),
            (":path", path),
            (":authority", "localhost:%d" % self.port),
            ("sec-websocket-version", "13"),
            ("origin", self.origin),
        ]
        if subprotocol:
            headers.append(("sec-websocket-protocol", subprotocol))
        self.conn.send_headers(stream_id, headers)
        self.flush()
        self.streams[stream_id] = Stream(stream_id)
        return self.streams[stream_id]

    def flush(self):
        if self.closed:
            return
        data = self.conn.data_to_send()
        if data and not self.closed:
            try:
                self.sock.sendall(data)
            except OSError:
                self.closed = True

    def pump(self, timeout):
        """Reads once (up to `timeout`); handles every event. False once the connection is gone."""
        if self.closed:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            return True
        except (OSError, ssl.SSLError):
            self.closed = True
            return False
        if not data:
            self.closed = True
            return False
        try:
            events = self.conn.receive_data(data)
        except Exception as error:
            # After the server's GOAWAY the client's state machine refuses what was in flight: expected.
            if self.goaway is None:
                out("FAIL h2 error %r" % (error,))
            self.closed = True
            return False
        for event in events:
            self.handle(event)
        self.flush()
        return True

    def handle(self, event):
        if isinstance(event, h2.events.RemoteSettingsChanged):
            self.settings_seen = True
        elif isinstance(event, h2.events.ResponseReceived):
            headers = dict(event.headers)
            self.streams[event.stream_id].status = int(headers[":status"])
        elif isinstance(event, h2.events.DataReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None and not stream.websocket:
                stream.body_length += len(event.data)
            elif stream is not None:
                stream.bytes += event.data
                frames, stream.bytes = parse_frames(stream.bytes)
                stream.frames.extend(frames)
            if self.acknowledges:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            if event.stream_id in self.streams:
                self.streams[event.stream_id].ended = True
        elif isinstance(event, h2.events.StreamReset):
            if event.stream_id in self.streams:
                self.streams[event.stream_id].reset = int(event.error_code)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = (int(event.error_code), event.last_stream_id)
            if int(event.error_code) == 0:
                # A graceful GOAWAY (RFC 9113 §6.8): streams up to last_stream_id go on. The h2
                # library closes its whole state machine on any GOAWAY; it is reopened so the
                # open streams' last frames (close frames, END_STREAM) can still be read.
                self.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN

    def pump_until(self, condition, seconds):
        deadline = time.monotonic() + seconds
        while not condition() and time.monotonic() < deadline:
            if not self.pump(min(0.2, max(0.01, deadline - time.monotonic()))):
                break
        return condition()

    def send(self, stream, data, end=False):
        """Sends all of `data` on `stream`, waiting for window as needed (at most 20 s)."""
        deadline = time.monotonic() + 20
        while data:
            window = min(self.conn.local_flow_control_window(stream.id), self.conn.max_outbound_frame_size)
            if window <= 0:
                if time.monotonic() > deadline or not self.pump(0.2):
                    return False
                continue
            self.conn.send_data(stream.id, data[:window])
            data = data[window:]
            self.flush()
        if end:
            self.conn.end_stream(stream.id)
            self.flush()
        return True


def mode_streams(port, count):
    client = connect(port)
    streams = [client.open("/echo", "binary") for _ in range(count)]
    client.pump_until(lambda: all(s.status is not None or s.reset is not None for s in streams), 10)
    statuses = sorted(set(str(s.status) for s in streams))
    out("RESULT statuses=%s" % ",".join(statuses))
    if any(s.status != 200 for s in streams):
        out("FAIL not every stream got 200")
        return
    sent = {s.id: b"" for s in streams}
    for round_number in range(10):
        for stream in streams:
            payload = os.urandom(1 + (round_number * 7919 + stream.id * 104729) % 40000)
            sent[stream.id] += payload
            client.send(stream, ws_frame(0x2, payload))
    received = lambda s: b"".join(p for (o, p) in s.frames if o == 0x2)
    client.pump_until(lambda: all(len(received(s)) >= len(sent[s.id]) for s in streams), 20)
    good = sum(1 for s in streams if received(s) == sent[s.id])
    total = sum(len(v) for v in sent.values())
    out("RESULT streams=%d intact=%d bytes=%d" % (len(streams), good, total))
    for stream in streams:
        client.send(stream, ws_frame(0x8, (1000).to_bytes(2, "big") + b"done"))
    client.pump_until(lambda: all(any(o == 0x8 for (o, _) in s.frames) for s in streams), 10)
    codes = sorted(set(int.from_bytes(p[:2], "big") for s in streams for (o, p) in s.frames if o == 0x8))
    out("RESULT close_codes=%s" % ",".join(map(str, codes)))
    client.pump_until(lambda: all(s.ended or s.reset is not None for s in streams), 5)
    out("RESULT ended=%d" % sum(1 for s in streams if s.ended))
    if good == len(streams):
        out("PASS streams")


def mode_bulk(port, megabytes):
    """One stream echoes `megabytes` MiB in 60 KB messages: well past its flow-control window, so
    Ferry must return window as the data is relayed."""
    client = connect(port)
    stream = client.open("/echo")
    client.pump_until(lambda: stream.status is not None, 10)
    payload = os.urandom(60000)
    total = megabytes << 20
    sent = 0
    started = time.monotonic()
    frame = ws_frame(0x2, payload)
    while sent < total:
        if not client.send(stream, frame):
            out("FAIL window never reopened after %d bytes" % sent)
            return
        sent += len(payload)
        client.pump(0.001)
    received = lambda: sum(len(p) for (o, p) in stream.frames if o == 0x2)
    client.pump_until(lambda: received() >= sent, 30)
    # Ferry frames what the backend sends as it reads it: compare the bytes, not the frames.
    echoed = b"".join(p for (o, p) in stream.frames if o == 0x2)
    intact = echoed == payload * (sent // len(payload))
    seconds = time.monotonic() - started
    out("RESULT sent=%d received=%d intact=%d seconds=%.2f" % (sent, received(), 1 if intact else 0, seconds))
    if received() == sent and intact:
        out("PASS bulk")


def mode_stall(port):
    client = connect(port)
    stalled = client.open("/sink")
    flowing = client.open("/echo")
    client.pump_until(lambda: stalled.status is not None and flowing.status is not None, 10)
    out("RESULT statuses=%s,%s" % (stalled.status, flowing.status))
    chunk = ws_frame(0x2, os.urandom(60000))
    pending = b""
    pushed = 0
    shut_since = None
    deadline = time.monotonic() + 30
    # Fill the stalled stream with whole frames until its window stays shut for a second (at most
    # 256 MiB, 30 s).
    while pushed < (256 << 20) and time.monotonic() < deadline:
        window = min(client.conn.local_flow_control_window(stalled.id), client.conn.max_outbound_frame_size)
        if window <= 0:
            shut_since = shut_since or time.monotonic()
            if time.monotonic() - shut_since > 1.0:
                break
            client.pump(0.1)
            continue
        shut_since = None
        if not pending:
            pending = chunk
        part, pending = pending[:window], pending[window:]
        client.conn.send_data(stalled.id, part)
        pushed += len(part)
        client.flush()
        client.pump(0.001)
    if stalled.reset is not None or any(o == 0x8 for (o, _) in stalled.frames):
        out("FAIL the stalled stream was closed: reset=%s frames=%r" % (stalled.reset, stalled.frames[:2]))
        return
    out("RESULT stalled_bytes=%d window_shut=%d" % (pushed, 1 if shut_since else 0))
    # The other stream of the same connection still echoes, at once.
    times = []
    for i in range(50):
        payload = os.urandom(100)
        started = time.monotonic()
        before = len(flowing.frames)
        client.send(flowing, ws_frame(0x2, payload))
        if not client.pump_until(lambda: len(flowing.frames) > before, 5):
            out("FAIL echo %d did not come back" % i)
            return
        if flowing.frames[-1][1] != payload:
            out("FAIL echo %d differs" % i)
            return
        times.append(time.monotonic() - started)
    times.sort()
    out("RESULT echoes=%d p50_ms=%.2f max_ms=%.2f" % (len(times), times[len(times) // 2] * 1000, times[-1] * 1000))
    out("PASS stall")


def mode_reset(port):
    client = connect(port)
    first = client.open("/echo")
    client.pump_until(lambda: first.status is not None, 10)
    client.send(first, ws_frame(0x2, b"one"))
    client.pump_until(lambda: len(first.frames) > 0, 5)
    client.conn.reset_stream(first.id, error_code=8)  # CANCEL
    client.flush()
    second = client.open("/echo")
    client.pump_until(lambda: second.status is not None, 10)
    client.send(second, ws_frame(0x2, b"two"))
    client.pump_until(lambda: len(second.frames) > 0, 5)
    ok = first.frames[:1] == [(2, b"one")] and second.frames[:1] == [(2, b"two")]
    out("RESULT first=%s second=%s" % (first.status, second.status))
    if ok:
        out("PASS reset")
    # Held open a moment so the test can count sessions.
    client.pump_until(lambda: False, 1.0)


def mode_rapid_reset(port):
    client = connect(port)
    resets = 0
    while resets < 5000 and not client.closed and client.goaway is None:
        try:
            stream = client.open("/echo")
            client.conn.reset_stream(stream.id, error_code=8)
        except h2.exceptions.ProtocolError:
            break
        client.flush()
        resets += 1
        if resets % 50 == 0:
            client.pump(0.01)
    client.pump_until(lambda: client.closed, 5)
    out("RESULT resets=%d goaway=%s closed=%d" % (resets, client.goaway[0] if client.goaway else "none", 1 if client.closed else 0))


def raw_frame(kind, flags, stream_id, payload):
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream_id.to_bytes(4, "big") + payload


def mode_continuation(port):
    client = connect(port)
    # HEADERS (no END_HEADERS) with one literal header, then CONTINUATION frames of more literal headers.
    literal = b"\x00\x05x-pad\x10" + b"p" * 16  # literal without indexing, name "x-pad", 16-byte value
    client.sock.sendall(raw_frame(0x1, 0x0, 1, literal))
    sent = 0
    while sent < 10000:
        try:
            client.sock.sendall(raw_frame(0x9, 0x0, 1, literal * 4))
        except OSError:
            break
        sent += 1
        if sent % 10 == 0 and not client.pump(0.01):
            break
    client.pump_until(lambda: client.closed, 5)
    out("RESULT continuation_frames=%d goaway=%s closed=%d" % (sent, client.goaway[0] if client.goaway else "none", 1 if client.closed else 0))


def mode_flood(port, kind):
    client = connect(port)
    sent = 0
    while sent < 100000 and not client.closed:
        try:
            for _ in range(100):
                if kind == "ping":
                    client.conn.ping(sent.to_bytes(8, "big"))
                else:
                    client.conn.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: 4096})
                sent += 1
        except h2.exceptions.ProtocolError:
            break  # the server's GOAWAY came in: the client may send no more
        client.flush()
        client.pump(0.001)
    client.pump_until(lambda: client.closed, 5)
    out("RESULT frames=%d goaway=%s closed=%d" % (sent, client.goaway[0] if client.goaway else "none", 1 if client.closed else 0))


def mode_hpack_bomb(port):
    client = connect(port)
    stream_id = client.conn.get_next_available_stream_id()
    headers = [(":method", "GET"), (":scheme", "https"), (":path", "/healthz"), (":authority", "localhost")]
    headers += [("x-bomb", "b" * 4000)] * 200  # sent once, then 199 one-byte references: 800 KB decoded
    client.conn.send_headers(stream_id, headers, end_stream=True)
    wire = client.conn.data_to_send()
    client.sock.sendall(wire)
    stream = Stream(stream_id)
    client.streams[stream_id] = stream
    client.pump_until(lambda: stream.status is not None or stream.reset is not None or client.closed, 10)
    out("RESULT wire_bytes=%d status=%s reset=%s goaway=%s" % (len(wire), stream.status, stream.reset, client.goaway[0] if client.goaway else "none"))
    # The server still answers on a new connection.
    other = connect(port)
    sid = other.conn.get_next_available_stream_id()
    other.conn.send_headers(sid, [(":method", "GET"), (":scheme", "https"), (":path", "/healthz"), (":authority", "localhost")], end_stream=True)
    other.flush()
    other.streams[sid] = Stream(sid)
    other.pump_until(lambda: other.streams[sid].status is not None, 10)
    out("RESULT after=%s" % other.streams[sid].status)


def mode_zero_window(port, seconds):
    """A client that never reads: its stream window is 1 KiB and received data is never acknowledged,
    while the backend behind /flood writes without end. Holds for `seconds`, reading the socket."""
    client = connect(port, window=1024)
    client.acknowledges = False
    stream = client.open("/flood")
    client.pump_until(lambda: stream.status is not None, 10)
    out("RESULT status=%s" % stream.status)
    out("OPEN")
    client.pump_until(lambda: client.closed, float(seconds))
    received = sum(len(p) for (o, p) in stream.frames) + len(stream.bytes)
    out("RESULT received=%d closed=%d" % (received, 1 if client.closed else 0))


def mode_get(port, path):
    """A plain GET on the same connection kind a browser uses for the page."""
    client = connect(port)
    stream_id = client.conn.get_next_available_stream_id()
    client.conn.send_headers(stream_id, [(":method", "GET"), (":scheme", "https"), (":path", path), (":authority", "localhost:%d" % port)], end_stream=True)
    client.flush()
    stream = Stream(stream_id)
    stream.websocket = False
    client.streams[stream_id] = stream
    client.pump_until(lambda: stream.ended or stream.reset is not None, 10)
    out("RESULT status=%s ended=%d body_length=%d" % (stream.status, 1 if stream.ended else 0, stream.body_length))


def mode_open(port, count, path, subprotocol="binary", hold="20"):
    client = connect(port)
    # Past SETTINGS_MAX_CONCURRENT_STREAMS the h2 library refuses to open a stream itself; here it
    # is made to try, so that the server's own refusal is what is tested.
    h2.connection.H2Connection.open_outbound_streams = property(lambda self: 0)
    streams = [client.open(path, subprotocol) for _ in range(count)]
    client.pump_until(lambda: all(s.status is not None or s.reset is not None for s in streams), 10)
    for stream in streams:
        out("RESULT stream=%d status=%s reset=%s" % (stream.id, stream.status, stream.reset))
    out("OPEN")
    client.pump_until(lambda: client.closed or all(s.ended or s.reset is not None or s.status != 200 for s in streams), float(hold))
    codes = [int.from_bytes(p[:2], "big") for s in streams for (o, p) in s.frames if o == 0x8]
    out("RESULT goaway=%s last_stream=%s close_codes=%s"
        % (client.goaway[0] if client.goaway else "none", client.goaway[1] if client.goaway else "none", ",".join(map(str, codes)) or "none"))


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "streams":
        mode_streams(port, int(sys.argv[3]))
    elif mode == "bulk":
        mode_bulk(port, int(sys.argv[3]))
    elif mode == "stall":
        mode_stall(port)
    elif mode == "reset":
        mode_reset(port)
    elif mode == "rapid-reset":
        mode_rapid_reset(port)
    elif mode == "continuation":
        mode_continuation(port)
    elif mode == "ping-flood":
        mode_flood(port, "ping")
    elif mode == "settings-flood":
        mode_flood(port, "settings")
    elif mode == "hpack-bomb":
        mode_hpack_bomb(port)
    elif mode == "open":
        mode_open(port, int(sys.argv[3]), sys.argv[4], *sys.argv[5:7])
    elif mode == "zero-window":
        mode_zero_window(port, sys.argv[3])
    elif mode == "get":
        mode_get(port, sys.argv[3])
    else:
        out("FAIL unknown mode %s" % mode)
        sys.exit(2)


if __name__ == "__main__":
    main()
