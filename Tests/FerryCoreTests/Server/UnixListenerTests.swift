import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import FerryCommandLine
@testable import FerryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension OperationsTests {
    /// `--listen unix:/path[,mode=0600]`: parsing, a session over AF_UNIX, the socket file's mode, and
    /// what is done with whatever was at the path before (websockify's `--unix-listen`).
    @Suite("Unix listeners (real sockets)")
    struct UnixListenerTests {
        /// A short socket path of its own for each test (a Unix socket path holds at most 107 bytes).
        static func socketPath(_ name: String = #function) -> String {
            let tag = name.prefix { $0.isLetter }.prefix(12)
            return "/tmp/ferry-\(getpid())-\(tag)-\(UInt32.random(in: 0...UInt32.max)).sock"
        }

        /// The file type and permission bits at `path`; nil if nothing is there.
        static func fileInfo(_ path: String) -> (isSocket: Bool, mode: UInt16)? {
            var info = stat()
            guard lstat(path, &info) == 0 else { return nil }
            return (info.st_mode & S_IFMT == S_IFSOCK, UInt16(info.st_mode & 0o7777))
        }

        /// Binds a socket at `path` and closes it without removing the file (NIO's listeners remove theirs).
        static func makeStaleSocket(at path: String) throws {
            #if canImport(Glibc)
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            #else
            let fd = socket(AF_UNIX, SOCK_STREAM, 0)
            #endif
            guard fd >= 0 else { throw ProductionTestError(what: "socket() failed") }
            defer { close(fd) }
            let address = try SocketAddress(unixDomainSocketPath: path)
            let result = address.withSockAddr { bind(fd, $0, socklen_t($1)) }
            guard result == 0 else { throw ProductionTestError(what: "bind(\(path)) failed: errno \(errno)") }
        }

        static func server(
            listener: ListenAddress,
            backend: TestBackend,
            limits: Limits = Relay.testLimits(),
            trustsUnixSocketPeers: Bool = false,
            logger: Logger = Relay.logger
        ) throws -> FerryServer {
            let configuration = try FerryConfiguration(
                listeners: [listener],
                routes: [Route(path: "/", target: backend.target)],
                limits: limits,
                trustsUnixSocketPeers: trustsUnixSocketPeers
            )
            return try FerryServer(configuration: configuration, group: IntegrationLoops.group, logger: logger)
        }

        static func expectEcho(_ client: WSTestClient, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            try await client.send(binary: Array(message.utf8))
            let echoed = try await client.receiveBytes(count: message.utf8.count, timeout: .seconds(5))
            #expect(String(buffer: echoed) == message, sourceLocation: sourceLocation)
        }

        // MARK: Parsing

        @Test("unix: listen values parse, with mode 0600 unless given, and may take proxy-protocol")
        func parsesUnixListeners() throws {
            let cases: [(String, ListenAddress)] = [
                ("unix:/run/ferry.sock", ListenAddress(unixPath: "/run/ferry.sock")),
                ("unix:/run/ferry.sock,mode=0660", ListenAddress(unixPath: "/run/ferry.sock", mode: 0o660)),
                ("unix:/run/ferry.sock,mode=666", ListenAddress(unixPath: "/run/ferry.sock", mode: 0o666)),
                ("unix:/run/ferry.sock,mode=0000", ListenAddress(unixPath: "/run/ferry.sock", mode: 0)),
                ("unix:/run/ferry.sock,proxy-protocol", ListenAddress(unixPath: "/run/ferry.sock", proxyProtocol: true)),
                ("unix:/run/ferry.sock,proxy-protocol,mode=0660", ListenAddress(unixPath: "/run/ferry.sock", mode: 0o660, proxyProtocol: true)),
                ("unix:/" + String(repeating: "a", count: 106), ListenAddress(unixPath: "/" + String(repeating: "a", count: 106))),
            ]
            for (text, expected) in cases {
                let parsed = try ListenAddress.parse(text)
                #expect(parsed == expected, "\(text)")
            }
            let address = try ListenAddress.parse("unix:/run/ferry.sock,mode=0640")
            #expect(address.unixPath == "/run/ferry.sock")
            #expect(address.unixMode == 0o640)
            #expect(address.host == "" && address.port == 0)
            #expect(address.description == "unix:/run/ferry.sock")
            #expect(ListenAddress(unixPath: "/x.sock").unixMode == 0o600)
            // TCP addresses read as before.
            let tcp = try ListenAddress.parse("127.0.0.1:6080,proxy-protocol")
            #expect(tcp.host == "127.0.0.1" && tcp.port == 6080 && tcp.proxyProtocol && tcp.unixPath == nil && tcp.unixMode == nil)

            // Through the flags: a Unix PROXY listener needs no --trusted-proxy (the socket's mode decides).
            let (configuration, _) = try FerryFlags.configuration([
                "--listen", "unix:/run/ferry.sock,mode=0660,proxy-protocol",
                "--listen", "127.0.0.1:6080",
                "--route", "/=localhost:5900",
            ])
            #expect(configuration.listeners == [ListenAddress(unixPath: "/run/ferry.sock", mode: 0o660, proxyProtocol: true), ListenAddress(host: "127.0.0.1", port: 6080)])
        }

        @Test(
            "bad unix: listen values: one line naming --listen, the value, the problem and the expected form",
            arguments: [
                ("unix:", "the socket path is missing", "unix:/ABSOLUTE/PATH"),
                ("unix:run/ferry.sock", "not absolute", "unix:/ABSOLUTE/PATH"),
                ("unix:/run/", "names a folder", "unix:/ABSOLUTE/PATH"),
                ("unix:/" + String(repeating: "a", count: 107), "108 bytes long, more than the 107", "a shorter absolute path"),
                ("unix:/run/ferry.sock,mode=", "is not 3 or 4 octal digits", "mode=0600"),
                ("unix:/run/ferry.sock,mode=60", "is not 3 or 4 octal digits", "mode=0600"),
                ("unix:/run/ferry.sock,mode=06600", "is not 3 or 4 octal digits", "mode=0600"),
                ("unix:/run/ferry.sock,mode=0680", "is not 3 or 4 octal digits", "mode=0600"),
                ("unix:/run/ferry.sock,mode=rw", "is not 3 or 4 octal digits", "mode=0600"),
                ("unix:/run/ferry.sock,mode=4755", "bits above 0777", "mode=0600"),
                ("unix:/run/ferry.sock,mode=0600,mode=0660", "given twice", "unix:/PATH[,mode=0600][,proxy-protocol]"),
                ("unix:/run/ferry.sock,owner=me", "unknown listener option 'owner=me'", "unix:/PATH[,mode=0600][,proxy-protocol]"),
                ("127.0.0.1:6080,mode=0600", "mode= applies only to Unix sockets", "unix:/PATH,mode=0660"),
            ]
        )
        func refusesBadUnixListeners(value: String, problem: String, expected: String) {
            if let error = FerryFlags.problem(["--listen", value, "--route", "/=localhost:5900"]) {
                let description = error.description
                #expect(error.flag == "--listen")
                #expect(description.hasPrefix(value.hasSuffix(":") ? "--listen \(value) " : "--listen \(value): "), "\(description)")
                #expect(description.contains(problem), "\(description)")
                #expect(description.contains("expected \(expected)"), "\(description)")
                #expect(!description.contains("\n"))
            } else {
                Issue.record("expected an error for --listen \(value)")
            }
        }

        @Test("PROXY v2 to a backend for a client that came through a Unix listener: the client's address is kept")
        func v2HeaderWithUnixDestination() throws {
            let allocator = ByteBufferAllocator()
            let listener = try SocketAddress(unixDomainSocketPath: "/run/ferry.sock")
            let cases: [(SocketAddress, SocketAddress)] = [
                (try SocketAddress(ipAddress: "203.0.113.7", port: 51234), try SocketAddress(ipAddress: "0.0.0.0", port: 0)),
                (try SocketAddress(ipAddress: "2001:db8::7", port: 51234), try SocketAddress(ipAddress: "::", port: 0)),
            ]
            for (client, stands) in cases {
                let header = ProxyHeaderParser.v2Header(source: client, destination: listener, allocator: allocator)
                let bytes = Array(header.readableBytesView)
                #expect(ParseOutcome(bytes) == .parsed(.proxied(source: client, destination: stands), bytes.count), "\(client)")
            }
            // A Unix client with no PROXY header of its own has no address to send: UNSPEC, read as LOCAL.
            let unspec = ProxyHeaderParser.v2Header(source: listener, destination: listener, allocator: allocator)
            #expect(ParseOutcome(Array(unspec.readableBytesView)) == .parsed(.local, 16))
        }

        @Test("--admin-listen cannot be a Unix socket")
        func adminListenIsTCPOnly() {
            if let error = FerryFlags.problem(["--listen", "127.0.0.1:6080", "--route", "/=localhost:5900", "--admin-listen", "unix:/run/ferry-admin.sock"]) {
                #expect(error.flag == "--admin-listen")
                #expect(error.description.contains("cannot be a Unix socket"), "\(error)")
            } else {
                Issue.record("expected an error")
            }
        }

        // MARK: Serving

        @Test("a session over a Unix listener to a TCP echo backend; socket mode 0600; logs show unix; the file goes at stop")
        func sessionOverUnixListener() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let path = Self.socketPath()
            defer { unlink(path) }
            let log = AuthLogCapture()
            let server = try Self.server(listener: ListenAddress(unixPath: path), backend: backend, logger: log.logger())
            let addresses = try await server.start()
            do {
                #expect(addresses == [try SocketAddress(unixDomainSocketPath: path)])
                let info = try #require(Self.fileInfo(path))
                #expect(info.isSocket)
                #expect(info.mode == 0o600, "mode \(String(info.mode, radix: 8))")
                #expect(log.text.contains("listening address=unix:\(path)"), "\(log.text)")

                let relay = RunningRelay(server: server, addresses: addresses)
                let client = try await WSTestClient.upgrade(relay)
                try await Self.expectEcho(client, "over a unix socket")
                try await Self.expectEcho(client, String(repeating: "x", count: 100_000))
                #expect(try await client.close() == WSCloseInfo(code: 1000, reason: ""))
                await client.shutdown()
                #expect(await log.waitForSessionClients(1) == ["unix"])

                // Plain HTTP works too.
                let ready = try await PlainHTTP.get(addresses[0], path: "/readyz")
                #expect(ready.status == 200, "\(ready)")
            } catch {
                await server.stop(timeout: .seconds(1))
                throw error
            }
            await server.stop(timeout: .seconds(3))
            #expect(Self.fileInfo(path) == nil, "the socket file is still there after stop()")
        }

        @Test("mode=0660 is applied to the socket file")
        func givenMode() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let path = Self.socketPath()
            defer { unlink(path) }
            let server = try Self.server(listener: ListenAddress(unixPath: path, mode: 0o660), backend: backend)
            let addresses = try await server.start()
            let info = Self.fileInfo(path)
            #expect(info?.isSocket == true)
            #expect(info?.mode == 0o660, "mode \(info.map { String($0.mode, radix: 8) } ?? "none")")
            let client = try await WSTestClient.upgrade(RunningRelay(server: server, addresses: addresses))
            try await Self.expectEcho(client, "mode 0660")
            await client.shutdown()
            await server.stop(timeout: .seconds(3))
            #expect(Self.fileInfo(path) == nil)
        }

        @Test("a stale socket file (nobody listening) is replaced")
        func staleSocketReplaced() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let path = Self.socketPath()
            defer { unlink(path) }
            // A listener that went away without removing its file, like a killed process.
            try Self.makeStaleSocket(at: path)
            #expect(Self.fileInfo(path)?.isSocket == true, "no stale socket file was made")

            let server = try Self.server(listener: ListenAddress(unixPath: path), backend: backend)
            let addresses = try await server.start()
            let client = try await WSTestClient.upgrade(RunningRelay(server: server, addresses: addresses))
            try await Self.expectEcho(client, "after a stale socket")
            await client.shutdown()
            await server.stop(timeout: .seconds(3))
            #expect(Self.fileInfo(path) == nil)
        }

        @Test("a socket someone is listening on is 'in use', and is left working")
        func liveSocketInUse() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let path = Self.socketPath()
            defer { unlink(path) }
            let other = try await ServerBootstrap(group: IntegrationLoops.group).bind(unixDomainSocketPath: path).get()
            defer { Task { try? await other.close() } }

            let server = try Self.server(listener: ListenAddress(unixPath: path), backend: backend)
            do {
                try await server.start()
                Issue.record("start() should have failed")
                await server.stop(timeout: .seconds(1))
            } catch let error as ConfigurationError {
                #expect(error.flag == "--listen")
                #expect(error.description == "--listen unix:\(path): \(path) is in use: another process is listening on it", "\(error)")
            }
            #expect(Self.fileInfo(path)?.isSocket == true)
            #expect(await PlainHTTP.canConnect(try SocketAddress(unixDomainSocketPath: path)))
        }

        @Test("a regular file at the path is refused and never deleted")
        func regularFileRefused() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let path = Self.socketPath()
            defer { unlink(path) }
            try "precious\n".write(toFile: path, atomically: false, encoding: .utf8)

            let server = try Self.server(listener: ListenAddress(unixPath: path), backend: backend)
            do {
                try await server.start()
                Issue.record("start() should have failed")
                await server.stop(timeout: .seconds(1))
            } catch let error as ConfigurationError {
                #expect(error.flag == "--listen")
                #expect(error.value == "unix:\(path)")
                #expect(error.description.contains("\(path) exists and is not a socket"), "\(error)")
            }
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "precious\n")
        }

        @Test("a missing folder is a start-up error naming the path")
        func missingFolder() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let path = "/tmp/ferry-no-such-folder-\(getpid())/f.sock"
            let server = try Self.server(listener: ListenAddress(unixPath: path), backend: backend)
            do {
                try await server.start()
                Issue.record("start() should have failed")
                await server.stop(timeout: .seconds(1))
            } catch let error as ConfigurationError {
                #expect(error.description.hasPrefix("--listen unix:\(path): cannot listen: "), "\(error)")
            }
        }

        @Test("--max-connections-per-ip counts every Unix client as the one address 'unix'")
        func perAddressLimitSharedByUnixClients() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let path = Self.socketPath()
            defer { unlink(path) }
            let limits = Relay.testLimits { $0.maxConnectionsPerIP = 1 }
            let server = try Self.server(listener: ListenAddress(unixPath: path), backend: backend, limits: limits)
            let relay = RunningRelay(server: server, addresses: try await server.start())
            do {
                let first = try await WSTestClient.upgrade(relay)
                let second = try await WSTestClient.connect(to: relay)
                #expect(second.response.status == 503, "\(second.response)")
                #expect(second.response.body.contains("too many connections from this address"), "\(second.response)")
                await second.shutdown()
                try await Self.expectEcho(first, "still open")
                await first.shutdown()
            } catch {
                await server.stop(timeout: .seconds(1))
                throw error
            }
            await server.stop(timeout: .seconds(3))
        }

        @Test("X-Forwarded-For over a Unix listener: ignored by default, the client with --trusted-proxy unix", arguments: [false, true])
        func forwardedForOverUnix(trusted: Bool) async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let path = Self.socketPath()
            defer { unlink(path) }
            let log = AuthLogCapture()
            let server = try Self.server(listener: ListenAddress(unixPath: path), backend: backend, trustsUnixSocketPeers: trusted, logger: log.logger())
            let relay = RunningRelay(server: server, addresses: try await server.start())
            do {
                // As nginx sends it: the client it saw, appended to whatever the client claimed.
                let client = try await WSTestClient.upgrade(relay, headers: [("X-Forwarded-For", "192.0.2.1, 203.0.113.9")])
                try await Self.expectEcho(client, "behind a local proxy")
                _ = try await client.close()
                await client.shutdown()
                #expect(await log.waitForSessionClients(1) == [trusted ? "203.0.113.9:0" : "unix"], "\(log.text)")
            } catch {
                await server.stop(timeout: .seconds(1))
                throw error
            }
            await server.stop(timeout: .seconds(3))
        }

        @Test("unix: with proxy-protocol: the PROXY header names the client, no --trusted-proxy needed")
        func proxyProtocolOverUnix() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let path = Self.socketPath()
            defer { unlink(path) }
            let log = AuthLogCapture()
            let server = try Self.server(listener: ListenAddress(unixPath: path, proxyProtocol: true), backend: backend, logger: log.logger())
            let relay = RunningRelay(server: server, addresses: try await server.start())
            do {
                let client = try await WSTestClient.proxied(relay, prefix: PROXYBytes.v1("PROXY TCP4 203.0.113.7 192.0.2.1 51234 6080\r\n"))
                try client.checkUpgraded()
                try await Self.expectEcho(client, "proxied over unix")
                _ = try await client.close()
                await client.shutdown()
                #expect(await log.waitForSessionClients(1) == ["203.0.113.7:51234"])

                // Without a header the connection is closed.
                let bare = try await WSTestClient.sendAndAwaitClose(relay, bytes: Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), timeout: .seconds(5))
                #expect(bare == nil || bare?.status != 101)
            } catch {
                await server.stop(timeout: .seconds(1))
                throw error
            }
            await server.stop(timeout: .seconds(3))
        }
    }
}
