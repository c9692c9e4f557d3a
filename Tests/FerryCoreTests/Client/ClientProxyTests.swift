import Foundation
import NIOCore
import Testing

@testable import FerryCore

/// Helpers shared by the proxy suites.
private enum ProxyRun {
    /// 64 KiB of random bytes through `ferry connect --listen` with `configuration`, to an echo
    /// backend; true if exactly the same bytes came back.
    static func roundTrip(_ configuration: ConnectConfiguration) async throws -> Bool {
        let payload = (0..<65536).map { _ in UInt8.random(in: 0...255) }
        return try await ClientRun.listening(configuration) { _, addresses in
            let client = try await LocalTestClient.connect(to: addresses[0])
            defer { Task { await client.close() } }
            try await client.send(ByteBuffer(bytes: payload))
            let echoed = try await client.receive(count: payload.count, timeout: .seconds(15))
            return Array(echoed.readableBytesView) == payload
        }
    }

    /// Opens one WebSocket with `configuration`; the failure, or nil if it opened.
    static func dialFailure(_ configuration: ConnectConfiguration) async throws -> ConnectFailure? {
        let dialer = try WebSocketDialer(configuration: configuration)
        do {
            let channel = try await dialer.connect(on: IntegrationLoops.group.next()).get()
            try? await channel.close()
            return nil
        } catch let failure as ConnectFailure {
            return failure
        }
    }

    /// One line echoed through the `ferry` executable in stdio mode with `environment`; the exit
    /// status and standard error.
    static func echoLine(_ arguments: [String], environment: [String: String]) async throws -> (status: Int32?, errors: String) {
        let connect = try StdioConnect(arguments, environment: environment)
        let line = Array("through the proxy\n".utf8)
        try await connect.send(line)
        let echoed = try? await connect.receive(count: line.count, timeout: .seconds(10))
        try? connect.closeInput()
        let status = await connect.waitForExit()
        if status == 0 { #expect(echoed == line) }
        return (status, connect.errorOutput)
    }

    static func withEchoRelay<T: Sendable>(_ body: (RunningRelay) async throws -> T) async throws -> T {
        let backend = try await TestBackend.start(.echo)
        defer { Task { await backend.close() } }
        return try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in try await body(relay) }
    }
}

extension ClientTests {
    /// `ferry connect` through Debian's tinyproxy on loopback, to an in-process relay and an echo
    /// backend: ws:// and wss://, Basic credentials right, wrong and missing, a relay the proxy
    /// cannot reach, and the environment variables read by the `ferry` executable.
    @Suite("Through an HTTP proxy (tinyproxy)", .enabled(if: OutsideTools.have("tinyproxy"), OutsideTools.installHint("tinyproxy")))
    struct ProxyTests {
        @Test("ws:// through the proxy: bytes round-trip exactly, and the proxy saw one CONNECT to the relay")
        func plain() async throws {
            try await TinyProxy.with { proxy in
                try await ProxyRun.withEchoRelay { relay in
                    let configuration = try ClientRun.configuration(ClientRun.url(relay)) { $0.proxy = try ConnectProxy.parse(proxy.url) }
                    #expect(try await ProxyRun.roundTrip(configuration))
                    #expect(proxy.connects(to: "127.0.0.1:\(relay.address.port!)") == 1, "\(proxy.log)")
                }
            }
        }

        @Test("wss:// through the proxy: TLS runs inside the tunnel and verifies the relay's certificate", .enabled(if: OutsideTools.have("openssl"), OutsideTools.installHint("openssl")))
        func secure() async throws {
            try await TinyProxy.with { proxy in
                try await TLSTests.withRelay { pki, relay in
                    let configuration = try ClientRun.configuration(ClientRun.url(relay, secure: true)) {
                        $0.proxy = try ConnectProxy.parse(proxy.url)
                        $0.tls.caPath = pki.caPath
                    }
                    #expect(try await ProxyRun.roundTrip(configuration))
                    #expect(proxy.connects(to: "127.0.0.1:\(relay.address.port!)") == 1, "\(proxy.log)")
                }
            }
        }

