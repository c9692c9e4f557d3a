#!/usr/bin/env python3
"""Writes the generated seeds under Fuzz/Corpus/<target>/ (the files are committed; run this again only
to change them; files it does not name, such as regression inputs added by hand, are left alone).
Each seed starts with the control bytes its target reads first: see the target's doc comment in
Sources/FerryFuzz/ and Fuzz/README.md."""
import base64, hashlib, hmac, json, os, struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "Corpus")
SECRET = b"ferry-fuzz-hs256-secret-32-bytes"  # JWTTarget.secret


def write(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def frame(opcode, payload, fin=True, key=b"\x37\xfa\x21\x3d", rsv=0):
    first = (0x80 if fin else 0) | rsv | opcode
    mask = 0x80 if key is not None else 0
    n = len(payload)
    if n < 126:
        header = bytes([first, mask | n])
    elif n < 65536:
        header = bytes([first, mask | 126]) + struct.pack(">H", n)
    else:
        header = bytes([first, mask | 127]) + struct.pack(">Q", n)
    if key is None:
        return header + payload
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def frames():
    # Byte 0: how the stream is cut into reads; byte 1: bit 0 sets a message size limit.
    write("frame", "text-masked", b"\x00\x00" + frame(1, b"Hello"))
    write("frame", "text-masked-cut-bytewise", b"\x02\x00" + frame(1, "héllo wörld €".encode()))
    write("frame", "binary-126", b"\x05\x00" + frame(2, bytes(range(256)) * 1))
    write("frame", "binary-64bit-length-header-only", b"\x03\x00" + frame(2, b"")[:1] + b"\xff" + struct.pack(">Q", 70000) + b"\x01\x02\x03\x04" + b"abc")
    write("frame", "fragmented-text-with-ping", b"\x07\x00" + frame(1, "frag".encode(), fin=False) + frame(9, b"ping!") + frame(0, "ment €".encode()[:6], fin=False) + frame(0, "ment €".encode()[6:]))
    write("frame", "close-1000-reason", b"\x00\x00" + frame(8, struct.pack(">H", 1000) + b"bye"))
    write("frame", "close-empty", b"\x00\x00" + frame(8, b""))
    write("frame", "close-bad-code", b"\x00\x00" + frame(8, struct.pack(">H", 1005)))
    write("frame", "pong", b"\x01\x00" + frame(10, b"pong"))
    write("frame", "unmasked-from-client", b"\x00\x00" + frame(2, b"data", key=None))
    write("frame", "invalid-utf8", b"\x0b\x00" + frame(1, b"ok \xed\xa0\x80 surrogate"))
    write("frame", "too-large", b"\x00\x03" + frame(2, b"x" * 40))
    write("frame", "reserved-bits", b"\x00\x00" + frame(2, b"rsv", rsv=0x40))
    write("frame", "continuation-without-start", b"\x00\x00" + frame(0, b"cont"))


def http():
    key = base64.b64encode(b"0123456789abcdef").decode()
    upgrade = ("GET /vnc?token=abc HTTP/1.1\r\nHost: relay.example:8080\r\nUpgrade: websocket\r\n"
               "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Protocol: binary, bearer.tok3n\r\nOrigin: https://relay.example\r\n\r\n" % key)
    write("http", "upgrade-valid", "\x00\x00" + upgrade)
    write("http", "upgrade-valid-cut", "\x07\x00" + upgrade)
    write("http", "upgrade-forwarded-basic",
          "\x00\x00GET / HTTP/1.1\r\nHost: [::1]:6080\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\nAuthorization: Basic %s\r\n"
          "X-Forwarded-For: 203.0.113.9, 10.0.0.2\r\nForwarded: for=\"[2001:db8::1]:4711\";proto=https, for=192.0.2.60\r\n"
          "Cookie: a=b; ferry_token=cookietok\r\n\r\n" % (key, base64.b64encode(b"user:secret").decode()))
    write("http", "upgrade-client-cert-route",
          "\x00\x00GET /vnc/deeper HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
          "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\nOrigin: http://[::1]:8080\r\n\r\n" % key)
    write("http", "upgrade-wildcard-server-name",
          "\x00\x00GET /unix HTTP/1.1\r\nHost: VNC.Example.COM.:443\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
          "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\nOrigin: https://vnc.example.com\r\n\r\n" % key)
    write("http", "upgrade-bad-version", "\x00\x00GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: %s\r\n\r\n" % key)
    write("http", "upgrade-bad-key", "\x00\x01GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short==\r\n\r\n")
    write("http", "upgrade-post-http10", "\x00\x00POST /x HTTP/1.0\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\nhello")
    write("http", "plain-get-static", "\x00\x00GET /index.html HTTP/1.1\r\nHost: relay\r\n\r\nGET /%2e%2e/etc/passwd HTTP/1.1\r\nHost: relay\r\n\r\n")
    write("http", "chunked-body", "\x05\x00POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    write("http", "garbage", "\x00\x00\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03")
    write("http", "header-too-large", "\x00\x01GET / HTTP/1.1\r\nX-Big: " + "a" * 1100 + "\r\n\r\n")


def proxy_v2(command, family, body, tlvs=b""):
    sig = b"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a"
    payload = body + tlvs
    return sig + bytes([0x20 | command, family]) + struct.pack(">H", len(payload)) + payload


def proxies():
    write("proxy", "v1-tcp4", b"\x00PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET / HTTP/1.1\r\n\r\n")
    write("proxy", "v1-tcp6-cut", b"\x02PROXY TCP6 2001:db8::1 ::1 4711 80\r\nhello")
    write("proxy", "v1-unknown", b"\x00PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n")
    write("proxy", "v1-bad-port", b"\x00PROXY TCP4 1.2.3.4 5.6.7.8 080 1\r\n")
    v4 = bytes([192, 0, 2, 1, 198, 51, 100, 2]) + struct.pack(">HH", 56324, 443)
    write("proxy", "v2-tcp4", b"\x00" + proxy_v2(1, 0x11, v4) + b"after")
    write("proxy", "v2-tcp4-tlv-cut", b"\x07" + proxy_v2(1, 0x11, v4, tlvs=b"\x03\x00\x04\xde\xad\xbe\xef") + b"x")
    v6 = bytes(range(16)) + bytes(15) + b"\x01" + struct.pack(">HH", 4711, 80)
    write("proxy", "v2-tcp6", b"\x01" + proxy_v2(1, 0x21, v6))
    write("proxy", "v2-local", b"\x00" + proxy_v2(0, 0x00, b""))
    write("proxy", "v2-unix", b"\x00" + proxy_v2(1, 0x31, bytes(216)))
    write("proxy", "v2-short-v4", b"\x00" + proxy_v2(1, 0x11, bytes(8)))


def redis():
    # Byte 0: how the stream is cut into reads; the rest is what Redis sends back.
    write("redis", "replies", b"\x00+OK\r\n-WRONGPASS invalid username-password pair\r\n:1\r\n$9\r\n127.0.0.1\r\n$-1\r\n*-1\r\n*0\r\n")
    write("redis", "pubsub-bytewise", b"\x02*3\r\n$10\r\npsubscribe\r\n$16\r\n__keyspace@0__:*\r\n:1\r\n*4\r\n$8\r\npmessage\r\n$16\r\n__keyspace@0__:*\r\n$19\r\n__keyspace@0__:ns:t\r\n$3\r\ndel\r\n")
    write("redis", "json-value", b"\x05$29\r\n{\"host\": \"10.0.0.7\", \"port\": 1}\r\n$18\r\nunix:/run/vnc.sock\r\n")
    write("redis", "nested", b"\x03*2\r\n*1\r\n:-42\r\n*2\r\n$0\r\n\r\n*1\r\n+PONG\r\n")
    write("redis", "url", b"\x00redis://user:secret@[::1]:6380/2?namespace=a%3Ab")
    write("redis", "bad-length", b"\x00$600000\r\n")


def tokenfiles():
    write("tokenfile", "lines", "# websockify tokens\nvnc1: 127.0.0.1:5900\nvnc2:\t[::1]:5901\n\n  sock: unix_socket:/run/vnc.sock\r\ntls: tls://host.example:5901\n")
    write("tokenfile", "one-target", "10.0.0.5:5900\n")
    write("tokenfile", "unix", "unix:/run/user/1000/vnc.sock")
    write("tokenfile", "bad-lines", "nocolon 1.2.3.4:5\n: 1.2.3.4:5\nx: dynamic\ny: host:99999\n")


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(header, payload, key=SECRET, signature=None):
    signing = b64u(json.dumps(header, separators=(",", ":")).encode()) + "." + b64u(json.dumps(payload, separators=(",", ":")).encode())
    if signature is None:
        signature = hmac.new(key, signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64u(signature)


def jwts():
    claims = {"route": "/vnc", "host": "127.0.0.1", "port": 5900, "exp": 1900000000}
    # Byte 0 mod 3: 0 the token text, 1 NUL-separated parts, 2 NUL-separated parts signed by the harness.
    write("jwt", "hs256-valid", "\x00" + jwt({"alg": "HS256", "typ": "JWT"}, claims))
    write("jwt", "hs256-port-string-unix", "\x00" + jwt({"alg": "HS256", "kid": "hs256"}, {"unix": "/run/vnc.sock", "port": "5900", "nbf": 1700000000, "aud": ["a", "b"], "iss": "me"}))
    write("jwt", "hs256-expired", "\x00" + jwt({"alg": "HS256"}, {"host": "h", "port": 1, "exp": 1600000000}))
    write("jwt", "hs256-wrong-key", "\x00" + jwt({"alg": "HS256"}, claims, key=b"x" * 32))
    write("jwt", "alg-none", "\x00" + jwt({"alg": "none", "typ": "JWT"}, claims, signature=b""))
    write("jwt", "alg-none-two-parts", "\x00" + ".".join(jwt({"alg": "none"}, claims, signature=b"").split(".")[:2]))
    write("jwt", "alg-None-hs-signature", "\x00" + jwt({"alg": "None"}, claims))
    write("jwt", "parts-unsigned", b"\x01" + json.dumps({"alg": "HS256"}).encode() + b"\x00" + json.dumps(claims).encode() + b"\x00sig")
    write("jwt", "parts-signed", b"\x02" + json.dumps({"alg": "HS256", "typ": "JWT"}).encode() + b"\x00" + json.dumps(claims).encode())
    write("jwt", "parts-signed-odd-claims", b"\x02" + b'{"alg":"HS256"}' + b"\x00" + b'{"port":"59x","exp":"soon","aud":"one"}')


def paths():
    for name, text in [
        ("root", "/"), ("file", "/vnc.html?autoconnect=1#frag"), ("dir", "/app/core/"), ("dotdot", "/a/../b"),
        ("encoded-dotdot", "/%2e%2e/x"), ("encoded-slash", "/a%2Fb"), ("backslash", "/a\\..\\b"), ("hidden", "/.git/config"),
        ("percent-utf8", "/caf%C3%A9/%E2%82%AC.txt"), ("bad-escape", "/%zz"), ("dot-segments", "/./a/./b/."), ("no-slash", "index.html"),
        # Graphemes that swallow a separator (Fuzz/Crashes/path/NOTE.md): kept as regression seeds.
        ("regression-combining-slash", "/a/%CC%81"), ("regression-combining-backslash", "/a\\%CC%81"),
        ("regression-prepend-dotdot", "/%D8%80/../x"), ("regression-prepend-hidden", "/%D8%80/.git/config"),
    ]:
        write("path", name, text)


def websockify():
    for name, args in [
        ("basic", ["6080", "localhost:5900"]),
        ("web-tls", ["--web", "/usr/share/novnc", "--cert=/etc/ssl/self.pem", "--ssl-only", "0.0.0.0:6080", "10.0.0.5:5900"]),
        ("token-plugin", ["--token-plugin", "TokenFile", "--token-source", "/etc/websockify/tokens", "6080"]),
        ("jwt-plugin", ["--token-plugin=JWTTokenApi", "--token-source=/etc/jwt.key", "--host-token", "[::]:6080"]),
        ("unix", ["--unix-target=/run/vnc.sock", "--unix-listen", "/run/ws.sock", "--unix-listen-mode=0660"]),
        ("auth-plugins", ["--auth-plugin", "BasicHTTPAuth", "--auth-source", "user:pass", "--web-auth", "-vD6", "6080", "::1:5900"]),
        ("ferry-flags", ["--allow-origin", "https://example.com", "--max-connections", "10", "--idle-timeout=30", "--heartbeat", "15", "6080", "h:1"]),
        ("wrap-mode", ["6080", "--", "vncserver", ":1"]),
    ]:
        write("websockify", name, "\n".join(args))


if __name__ == "__main__":
    # Only (over)writes its own files: seeds dropped into Corpus/ by hand (regression inputs) stay.
    frames(); http(); proxies(); tokenfiles(); redis(); jwts(); paths(); websockify()
