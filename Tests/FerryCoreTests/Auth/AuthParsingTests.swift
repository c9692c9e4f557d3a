import Foundation
import JWTKit
import NIOCore
import Testing

@testable import FerryCommandLine
@testable import FerryCore

private func bytes(_ address: String) -> [UInt8] {
    guard let bytes = IPAddressBytes.parse(address) else {
        Issue.record("not an address: \(address)")
        return []
    }
    return bytes
}

extension AuthTests {
    @Suite("Unit: token files")
    struct TokenFileFormatTests {
        @Test("comments, blank lines, indentation, spaces and unix: targets")
        func parsesWebsockifyFormat() throws {
            let text = """
                # websockify token file

                vnc-one: 127.0.0.1:5901
                   \t# an indented comment
                vnc-two:   [::1]:5902\t\u{20}
                  sock: unix:/run/vnc/display.sock
                tls-one: tls://vnc.internal:5903

                """
            let entries = try TokenFileFormat.parse(text, file: "tokens.cfg")
            #expect(entries.map(\.token) == ["vnc-one", "vnc-two", "sock", "tls-one"])
            #expect(entries.map(\.target) == [
                .tcp(host: "127.0.0.1", port: 5901),
                .tcp(host: "::1", port: 5902),
                .unix(path: "/run/vnc/display.sock"),
                .tls(host: "vnc.internal", port: 5903),
            ])
        }

        /// TokenFile.swift splits the text with `split(separator: "\n")`; in a Swift String "\r\n" is one
        /// Character, so CRLF lines are never split (and the `hasSuffix("\r")` that follows never fires).
        static let crlfBug = "bug: TokenFileFormat.parse does not split CRLF lines (\"\\r\\n\" is one Character; TokenFile.swift:18)"

        @Test("CRLF line ends (a file saved on Windows)")
        func crlf() throws {
            let text = "# websockify token file\r\n\r\nvnc-one: 127.0.0.1:5901\r\nvnc-two: [::1]:5902 \r\n"
            let entries = try TokenFileFormat.parse(text, file: "tokens.cfg")
            // "\r\n" is one Character in Swift: splitting on "\n" alone made this one comment line.
            #expect(entries.map(\.token) == ["vnc-one", "vnc-two"])
            #expect(entries.map(\.target) == [.tcp(host: "127.0.0.1", port: 5901), .tcp(host: "::1", port: 5902)])
            // LF and CRLF lines mixed.
            let mixed = try TokenFileFormat.parse("a: 127.0.0.1:1\r\nb: 127.0.0.1:2\nc: 127.0.0.1:3\r\n", file: "mixed")
            #expect(mixed.map(\.token) == ["a", "b", "c"])
        }

        @Test("a bad CRLF line is reported with its own line number, and the error does not quote other lines' tokens")
        func crlfErrors() throws {
            #expect {
                try TokenFileFormat.parse("# c\r\nok: 127.0.0.1:1\r\nglued:127.0.0.1:2\r\n", file: "/etc/ferry/tokens")
            } throws: { error in
                (error as? ConfigurationError)?.description.contains("/etc/ferry/tokens:3") ?? false
            }
            do {
                let entries = try TokenFileFormat.parse("first: 127.0.0.1:1\r\nsecond-s3cr3t: 127.0.0.1:2\r\n", file: "f")
                #expect(entries.count == 2)
            } catch {
                // An error must not quote the next line (its token would land in the reload log).
                #expect(!"\(error)".contains("second-s3cr3t"), "\(error)")
                throw error
            }
        }

        @Test("an empty file, or one of comments only, has no tokens")
        func empty() throws {
            #expect(try TokenFileFormat.parse("", file: "t").isEmpty)
            #expect(try TokenFileFormat.parse("# nothing\n\n   \n", file: "t").isEmpty)
        }

        @Test(
            "a malformed line is an error naming FILE:LINE",
            arguments: [
                ("ok: 127.0.0.1:1\nno-separator 127.0.0.1:2\n", 2),
                ("# c\nok: 127.0.0.1:1\nglued:127.0.0.1:2\n", 3),
                (": 127.0.0.1:5900", 1),
                ("\n\n\ntok: 127.0.0.1", 4),
                ("tok: 127.0.0.1:99999", 1),
                ("tok: unix:relative/path", 1),
                ("tok: dynamic", 1),
                ("a: 127.0.0.1:1\nb: 127.0.0.1:2\nc: \n", 3),
                ("tok: 1:2:3:4", 1),
            ]
        )
        func malformed(text: String, line: Int) {
            #expect {
                try TokenFileFormat.parse(text, file: "/etc/ferry/tokens")
            } throws: { error in
                guard let error = error as? ConfigurationError else { return false }
                return error.flag == "--token-file" && error.description.contains("/etc/ferry/tokens:\(line)")
                    && !error.description.contains("/etc/ferry/tokens:\(line + 1)")
            }
        }

        @Test("the error for a bad line does not repeat the token")
        func errorHidesToken() {
            do {
                _ = try TokenFileFormat.parse("s3cr3t-token-value: not-a-target\n", file: "f")
                Issue.record("expected an error")
            } catch {
                #expect(error.description.contains("f:1"))
                #expect(!error.description.contains("s3cr3t-token-value"))
            }
        }
    }

    @Suite("Unit: --allow-target rules")
    struct TargetRuleTests {
        @Test("an IPv4 block with a port range")
        func ipv4Block() throws {
            let rule = try TargetRule.parse("10.0.0.0/8:5900-5999")
            #expect(rule.ports == 5900...5999)
            #expect(rule.allows(address: bytes("10.1.2.3"), port: 5900))
            #expect(rule.allows(address: bytes("10.255.255.255"), port: 5999))
            #expect(!rule.allows(address: bytes("10.1.2.3"), port: 5899))
            #expect(!rule.allows(address: bytes("10.1.2.3"), port: 6000))
            #expect(!rule.allows(address: bytes("11.0.0.1"), port: 5900))
            #expect(!rule.allows(address: bytes("9.255.255.255"), port: 5900))
            // An IPv4-mapped IPv6 address is the IPv4 host it maps (a dual-stack socket reports peers so).
            #expect(rule.allows(address: bytes("::ffff:10.1.2.3"), port: 5900))
            #expect(!rule.allows(address: bytes("::ffff:11.1.2.3"), port: 5900))
            #expect(!rule.allows(address: bytes("2001:db8::a01:203"), port: 5900), "other IPv6 addresses never match an IPv4 block")
            #expect(rule.description == "10.0.0.0/8:5900-5999")
        }

        @Test("a block whose prefix is not a whole number of bytes")
        func oddPrefix() throws {
            let rule = try TargetRule.parse("192.168.1.128/25:443")
            #expect(rule.allows(address: bytes("192.168.1.128"), port: 443))
            #expect(rule.allows(address: bytes("192.168.1.255"), port: 443))
            #expect(!rule.allows(address: bytes("192.168.1.127"), port: 443))
            let nine = try TargetRule.parse("10.128.0.0/9:*")
            #expect(nine.allows(address: bytes("10.200.0.1"), port: 1))
            #expect(!nine.allows(address: bytes("10.100.0.1"), port: 1))
        }

        @Test("a single address, /0, and * ports")
        func singleAndAll() throws {
            let single = try TargetRule.parse("127.0.0.1:5900")
            #expect(single.hosts == .network(bytes: [127, 0, 0, 1], prefix: 32))
            #expect(single.allows(address: bytes("127.0.0.1"), port: 5900))
            #expect(!single.allows(address: bytes("127.0.0.2"), port: 5900))
            #expect(!single.allows(address: bytes("127.0.0.1"), port: 5901))
            let all = try TargetRule.parse("0.0.0.0/0:*")
            #expect(all.ports == 1...65535)
            #expect(all.allows(address: bytes("203.0.113.9"), port: 1))
            #expect(all.allows(address: bytes("127.0.0.1"), port: 65535))
            #expect(!all.allows(address: bytes("::1"), port: 80))
        }

        @Test("IPv6 blocks and addresses in brackets")
        func ipv6() throws {
            let block = try TargetRule.parse("[fd00::/8]:*")
            #expect(block.allows(address: bytes("fd12:3456::1"), port: 22))
            #expect(block.allows(address: bytes("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), port: 65535))
            #expect(!block.allows(address: bytes("fe80::1"), port: 22))
            #expect(!block.allows(address: bytes("10.0.0.1"), port: 22))
            let narrow = try TargetRule.parse("[2001:db8:1::/48]:5900")
            #expect(narrow.allows(address: bytes("2001:db8:1:ffff::7"), port: 5900))
            #expect(!narrow.allows(address: bytes("2001:db8:2::7"), port: 5900))
            let loopback = try TargetRule.parse("[::1]:22")
            #expect(loopback.hosts == .network(bytes: bytes("::1"), prefix: 128))
            #expect(loopback.allows(address: bytes("::1"), port: 22))
            #expect(!loopback.allows(address: bytes("::2"), port: 22))
        }

        @Test("a host name matches the addresses it resolves to; unix rules keep their path")
        func namesAndSockets() throws {
            let rule = try TargetRule.parse("VNC.Internal:5900")
            #expect(rule.hosts == .name("vnc.internal"))
            #expect(rule.allows(address: bytes("10.0.0.7"), port: 5900, nameAddresses: [bytes("10.0.0.7")]))
            #expect(!rule.allows(address: bytes("10.0.0.8"), port: 5900, nameAddresses: [bytes("10.0.0.7")]))
            #expect(!rule.allows(address: bytes("10.0.0.7"), port: 5900), "a name that resolved to nothing allows nothing")
            #expect(!rule.allows(address: bytes("10.0.0.7"), port: 5901, nameAddresses: [bytes("10.0.0.7")]))
            let socket = try TargetRule.parse("unix:/run/vnc/")
            #expect(socket.hosts == .name("unix:/run/vnc/"))
        }

        @Test(
            "bad rules are refused with --allow-target in the message",
            arguments: [
                "10.0.0.0/8", "10.0.0.0/33:1", "10.0.0.0/8:0", "10.0.0.0/8:65536", "10.0.0.0/8:6000-5900",
                "10.0.0.0/8:-5", "10.0.0.0/8:5-", "10.0.0.0/8:abc", "10.0.0.0/8:", ":5900", "[fd00::/8]",
                "[fd00::/129]:1", "[fd00::/8:1", "999.0.0.0/8:1", "10.0.0.0/x:1", "unix:relative", "",
            ]
        )
        func badRules(text: String) {
            #expect {
                try TargetRule.parse(text)
            } throws: { error in
                (error as? ConfigurationError)?.flag == "--allow-target"
            }
        }
    }

    @Suite("Unit: failure limiter")
    struct FailureLimiterTests {
        @Test("an address is blocked after `limit` failures, for the rest of its window")
        func blocksAtLimit() {
            let limiter = FailureLimiter(limit: 3, window: .seconds(10))
            let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
            #expect(!limiter.isBlocked("192.0.2.1", now: start))
            limiter.recordFailure("192.0.2.1", now: start)
            limiter.recordFailure("192.0.2.1", now: start + .seconds(1))
            #expect(!limiter.isBlocked("192.0.2.1", now: start + .seconds(1)))
            limiter.recordFailure("192.0.2.1", now: start + .seconds(2))
            #expect(limiter.isBlocked("192.0.2.1", now: start + .seconds(2)))
            #expect(limiter.isBlocked("192.0.2.1", now: start + .milliseconds(9_999)))
            #expect(!limiter.isBlocked("192.0.2.2", now: start + .seconds(2)), "other addresses are not affected")
            // The window counts from the first failure; once it has passed the address is free again.
            #expect(!limiter.isBlocked("192.0.2.1", now: start + .seconds(10)))
            #expect(!limiter.isBlocked("192.0.2.1", now: start + .seconds(10) + .milliseconds(1)))
        }

        @Test("failures after a window start a new count")
        func newWindow() {
            let limiter = FailureLimiter(limit: 2, window: .seconds(5))
            let start = NIODeadline.uptimeNanoseconds(5_000_000_000_000)
            limiter.recordFailure("a", now: start)
            limiter.recordFailure("a", now: start + .seconds(6))
            #expect(!limiter.isBlocked("a", now: start + .seconds(6)), "the first failure belongs to an old window")
            limiter.recordFailure("a", now: start + .seconds(7))
            #expect(limiter.isBlocked("a", now: start + .seconds(7)))
            #expect(!limiter.isBlocked("a", now: start + .seconds(11)))
        }

        @Test("the table is bounded: the oldest entry goes when it is full")
        func bounded() {
            let limiter = FailureLimiter(limit: 1, window: .seconds(60), maxEntries: 2)
            let start = NIODeadline.uptimeNanoseconds(9_000_000_000_000)
            limiter.recordFailure("a", now: start)
            limiter.recordFailure("b", now: start + .seconds(1))
            #expect(limiter.isBlocked("a", now: start + .seconds(1)))
            limiter.recordFailure("c", now: start + .seconds(2))
            #expect(!limiter.isBlocked("a", now: start + .seconds(2)), "the oldest entry was dropped")
            #expect(limiter.isBlocked("b", now: start + .seconds(2)))
            #expect(limiter.isBlocked("c", now: start + .seconds(2)))
        }
    }

    @Suite("Unit: constant-time comparison")
    struct ConstantTimeEqualsTests {
        @Test("equal and unequal byte strings")
        func compares() {
            #expect(constantTimeEquals(Array("secret-token".utf8), Array("secret-token".utf8)))
            #expect(constantTimeEquals([UInt8](), [UInt8]()))
            #expect(!constantTimeEquals(Array("secret-token".utf8), Array("Secret-token".utf8)), "differs in the first byte")
            #expect(!constantTimeEquals(Array("secret-token".utf8), Array("secret-tokeN".utf8)), "differs in the last byte")
            #expect(!constantTimeEquals(Array("secret-token".utf8), Array("secret-token!".utf8)), "a prefix is not equal")
            #expect(!constantTimeEquals(Array("secret".utf8), [UInt8]()))
            #expect(!constantTimeEquals([0x00], [0x80]))
        }
    }

    @Suite("Unit: auth configuration")
    struct AuthConfigurationTests {
        @Test("auth=token and dynamic routes parse; they need a token source")
        func routes() throws {
            let guarded = try Route.parse("/vnc=127.0.0.1:5900,auth=token")
            #expect(guarded.options.requiresToken)
            #expect(guarded.needsToken)
            let open = try Route.parse("/open=127.0.0.1:5900,auth=none")
            #expect(!open.needsToken)
            let dynamic = try Route.parse("/connect=dynamic")
            #expect(dynamic.target == .dynamic)
            #expect(dynamic.needsToken)
            #expect(throws: ConfigurationError.self) { try Route.parse("/vnc=127.0.0.1:5900,auth=password") }
            for route in [guarded, dynamic] {
                #expect {
                    try FerryConfiguration(listeners: [ListenAddress(host: "127.0.0.1", port: 0)], routes: [route])
                } throws: { error in
                    (error as? ConfigurationError)?.description.contains("--token-file") ?? false
                }
            }
        }

        @Test("auth flags become AuthOptions")
        func flags() throws {
            try AuthTempFolder.withSync { folder in
                let tokens = try folder.write("tokens", "t: 127.0.0.1:5900\n")
                let key = try folder.write("key", AuthJWT.hmacSecret() + "\n")
                let (configuration, _) = try FerryFlags.configuration([
                    "--listen", "127.0.0.1:6080",
                    "--route", "/vnc=127.0.0.1:5900,auth=token",
                    "--route", "/connect=dynamic",
                    "--token-cookie", "ferry_token",
                    "--token-file", tokens,
                    "--jwt-key", key,
                    "--jwt-issuer", "issuer-a",
                    "--jwt-audience", "relay-a",
                    "--jwt-enforce-expiry-on-session",
                    "--allow-target", "10.0.0.0/8:5900-5999",
                    "--allow-target", "[fd00::/8]:*",
                ])
                let auth = configuration.auth
                #expect(auth.tokenCookie == "ferry_token")
                #expect(auth.tokenFilePath == tokens)
                #expect(auth.jwtKeyPath == key)
                #expect(auth.jwtIssuer == "issuer-a")
                #expect(auth.jwtAudience == "relay-a")
                #expect(auth.enforceExpiryOnSession)
                #expect(auth.allowedTargets.map(\.text) == ["10.0.0.0/8:5900-5999", "[fd00::/8]:*"])
            }
        }

        @Test("bad auth flags name the flag")
        func badFlags() throws {
            func problem(_ flags: [String], sourceLocation: SourceLocation = #_sourceLocation) -> ConfigurationError? {
                FerryFlags.problem(["--listen", "127.0.0.1:6080", "--route", "/vnc=127.0.0.1:5900"] + flags, sourceLocation: sourceLocation)
            }
            #expect(problem(["--token-cookie", "bad name"])?.flag == "--token-cookie")
            #expect(problem(["--token-cookie", ""])?.flag == "--token-cookie")
            #expect(problem(["--token-file", "/nonexistent/ferry-tokens"])?.flag == "--token-file")
            #expect(problem(["--jwt-key", "/nonexistent/ferry-key"])?.flag == "--jwt-key")
            #expect(problem(["--jwt-enforce-expiry-on-session"])?.flag == "--jwt-enforce-expiry-on-session")
            #expect(problem(["--allow-target", "10.0.0.0/8"])?.flag == "--allow-target")
        }

        @Test("a short HMAC secret, or a PEM file that holds no key, is refused at start-up; a private key is used for its public half")
        func badKeys() async throws {
            try await AuthTempFolder.with { folder in
                let short = try folder.write("short", "too-short-secret\n")
                await #expect(throws: ConfigurationError.self) {
                    _ = try await JWTVerifier(keyPath: short, issuer: nil, audience: nil, leeway: .seconds(30))
                }
                let notAKey = try folder.write("cert.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
                await #expect {
                    _ = try await JWTVerifier(keyPath: notAKey, issuer: nil, audience: nil, leeway: .seconds(30))
                } throws: { error in
                    (error as? ConfigurationError)?.problem == "not a key"
                }
                let privatePEM = try folder.write("private.pem", ES256PrivateKey().pemRepresentation)
                _ = try await JWTVerifier(keyPath: privatePEM, issuer: nil, audience: nil, leeway: .seconds(30))
            }
        }
    }
}

extension AuthTempFolder {
    /// ``with(_:)`` for synchronous bodies.
    static func withSync<T>(_ body: (AuthTempFolder) throws -> T) throws -> T {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-auth-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try body(AuthTempFolder(path: path))
    }
}