        @Test("Basic credentials: the right ones (percent-encoded) open the tunnel; missing: 407; wrong: refused")
        func credentials() async throws {
            // tinyproxy's configuration takes letters, digits and a few marks in a password only.
            try await TinyProxy.with(user: "alice", password: "s3cr3t.pw") { proxy in
                try await ProxyRun.withEchoRelay { relay in
                    let url = ClientRun.url(relay)
                    let right = try ClientRun.configuration(url) { $0.proxy = try ConnectProxy.parse("http://%61lice:s3cr3t%2Epw@127.0.0.1:\(proxy.port)") }
                    #expect(try await ProxyRun.roundTrip(right))

                    let missing = try ClientRun.configuration(url) { $0.proxy = try ConnectProxy.parse(proxy.url) }
                    #expect(try await ProxyRun.dialFailure(missing) == .proxyCredentials(proxy: "127.0.0.1:\(proxy.port)", status: 407, given: false, source: "--proxy"))

                    let wrong = try ClientRun.configuration(url) { $0.proxy = try ConnectProxy.parse("http://alice:nope@127.0.0.1:\(proxy.port)") }
                    let failure = try await ProxyRun.dialFailure(wrong)
                    // tinyproxy answers wrong credentials with 401, others with 407.
                    guard case .proxyCredentials(let address, let status, true, "--proxy")? = failure, [401, 407].contains(status) else {
                        Issue.record("wrong credentials: \(String(describing: failure))")
                        return
                    }
                    #expect(address == "127.0.0.1:\(proxy.port)")
                }
            }
        }

        @Test("missing credentials through the ferry executable: status 3 and a message that says where to give them", .enabled(if: FerryExecutable.path != nil))
        func credentialsMessage() async throws {
            try await TinyProxy.with(user: "alice", password: "s3cret") { proxy in
                try await ProxyRun.withEchoRelay { relay in
                    let missing = try StdioConnect([ClientRun.url(relay), "--proxy", proxy.url])
                    #expect(await missing.waitForExit() == ConnectExitStatus.couldNotConnect.rawValue)
                    let expected = "ferry connect: the proxy 127.0.0.1:\(proxy.port) requires credentials (407); give them in --proxy http://user:password@127.0.0.1:\(proxy.port)\n"
                    #expect(missing.errorOutput.contains(expected), "\(missing.errorOutput)")

                    let wrong = try StdioConnect([ClientRun.url(relay), "--proxy", "http://alice:wr0ng-pw@127.0.0.1:\(proxy.port)"])
                    #expect(await wrong.waitForExit() == ConnectExitStatus.couldNotConnect.rawValue)
                    #expect(wrong.errorOutput.contains("did not accept the credentials in --proxy"), "\(wrong.errorOutput)")
                    #expect(!wrong.errorOutput.contains("wr0ng-pw"), "the password is never shown")
                }
            }
        }

        @Test("a relay the proxy cannot reach: the proxy's refusal, naming the relay")
        func relayUnreachable() async throws {
            try await TinyProxy.with { proxy in
                let port = try await FreePort.on()
                let configuration = try ClientRun.configuration("ws://127.0.0.1:\(port)/") { $0.proxy = try ConnectProxy.parse(proxy.url) }
                let failure = try await ProxyRun.dialFailure(configuration)
                guard case .proxyRefused(let address, let target, let status, _)? = failure else {
                    Issue.record("expected the proxy's refusal: \(String(describing: failure))")
                    return
                }
                #expect(address == "127.0.0.1:\(proxy.port)")
                #expect(target == "127.0.0.1:\(port)")
                #expect(!(200..<300).contains(status))
                #expect(failure?.description.hasPrefix("the proxy 127.0.0.1:\(proxy.port) refused CONNECT to 127.0.0.1:\(port): \(status) ") == true)
            }
        }

