import FerryCommandLine
import Foundation
import NIOCore
import Testing

@testable import FerryCore

extension ClientTests {
    /// `ferry connect`'s flags read into ``ConnectConfiguration``, in this process.
    @Suite("Unit: ferry connect's flags")
    struct FlagsTests {
        static func configuration(_ arguments: [String]) throws -> ConnectConfiguration {
            try ConnectOptions.parse(arguments).configuration().0
        }

        @Test("defaults: stdio, token as a subprotocol, 30 s pings, 10 s to connect, 256 KiB buffers")
        func defaults() throws {
            let configuration = try Self.configuration(["wss://relay.example/ssh"])
            #expect(configuration.listeners.isEmpty)
            #expect(configuration.request.tokenCarrier == .subprotocol)
            #expect(configuration.pingInterval == .seconds(30))
            #expect(configuration.pingTimeout == .seconds(30))
            #expect(configuration.connectTimeout == .seconds(10))
            #expect(configuration.bufferSize == 256 * 1024)
            #expect(configuration.maxConnections == 1000)
            #expect(configuration.tls == ConnectTLSOptions())
        }

        @Test("each flag lands where it belongs")
        func everyFlag() throws {
            let configuration = try Self.configuration([
                "ws://127.0.0.1:6080/db?x=1",
                "--listen", "127.0.0.1:5432", "--listen", "unix:/tmp/db.sock,mode=0660", "--max-connections", "7",
                "--token", "abc", "--token-in", "cookie", "--header", "X-One: 1", "--header", "X-Two: 2",
                "--origin", "https://app.example", "--basic-auth", "alice:pw:with:colons",
                "--ping-interval", "0", "--ping-timeout", "5s", "--connect-timeout", "1500ms", "--buffer-size", "1MiB",
            ])
            #expect(configuration.url == WebSocketURL(secure: false, host: "127.0.0.1", port: 6080, path: "/db", query: "x=1"))
            #expect(configuration.listeners == [ListenAddress(host: "127.0.0.1", port: 5432), ListenAddress(unixPath: "/tmp/db.sock", mode: 0o660)])
            #expect(configuration.maxConnections == 7)
            #expect(configuration.request.token == "abc")
            #expect(configuration.request.tokenCarrier == .cookie)
            #expect(configuration.request.headers == [HeaderField(name: "X-One", value: "1"), HeaderField(name: "X-Two", value: "2")])
            #expect(configuration.request.origin == "https://app.example")
            #expect(configuration.request.basicAuth == HeaderField(name: "alice", value: "pw:with:colons"))
            #expect(configuration.pingInterval == .zero)
            #expect(configuration.pingTimeout == .seconds(5))
            #expect(configuration.connectTimeout == .milliseconds(1500))
            #expect(configuration.bufferSize == 1 << 20)
        }

        @Test("--token-file and --basic-auth @FILE read the first line, out of the process list")
        func files() throws {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-connect-flags-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: folder) }
            try "  tok.en-9  \nignored\n".write(toFile: folder + "/token", atomically: true, encoding: .utf8)
            try "# who\nbob:s3cret\n".write(toFile: folder + "/basic", atomically: true, encoding: .utf8)
            let configuration = try Self.configuration(["ws://h/", "--token-file", folder + "/token", "--basic-auth", "@" + folder + "/basic"])
            #expect(configuration.request.token == "tok.en-9")
            #expect(configuration.request.basicAuth == HeaderField(name: "bob", value: "s3cret"))
            #expect(throws: ConfigurationError.self) { try Self.configuration(["ws://h/", "--token", "a", "--token-file", folder + "/token"]) }
        }

        @Test("TLS flags: files must exist, a certificate needs its key, --insecure and --ca exclude each other")
        func tlsFlags() throws {
            let pem = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-connect-\(UUID().uuidString).pem").path
            try "not really PEM".write(toFile: pem, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: pem) }
            let tls = try Self.configuration(["wss://h/", "--ca", pem, "--server-name", "relay.internal"]).tls
            #expect(tls.caPath == pem)
            #expect(tls.serverName == "relay.internal")
            #expect(throws: ConfigurationError.self) { try Self.configuration(["wss://h/", "--ca", pem, "--insecure"]) }
            // The dialer loads the files: a CA that is not PEM, a certificate without its key.
            let notPEM = try Self.configuration(["wss://h/", "--ca", pem])
            #expect(throws: ConfigurationError.self) { try WebSocketDialer(configuration: notPEM) }
            let lonely = try Self.configuration(["wss://h/", "--client-cert", pem])
            #expect(throws: ConfigurationError.self) { try WebSocketDialer(configuration: lonely) }
        }

        @Test("proxy flags: --proxy wins over the environment it is given, --no-proxy ignores it, both together is an error")
        func proxyFlags() throws {
            let environment = ["HTTPS_PROXY": "http://env.example:3128"]
            func proxy(_ arguments: [String]) throws -> ConnectProxy? {
                try ConnectOptions.parse(arguments).configuration(environment: environment).0.proxy
            }
            #expect(try proxy(["wss://h/"]) == ConnectProxy(host: "env.example", port: 3128, source: "HTTPS_PROXY"))
            #expect(try proxy(["wss://h/", "--proxy", "http://u:p@flag.example:8080"]) == ConnectProxy(host: "flag.example", port: 8080, credentials: .init(user: "u", password: "p")))
            #expect(try proxy(["wss://h/", "--no-proxy"]) == nil)
            #expect(try Self.configuration(["wss://h/"]).proxy == nil, "no environment given, none read")
            #expect(throws: ConfigurationError.self) { try proxy(["wss://h/", "--proxy", "http://p:1", "--no-proxy"]) }
            #expect(throws: ConfigurationError.self) { try proxy(["wss://h/", "--proxy", "https://p:1"]) }
        }
    }
}