        @Test(
            "HTTPS_PROXY in the environment carries a wss:// session; NO_PROXY=127.0.0.1 and --no-proxy bypass it",
            .enabled(if: OutsideTools.have("openssl"), OutsideTools.installHint("openssl")),
            .enabled(if: FerryExecutable.path != nil, "needs the ferry executable built with the tests")
        )
        func environment() async throws {
            try await TinyProxy.with { proxy in
                try await TLSTests.withRelay { pki, relay in
                    let url = ClientRun.url(relay, secure: true)
                    let target = "127.0.0.1:\(relay.address.port!)"
                    let arguments = [url, "--ca", pki.caPath, "--log-level", "debug"]

                    let proxied = try await ProxyRun.echoLine(arguments, environment: ["HTTPS_PROXY": proxy.url])
                    #expect(proxied.status == 0, "\(proxied.errors)")
                    #expect(proxy.connects(to: target) == 1, "\(proxy.log)")
                    #expect(proxied.errors.contains("through proxy http://127.0.0.1:\(proxy.port)"), "\(proxied.errors)")
                    #expect(proxied.errors.contains("HTTPS_PROXY"), "the log names the variable: \(proxied.errors)")

                    let bypassed = try await ProxyRun.echoLine(arguments, environment: ["HTTPS_PROXY": proxy.url, "NO_PROXY": "localhost,127.0.0.1"])
                    #expect(bypassed.status == 0, "\(bypassed.errors)")
                    let ignored = try await ProxyRun.echoLine(arguments + ["--no-proxy"], environment: ["https_proxy": proxy.url])
                    #expect(ignored.status == 0, "\(ignored.errors)")
                    #expect(proxy.connects(to: target) == 1, "NO_PROXY and --no-proxy went direct: \(proxy.log)")
                }
            }
        }
    }

    /// Proxies that are not there or never answer, and which variable a ws:// URL reads: no
    /// tinyproxy needed.
    @Suite("Proxy failures (real sockets)")
    struct ProxyFailureTests {
        @Test("a proxy that is not listening: could not connect, naming the proxy")
        func proxyNotListening() async throws {
            let port = try await FreePort.on()
            let configuration = try ClientRun.configuration("ws://127.0.0.1:9/") { $0.proxy = try ConnectProxy.parse("http://127.0.0.1:\(port)") }
            let failure = try await ProxyRun.dialFailure(configuration)
            #expect(failure == .proxyUnreachable(proxy: "127.0.0.1:\(port)", reason: "connection refused"))
            #expect(failure?.description == "could not connect to proxy 127.0.0.1:\(port): connection refused")
        }

        @Test("a proxy that never answers CONNECT: --connect-timeout covers it")
        func silentProxy() async throws {
            let proxy = try await SilentProxy.start()
            defer { Task { await proxy.close() } }
            let configuration = try ClientRun.configuration("ws://127.0.0.1:9/") {
                $0.proxy = try ConnectProxy.parse("http://127.0.0.1:\(proxy.port)")
                $0.connectTimeout = .milliseconds(300)
            }
            let failure = try await ProxyRun.dialFailure(configuration)
            #expect(failure == .timedOut(address: "127.0.0.1:9 through proxy 127.0.0.1:\(proxy.port)", after: .milliseconds(300)))
        }

        @Test("ws:// reads http_proxy: a dead one fails with status 3; NO_PROXY and HTTPS_PROXY leave the session direct", .enabled(if: FerryExecutable.path != nil))
        func plainEnvironment() async throws {
            let dead = try await FreePort.on()
            try await ProxyRun.withEchoRelay { relay in
                let url = ClientRun.url(relay)
                let failed = try await ProxyRun.echoLine([url], environment: ["http_proxy": "http://127.0.0.1:\(dead)"])
                #expect(failed.status == ConnectExitStatus.couldNotConnect.rawValue)
                #expect(failed.errors.contains("ferry connect: could not connect to proxy 127.0.0.1:\(dead): connection refused"), "\(failed.errors)")

                let bypassed = try await ProxyRun.echoLine([url], environment: ["http_proxy": "http://127.0.0.1:\(dead)", "no_proxy": "127.0.0.0/8"])
                #expect(bypassed.status == 0, "\(bypassed.errors)")
                let otherScheme = try await ProxyRun.echoLine([url], environment: ["HTTPS_PROXY": "http://127.0.0.1:\(dead)"])
                #expect(otherScheme.status == 0, "a ws:// URL does not read HTTPS_PROXY: \(otherScheme.errors)")
                let badVariable = try StdioConnect([url], environment: ["HTTP_PROXY": "https://127.0.0.1:\(dead)"])
                #expect(await badVariable.waitForExit() == ConnectExitStatus.badFlag.rawValue)
                #expect(badVariable.errorOutput.contains("HTTP_PROXY https://127.0.0.1:\(dead): is an https:// proxy"), "\(badVariable.errorOutput)")
            }
        }
    }
}
