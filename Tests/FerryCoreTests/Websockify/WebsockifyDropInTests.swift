// The built `ferry`, run through a `websockify` link with websockify's exact argument lists, checked
// each time with a real WebSocket session to a real backend on 127.0.0.1.

import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Testing

@testable import FerryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension WebsockifyProcessTests {
    @Suite("Drop-in: websockify's command lines", .enabled(if: WebsockifyProcessTests.ferryBuilt, "the ferry executable is not built (swift build)"), .timeLimit(.minutes(1)))
    struct DropIn {
        // MARK: Forms

        @Test("websockify 127.0.0.1:PORT 127.0.0.1:TARGET (run through a 'websockify' link)")
        func plainForm() async throws {
            let folder = try WebsockifyFolder("plain")
            defer { folder.remove() }
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let port = try await FreePort.on()
            try await folder.run(["127.0.0.1:\(port)", backend.hostPort], listening: "127.0.0.1:\(port)") { ferry in
                #expect(ferry.runningAs == "ferry --listen 127.0.0.1:\(port) --route /=\(backend.hostPort) --idle-timeout 0", "\(ferry.output)")
                // noVNC's path, the root, anything: every path goes to the target.
                for path in ["/websockify", "/", "/some/where?x=1"] {
                    let client = try await DropInClient.upgrade(try DropInClient.local(port), path: path, protocols: ["binary"])
                    #expect(client.response.value("Sec-WebSocket-Protocol") == "binary")
                    try await DropInEcho.check(client)
                }
                #expect(backend.accepted == 3)
            }
        }

        @Test("ferry websockify ARGS: the same, without a link")
        func subcommandForm() async throws {
            let folder = try WebsockifyFolder("subcommand")
            defer { folder.remove() }
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let port = try await FreePort.on()
            let ferry = try #require(FerryExecutable.path)
            try await folder.run(["websockify", "127.0.0.1:\(port)", backend.hostPort], listening: "127.0.0.1:\(port)", executable: ferry) { process in
                #expect(process.output.contains("ferry (websockify command line): running as: ferry --listen 127.0.0.1:\(port)"), "\(process.output)")
                try await DropInEcho.check(try await DropInClient.upgrade(try DropInClient.local(port)))
            }
        }

        @Test("--unix-target=FILE 127.0.0.1:PORT: a Unix-socket backend")
        func unixTarget() async throws {
            let folder = try WebsockifyFolder("unix-target")
            defer { folder.remove() }
            let socket = folder.file("vnc.sock")
            let backend = try await TestBackend.start(.echo, unixSocketPath: socket)
            defer { Task { await backend.close() } }
            let port = try await FreePort.on()
            try await folder.run(["--unix-target=\(socket)", "127.0.0.1:\(port)"], listening: "127.0.0.1:\(port)") { ferry in
                #expect(ferry.runningAs?.contains("--route /=unix:\(socket)") == true, "\(ferry.output)")
                try await DropInEcho.check(try await DropInClient.upgrade(try DropInClient.local(port)))
                #expect(backend.accepted == 1)
            }
            // Relative, from the folder websockify is started in.
            let port2 = try await FreePort.on()
            try await folder.run(["--unix-target", "vnc.sock", "127.0.0.1:\(port2)"], listening: "127.0.0.1:\(port2)", log: "relative.log") { _ in
                try await DropInEcho.check(try await DropInClient.upgrade(try DropInClient.local(port2)))
            }
        }

        // MARK: Web files

        @Test("--web DIR --file-only: files are served, a folder gets no listing, WebSockets on the same port")
        func webFileOnly() async throws {
            let folder = try WebsockifyFolder("web")
            defer { folder.remove() }
            let web = try folder.makeDirectory("novnc")
            try folder.write("novnc/vnc.html", "<!doctype html><title>noVNC</title>\n")
            try folder.write("novnc/app/secret-name.js", "// app\n")
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let port = try await FreePort.on()
            try await folder.run(["--web", web, "--file-only", "127.0.0.1:\(port)", backend.hostPort], listening: "127.0.0.1:\(port)") { _ in
                let address = try DropInClient.local(port)
                let page = try await PlainHTTP.get(address, path: "/vnc.html", timeout: .seconds(10))
                #expect(page.status == 200, "\(page)")
                #expect(page.body == "<!doctype html><title>noVNC</title>\n")
                #expect(page.value("Content-Type")?.hasPrefix("text/html") == true, "\(page)")
                let script = try await PlainHTTP.get(address, path: "/app/secret-name.js", timeout: .seconds(10))
                #expect(script.status == 200 && script.body == "// app\n", "\(script)")

                for path in ["/app/", "/app", "/"] {
                    let listing = try await PlainHTTP.get(address, path: path, timeout: .seconds(10))
                    #expect(listing.status != 200, "\(path): \(listing)")
                    #expect(!listing.body.contains("secret-name"), "\(path) listed the folder: \(listing)")
                }
                #expect(try await PlainHTTP.get(address, path: "/missing.html", timeout: .seconds(10)).status == 404)
                try await DropInEcho.check(try await DropInClient.upgrade(address))
            }
        }

        @Test("--auth-plugin BasicHTTPAuth --auth-source USER:PASS --web-auth: files and upgrade need the credentials")
        func basicHTTPAuth() async throws {
            let folder = try WebsockifyFolder("basic")
            defer { folder.remove() }
            let web = try folder.makeDirectory("novnc")
            try folder.write("novnc/vnc.html", "<!doctype html><title>noVNC</title>\n")
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let port = try await FreePort.on()
            let arguments = ["--web", web, "--web-auth", "--auth-plugin", "BasicHTTPAuth", "--auth-source", "vnc:pa:ss word", "127.0.0.1:\(port)", backend.hostPort]
            try await folder.run(arguments, listening: "127.0.0.1:\(port)") { ferry in
                #expect(!ferry.output.contains("pa:ss word"), "the password was logged:\n\(ferry.output)")
                let address = try DropInClient.local(port)
                let good = "Basic " + Data("vnc:pa:ss word".utf8).base64EncodedString()
                let wrong = "Basic " + Data("vnc:nope".utf8).base64EncodedString()

                let page = try await PlainHTTP.get(address, path: "/vnc.html", timeout: .seconds(10))
                #expect(page.status == 401, "\(page)")
                #expect(page.value("WWW-Authenticate")?.hasPrefix("Basic realm=") == true, "\(page)")
                #expect(try await DropInClient.status(address, headers: [("Authorization", wrong)]) == 401)
                #expect(try await DropInClient.status(address) == 401)
                #expect(try await DropInClient.status(address, headers: [("Authorization", "Basic !!!")]) == 403)
                try await DropInEcho.check(try await DropInClient.upgrade(address, headers: [("Authorization", good)]))
            }
        }

        // MARK: TLS

        @Test("--cert FILE with the certificate and key in one file (websockify's self.pem), and ./self.pem by default", .enabled(if: OutsideTools.have("openssl"), OutsideTools.installHint("openssl")))
        func certificateAndKeyInOneFile() async throws {
            let folder = try WebsockifyFolder("self-pem")
            defer { folder.remove() }
            // The command websockify's documentation gives for self.pem.
            try OpenSSL(directory: folder.path).run([
                "req", "-new", "-x509", "-days", "365", "-nodes", "-subj", "/CN=localhost", "-out", "self.pem", "-keyout", "self.pem",
            ])
            let pem = try String(contentsOfFile: folder.file("self.pem"), encoding: .utf8)
            #expect(pem.contains("PRIVATE KEY-----") && pem.contains("BEGIN CERTIFICATE"))
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let pki = try TestPKI.shared()
            let anyCertificate = try TLSClient.configuration(trusting: pki.caPath, verification: .none)

            let port = try await FreePort.on()
            try await folder.run(["--cert", folder.file("self.pem"), "127.0.0.1:\(port)", backend.hostPort], listening: "127.0.0.1:\(port)") { ferry in
                #expect(ferry.runningAs?.contains("--tls-cert \(folder.file("self.pem")) --tls-key \(folder.file("self.pem"))") == true, "\(ferry.output)")
                let address = try DropInClient.local(port)
                let secure = try await DropInClient.upgradeTLS(address, configuration: anyCertificate)
                #expect(secure.peerCertificate != nil)
                try await DropInEcho.check(secure.client)
                // websockify serves ws:// on the same port unless --ssl-only.
                try await DropInEcho.check(try await DropInClient.upgrade(address))
            }

            // No --cert: websockify uses ./self.pem from the folder it is started in.
            let port2 = try await FreePort.on()
            try await folder.run(["127.0.0.1:\(port2)", backend.hostPort], listening: "127.0.0.1:\(port2)", log: "default.log") { ferry in
                #expect(ferry.runningAs?.contains("--tls-cert self.pem --tls-key self.pem") == true, "\(ferry.output)")
                let secure = try await DropInClient.upgradeTLS(try DropInClient.local(port2), configuration: anyCertificate)
                try await DropInEcho.check(secure.client)
            }
        }

        @Test("--cert CERT --key KEY: wss:// with a verified certificate", .enabled(if: OutsideTools.have("openssl"), OutsideTools.installHint("openssl")))
        func certificateAndKey() async throws {
            let folder = try WebsockifyFolder("cert-key")
            defer { folder.remove() }
            let pki = try TestPKI.shared()
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let port = try await FreePort.on()
            try await folder.run(
                ["--cert", pki.localhost.certificatePath, "--key", pki.localhost.keyPath, "127.0.0.1:\(port)", backend.hostPort],
                listening: "127.0.0.1:\(port)"
            ) { _ in
                let session = try await DropInClient.upgradeTLS(try DropInClient.local(port), configuration: try TLSClient.configuration(trusting: pki.caPath))
                #expect(session.peerSerial == TestPKI.localhostSerial)
                try await DropInEcho.check(session.client)
            }
        }

        @Test("--ssl-only: plain ws:// is refused, wss:// works", .enabled(if: OutsideTools.have("openssl"), OutsideTools.installHint("openssl")))
        func sslOnly() async throws {
            let folder = try WebsockifyFolder("ssl-only")
            defer { folder.remove() }
            let pki = try TestPKI.shared()
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let port = try await FreePort.on()
            try await folder.run(
                ["--ssl-only", "--cert", pki.localhost.certificatePath, "--key", pki.localhost.keyPath, "127.0.0.1:\(port)", backend.hostPort],
                listening: "127.0.0.1:\(port)"
            ) { ferry in
                #expect(ferry.runningAs?.contains("--tls-only") == true, "\(ferry.output)")
                let address = try DropInClient.local(port)
                let plain = try await DropInClient.attempt(address)
                #expect(plain.response.status == 400, "\(plain.response)")
                await plain.shutdown()
                let session = try await DropInClient.upgradeTLS(address, configuration: try TLSClient.configuration(trusting: pki.caPath))
                try await DropInEcho.check(session.client)
                #expect(backend.accepted == 1, "the refused plain client must not reach the backend")
            }
            // And websockify's refusal to start without the certificate.
            let (status, output) = try await folder.runToExit(["--ssl-only", "--cert", folder.file("missing.pem"), "127.0.0.1:\(port)", backend.hostPort])
            #expect(status == 2, "\(output)")
            #expect(output.contains("--ssl-only") && output.contains("missing.pem"), "\(output)")
        }

        @Test("--ssl-target: a TLS backend, trusted with Ferry's --backend-ca added to the command line", .enabled(if: OutsideTools.have("openssl"), OutsideTools.installHint("openssl")))
        func sslTarget() async throws {
            let folder = try WebsockifyFolder("ssl-target")
            defer { folder.remove() }
            let pki = try TestPKI.shared()
            let backend = try await TLSEchoBackend.start(pki.localhost)
            defer { Task { await backend.close() } }
            let target = "127.0.0.1:\(backend.port)"

            // The test CA is not in the system store: without --backend-ca the backend handshake fails
            // and the client gets 502 before any upgrade.
            let port = try await FreePort.on()
            try await folder.run(["--ssl-target", "127.0.0.1:\(port)", target], listening: "127.0.0.1:\(port)") { ferry in
                #expect(ferry.runningAs == "ferry --listen 127.0.0.1:\(port) --route /=tls://\(target) --idle-timeout 0", "\(ferry.output)")
                let status = try await DropInClient.status(try DropInClient.local(port))
                #expect(status == 502)
            }

            let port2 = try await FreePort.on()
            try await folder.run(["--ssl-target", "127.0.0.1:\(port2)", target, "--backend-ca", pki.caPath], listening: "127.0.0.1:\(port2)", log: "trusted.log") { ferry in
                #expect(ferry.runningAs?.hasSuffix("--backend-ca \(pki.caPath)") == true, "\(ferry.output)")
                try await DropInEcho.check(try await DropInClient.upgrade(try DropInClient.local(port2)))
            }
        }

        @Test("--verify-client --cafile: a client certificate from the CA is required", .enabled(if: OutsideTools.have("openssl"), OutsideTools.installHint("openssl")))
        func verifyClient() async throws {
            let folder = try WebsockifyFolder("verify-client")
            defer { folder.remove() }
            let pki = try TestPKI.shared()
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let port = try await FreePort.on()
            try await folder.run(
                ["--cert", pki.localhost.certificatePath, "--key", pki.localhost.keyPath, "--verify-client", "--cafile", pki.caPath, "127.0.0.1:\(port)", backend.hostPort],
                listening: "127.0.0.1:\(port)"
            ) { _ in
                let address = try DropInClient.local(port)
                let (anonymous, _) = try await DropInClient.attemptTLS(address, configuration: try TLSClient.configuration(trusting: pki.caPath))
                #expect(anonymous.failedInTLS, "\(anonymous)")
                let (foreign, _) = try await DropInClient.attemptTLS(address, configuration: try TLSClient.configuration(trusting: pki.caPath, certificate: pki.foreignAlice))
                #expect(foreign.failedInTLS, "\(foreign)")
                #expect(backend.accepted == 0)

                let alice = try await DropInClient.upgradeTLS(address, configuration: try TLSClient.configuration(trusting: pki.caPath, certificate: pki.alice))
                try await DropInEcho.check(alice.client)
            }
        }

        @Test("--ssl-version tlsv1_3: a TLS 1.2-only client is refused", .enabled(if: OutsideTools.have("openssl"), OutsideTools.installHint("openssl")))
        func sslVersion() async throws {
            let folder = try WebsockifyFolder("ssl-version")
            defer { folder.remove() }
            let pki = try TestPKI.shared()
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let port = try await FreePort.on()
            try await folder.run(
                ["--cert", pki.localhost.certificatePath, "--key", pki.localhost.keyPath, "--ssl-version", "tlsv1_3", "127.0.0.1:\(port)", backend.hostPort],
                listening: "127.0.0.1:\(port)"
            ) { _ in
                let address = try DropInClient.local(port)
                let (old, _) = try await DropInClient.attemptTLS(address, configuration: try TLSClient.configuration(trusting: pki.caPath, maximumVersion: .tlsv12))
                #expect(old.failedInTLS, "\(old)")
                let session = try await DropInClient.upgradeTLS(address, configuration: try TLSClient.configuration(trusting: pki.caPath))
                #expect(session.tlsVersion == .tlsv13)
                try await DropInEcho.check(session.client)
            }
        }

        // MARK: Keepalive

        @Test("--heartbeat 1: the client is pinged within about 2 s")
        func heartbeat() async throws {
            let folder = try WebsockifyFolder("heartbeat")
            defer { folder.remove() }
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let port = try await FreePort.on()
            try await folder.run(["--heartbeat", "1", "127.0.0.1:\(port)", backend.hostPort], listening: "127.0.0.1:\(port)") { ferry in
                #expect(ferry.runningAs?.contains("--ping-interval 1s") == true, "\(ferry.output)")
                let client = try await DropInClient.upgrade(try DropInClient.local(port))
                let clock = ContinuousClock()
                let start = clock.now
                var pinged = false
                while !pinged && start.duration(to: clock.now) < .milliseconds(2500) {
                    let frame = try await client.receiveFrame(timeout: .milliseconds(2500))
                    pinged = frame.opcode == WSFrame.ping
                }
                #expect(pinged, "no ping within 2.5 s")
                // websockify pings every --heartbeat seconds; the client answered the first ping
                // (the test client pongs), so the next one is due about 1 s later.
                let second = try await client.receiveFrame(timeout: .milliseconds(2500))
                #expect(second.opcode == WSFrame.ping)
                try await DropInEcho.check(client)
            }
        }

        // MARK: Token plugins

        /// A token file: `abc` and `vm-2` on two backends, and a websockify `unix_socket:` target.
        @Test("--token-plugin TokenFile|ReadOnlyTokenFile --token-source FILE: /websockify?token=, 403 unknown, 401 missing", arguments: ["TokenFile", "ReadOnlyTokenFile"])
        func tokenFile(plugin: String) async throws {
            let folder = try WebsockifyFolder("token-file")
            defer { folder.remove() }
            let first = try await TestBackend.start(.echo)
            defer { Task { await first.close() } }
            let second = try await TestBackend.start(.echo)
            defer { Task { await second.close() } }
            let tokens = try folder.write("tokens.cfg", "# websockify token file\nabc: \(first.hostPort)\nvm-2: \(second.hostPort)\n")
            let port = try await FreePort.on()
            try await folder.run(["--token-plugin", plugin, "--token-source", tokens, "127.0.0.1:\(port)"], listening: "127.0.0.1:\(port)") { ferry in
                #expect(ferry.runningAs?.contains("--token-file \(tokens) --route /=dynamic --allow-target any") == true, "\(ferry.output)")
                let address = try DropInClient.local(port)
                try await DropInEcho.check(try await DropInClient.upgrade(address, path: "/websockify?token=abc"))
                #expect(first.accepted == 1 && second.accepted == 0)
                try await DropInEcho.check(try await DropInClient.upgrade(address, path: "/websockify?token=vm-2"))
                #expect(second.accepted == 1)
                // noVNC puts the token in the query of any path.
                try await DropInEcho.check(try await DropInClient.upgrade(address, path: "/?token=abc"))
                #expect(first.accepted == 2)

                #expect(try await DropInClient.status(address, path: "/websockify?token=nope") == 403)
                #expect(try await DropInClient.status(address, path: "/websockify") == 401)
                #expect(first.accepted == 2 && second.accepted == 1)
            }
        }

        @Test("--token-plugin JSONTokenApi --token-source URL: the service's {\"host\", \"port\"} answer picks the target")
        func jsonTokenApi() async throws {
            let folder = try WebsockifyFolder("json-token-api")
            defer { folder.remove() }
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            // websockify's JSONTokenApi GETs the source with the token in place of %s and reads host and port.
            let service = try await TestAuthService.start { asked in
                asked.uri == "/token/abc"
                    ? TestAuthService.Reply(headers: [("Content-Type", "application/json")], body: #"{"host": "127.0.0.1", "port": \#(backend.port)}"#)
                    : TestAuthService.Reply(status: 404, body: "no such token")
            }
            defer { Task { await service.close() } }
            let source = service.base + "/token/%s"
            let port = try await FreePort.on()
            try await folder.run(["--token-plugin", "JSONTokenApi", "--token-source", source, "127.0.0.1:\(port)"], listening: "127.0.0.1:\(port)") { ferry in
                #expect(ferry.runningAs?.contains("--auth-url \(source) --route /=dynamic --allow-target any") == true, "\(ferry.output)")
                let address = try DropInClient.local(port)
                try await DropInEcho.check(try await DropInClient.upgrade(address, path: "/websockify?token=abc"))
                #expect(backend.accepted == 1)
                // websockify refuses a token the service does not know; Ferry fails closed with 503.
                #expect(try await DropInClient.status(address, path: "/websockify?token=nope") == 503)
                #expect(backend.accepted == 1)
                #expect(service.requests.map(\.uri) == ["/token/abc", "/token/nope"])
            }
        }

        @Test("--token-plugin TokenFile --token-source DIR: a token folder, OpenStack style, and a file added later")
        func tokenDirectory() async throws {
            let folder = try WebsockifyFolder("token-dir")
            defer { folder.remove() }
            let a = try await TestBackend.start(.echo)
            defer { Task { await a.close() } }
            let b = try await TestBackend.start(.echo)
            defer { Task { await b.close() } }
            let directory = try folder.makeDirectory("vnc-tokens")
            // One file per instance, each with `token: host:port` lines, as console proxies write them.
            try folder.write("vnc-tokens/instance-0001", "# instance-0001\n5c1bd5a0-0f2e-4a5e-9c3e-1a2b3c4d5e6f: \(a.hostPort)\n")
            try folder.write("vnc-tokens/instance-0002", "8d7f6e5c-4b3a-2918-7766-554433221100: \(b.hostPort)\n\nsecond-token: \(a.hostPort)\n")
            let port = try await FreePort.on()
            try await folder.run(["--token-plugin", "TokenFile", "--token-source", directory, "127.0.0.1:\(port)"], listening: "127.0.0.1:\(port)") { ferry in
                let address = try DropInClient.local(port)
                try await DropInEcho.check(try await DropInClient.upgrade(address, path: "/websockify?token=5c1bd5a0-0f2e-4a5e-9c3e-1a2b3c4d5e6f"))
                #expect(a.accepted == 1 && b.accepted == 0)
                try await DropInEcho.check(try await DropInClient.upgrade(address, path: "/websockify?token=8d7f6e5c-4b3a-2918-7766-554433221100"))
                #expect(b.accepted == 1)
                try await DropInEcho.check(try await DropInClient.upgrade(address, path: "/websockify?token=second-token"))
                #expect(a.accepted == 2)
                #expect(try await DropInClient.status(address, path: "/websockify?token=instance-0001") == 403)
                #expect(try await DropInClient.status(address, path: "/websockify?token=") == 401, "an empty token is no token")

                // websockify's TokenFile reads the folder on each connection: a new instance's file
                // works without a restart. Ferry notices the change within a few seconds; the test
                // waits for its reload line rather than polling with an unknown token (Ferry answers
                // 429 after 10 failed tokens a minute from one address).
                let reloadsBefore = ferry.output.components(separatedBy: "token file reloaded").count
                try folder.write("vnc-tokens/instance-0003", "late-token: \(b.hostPort)\n")
                let reloaded = await Relay.eventually(timeout: .seconds(10)) { ferry.output.components(separatedBy: "token file reloaded").count > reloadsBefore }
                #expect(reloaded, "no reload within 10 s of a new file in the token folder:\n\(ferry.output)")
                try await DropInEcho.check(try await DropInClient.upgrade(address, path: "/websockify?token=late-token"))
                #expect(b.accepted == 2)
            }
        }

        @Test("TokenFile: websockify's 'token: unix_socket:/path' target is a Unix socket")
        func tokenFileUnixSocketTarget() async throws {
            let folder = try WebsockifyFolder("token-unix")
            defer { folder.remove() }
            let socket = folder.file("console.sock")
            let backend = try await TestBackend.start(.echo, unixSocketPath: socket)
            defer { Task { await backend.close() } }
            let tokens = try folder.write("tokens", "console: unix_socket:\(socket)\n")
            let port = try await FreePort.on()
            // websockify's TokenFile returns ['unix_socket', PATH] for such a line and connects to the socket.
            try await folder.run(["--token-plugin", "TokenFile", "--token-source", tokens, "127.0.0.1:\(port)"], listening: "127.0.0.1:\(port)") { _ in
                try await DropInEcho.check(try await DropInClient.upgrade(try DropInClient.local(port), path: "/websockify?token=console"))
            }
        }

        @Test("--token-plugin TokenFileName --token-source DIR: the file name is the token", .enabled(if: OutsideTools.have("openssl"), OutsideTools.installHint("openssl")))
        func tokenFileName() async throws {
            let folder = try WebsockifyFolder("token-filename")
            defer { folder.remove() }
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let directory = try folder.makeDirectory("targets")
            try folder.write("targets/vm1", "\(backend.hostPort)\n")
            let port = try await FreePort.on()
            try await folder.run(["--token-plugin", "TokenFileName", "--token-source", directory, "127.0.0.1:\(port)"], listening: "127.0.0.1:\(port)") { ferry in
                #expect(ferry.runningAs?.contains("--token-filenames \(directory)") == true, "\(ferry.output)")
                let address = try DropInClient.local(port)
                try await DropInEcho.check(try await DropInClient.upgrade(address, path: "/websockify?token=vm1"))
                #expect(try await DropInClient.status(address, path: "/websockify?token=vm2") == 403)
                #expect(try await DropInClient.status(address, path: "/websockify") == 401)
                #expect(backend.accepted == 1)
            }
        }

        /// Key files for JWTTokenApi, made with openssl, and the algorithm jwcrypto signs with.
        enum JWTKeyKind: String, CaseIterable, Sendable {
            case rsaPrivate = "RSA private key (PKCS#8)"
            case rsaTraditional = "RSA private key (BEGIN RSA PRIVATE KEY)"
            case rsaPublic = "RSA public key"
            case ecPrivate = "EC P-256 private key (BEGIN EC PRIVATE KEY)"

            var algorithm: String { self == .ecPrivate ? "ES256" : "RS256" }

            /// Writes the key websockify is given; returns (that file, the private key file to sign with).
            func make(in folder: WebsockifyFolder) throws -> (source: String, signing: String) {
                let openssl = OpenSSL(directory: folder.path)
                switch self {
                case .rsaPrivate:
                    try openssl.run(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "private.pem"])
                    return (folder.file("private.pem"), folder.file("private.pem"))
                case .rsaTraditional:
                    try openssl.run(["genrsa", "-traditional", "-out", "private.pem", "2048"])
                    return (folder.file("private.pem"), folder.file("private.pem"))
                case .rsaPublic:
                    try openssl.run(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "private.pem"])
                    try openssl.run(["pkey", "-in", "private.pem", "-pubout", "-out", "public.pem"])
                    return (folder.file("public.pem"), folder.file("private.pem"))
                case .ecPrivate:
                    try openssl.run(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "private.pem"])
                    return (folder.file("private.pem"), folder.file("private.pem"))
                }
            }
        }

        @Test(
            "--token-plugin JWTTokenApi --token-source KEYFILE: a token signed by jwcrypto from the key file",
            .enabled(if: OutsideTools.python("jwcrypto"), OutsideTools.pipHint("jwcrypto")),
            arguments: JWTKeyKind.allCases
        )
        func jwtWithKeyFile(kind: JWTKeyKind) async throws {
            let folder = try WebsockifyFolder("jwt-pem")
            defer { folder.remove() }
            let (source, signing) = try kind.make(in: folder)
            try await Self.checkJWT(folder: folder, keySource: source, signingKey: signing, algorithm: kind.algorithm)
        }

        @Test(
            "--token-plugin JWTTokenApi --token-source SECRETFILE: the file is a JWK 'k' (base64url), HS256",
            .enabled(if: OutsideTools.python("jwcrypto"), OutsideTools.pipHint("jwcrypto"))
        )
        func jwtWithSymmetricKey() async throws {
            let folder = try WebsockifyFolder("jwt-oct")
            defer { folder.remove() }
            // 48 random bytes, base64url without padding: what `JWK(kty='oct', k=...)` takes.
            let secret = Data((0..<48).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            let keyFile = try folder.write("symmetric.key", secret)
            try await Self.checkJWT(folder: folder, keySource: keyFile, signingKey: keyFile, algorithm: "HS256")
        }

        /// Runs websockify with JWTTokenApi and checks: port as a number and as a string, expired,
        /// not yet valid, signed by another key, missing.
        static func checkJWT(folder: WebsockifyFolder, keySource: String, signingKey: String, algorithm: String) async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let now = Int(Date().timeIntervalSince1970)
            let numeric = try Python.signJWT(keyFile: signingKey, algorithm: algorithm, claims: #"{"host": "127.0.0.1", "port": \#(backend.port)}"#)
            let string = try Python.signJWT(keyFile: signingKey, algorithm: algorithm, claims: #"{"host": "127.0.0.1", "port": "\#(backend.port)", "exp": \#(now + 600)}"#)
            let expired = try Python.signJWT(keyFile: signingKey, algorithm: algorithm, claims: #"{"host": "127.0.0.1", "port": \#(backend.port), "exp": \#(now - 3600)}"#)
            let early = try Python.signJWT(keyFile: signingKey, algorithm: algorithm, claims: #"{"host": "127.0.0.1", "port": \#(backend.port), "nbf": \#(now + 3600)}"#)
            let strangerKey = try folder.write("stranger.key", "c3RyYW5nZXItc3RyYW5nZXItc3RyYW5nZXItc3RyYW5nZXItc3RyYW5nZXI")
            let forged = try Python.signJWT(keyFile: strangerKey, algorithm: "HS256", claims: #"{"host": "127.0.0.1", "port": \#(backend.port)}"#)

            let port = try await FreePort.on()
            try await folder.run(["--token-plugin", "JWTTokenApi", "--token-source", keySource, "127.0.0.1:\(port)"], listening: "127.0.0.1:\(port)") { ferry in
                #expect(ferry.runningAs?.contains("--jwt-key \(keySource)") == true, "\(ferry.output)")
                let address = try DropInClient.local(port)
                try await DropInEcho.check(try await DropInClient.upgrade(address, path: "/websockify?token=\(numeric)"))
                try await DropInEcho.check(try await DropInClient.upgrade(address, path: "/websockify?token=\(string)"))
                #expect(backend.accepted == 2)
                #expect(try await DropInClient.status(address, path: "/websockify?token=\(expired)") == 403)
                #expect(try await DropInClient.status(address, path: "/websockify?token=\(early)") == 403)
                #expect(try await DropInClient.status(address, path: "/websockify?token=\(forged)") == 403)
                #expect(try await DropInClient.status(address, path: "/websockify") == 401)
                #expect(backend.accepted == 2)
            }
        }

        @Test("TokenFile lines websockify reads: a tab after the colon, CRLF line ends")
        func tokenFileLineVariants() async throws {
            let folder = try WebsockifyFolder("token-lines")
            defer { folder.remove() }
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            // websockify splits each line on ':' followed by any white space (re.split(r':\s', line)).
            let tabbed = try folder.write("tabbed", "tab:\t\(backend.hostPort)\r\ncrlf: \(backend.hostPort)\r\n")
            let crlf = try folder.write("crlf", "crlf: \(backend.hostPort)\r\n  # indented comment\r\n")
            let port = try await FreePort.on()
            try await folder.run(["--token-plugin", "TokenFile", "--token-source", crlf, "127.0.0.1:\(port)"], listening: "127.0.0.1:\(port)") { _ in
                try await DropInEcho.check(try await DropInClient.upgrade(try DropInClient.local(port), path: "/websockify?token=crlf"))
            }
            let port2 = try await FreePort.on()
            try await folder.run(["--token-plugin", "TokenFile", "--token-source", tabbed, "127.0.0.1:\(port2)"], listening: "127.0.0.1:\(port2)", log: "tabbed.log") { _ in
                try await DropInEcho.check(try await DropInClient.upgrade(try DropInClient.local(port2), path: "/websockify?token=tab"))
            }
        }

        @Test("--token-plugin UnixDomainSocketDirectory --token-source DIR: the token names a socket; ../x is refused")
        func unixDomainSocketDirectory() async throws {
            let folder = try WebsockifyFolder("uds-dir")
            defer { folder.remove() }
            let directory = try folder.makeDirectory("consoles")
            let inside = try await TestBackend.start(.echo, unixSocketPath: directory + "/vm1")
            defer { Task { await inside.close() } }
            // A socket beside the folder, which '../outside' would reach.
            let outside = try await TestBackend.start(.echo, unixSocketPath: folder.file("outside"))
            defer { Task { await outside.close() } }
            try folder.write("consoles/not-a-socket", "x\n")
            let port = try await FreePort.on()
            try await folder.run(["--token-plugin", "UnixDomainSocketDirectory", "--token-source", directory, "127.0.0.1:\(port)"], listening: "127.0.0.1:\(port)") { ferry in
                #expect(ferry.runningAs?.contains("--token-sockets \(directory)") == true, "\(ferry.output)")
                let address = try DropInClient.local(port)
                try await DropInEcho.check(try await DropInClient.upgrade(address, path: "/websockify?token=vm1"))
                #expect(inside.accepted == 1)
                for token in ["../outside", "..%2Foutside", "vm2", "not-a-socket", "/etc/passwd"] {
                    let status = try await DropInClient.status(address, path: "/websockify?token=\(token)")
                    #expect(status == 403, "\(token): \(status)")
                }
                #expect(try await DropInClient.status(address, path: "/websockify") == 401)
                #expect(outside.accepted == 0)
            }
        }

        @Test("--host-token: the token is the Host header's name")
        func hostToken() async throws {
            let folder = try WebsockifyFolder("host-token")
            defer { folder.remove() }
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let tokens = try folder.write("tokens", "vm1.consoles.example: \(backend.hostPort)\n")
            let port = try await FreePort.on()
            try await folder.run(["--host-token", "--token-plugin", "TokenFile", "--token-source", tokens, "127.0.0.1:\(port)"], listening: "127.0.0.1:\(port)") { ferry in
                #expect(ferry.runningAs?.contains("--token-from-host") == true, "\(ferry.output)")
                let address = try DropInClient.local(port)
                try await DropInEcho.check(try await DropInClient.upgrade(address, host: "vm1.consoles.example:\(port)"))
                try await DropInEcho.check(try await DropInClient.upgrade(address, host: "vm1.consoles.example"))
                #expect(try await DropInClient.status(address, host: "vm2.consoles.example:\(port)") == 403)
                // With --host-token the query is not read.
                #expect(try await DropInClient.status(address, path: "/websockify?token=vm1.consoles.example") != 101)
                #expect(backend.accepted == 2)
            }
        }

        // MARK: Auth plugins

        @Test("--auth-plugin ExpectOrigin --auth-source 'A B': listed origins in; another origin and none 403")
        func expectOrigin() async throws {
            let folder = try WebsockifyFolder("expect-origin")
            defer { folder.remove() }
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let port = try await FreePort.on()
            try await folder.run(
                ["--auth-plugin", "ExpectOrigin", "--auth-source", "https://a.example https://b.example", "127.0.0.1:\(port)", backend.hostPort],
                listening: "127.0.0.1:\(port)"
            ) { _ in
                let address = try DropInClient.local(port)
                try await DropInEcho.check(try await DropInClient.upgrade(address, headers: [("Origin", "https://a.example")]))
                try await DropInEcho.check(try await DropInClient.upgrade(address, headers: [("Origin", "https://b.example")]))
                #expect(try await DropInClient.status(address, headers: [("Origin", "https://c.example")]) == 403)
                #expect(try await DropInClient.status(address, headers: [("Origin", "http://127.0.0.1:\(port)")]) == 403)
                #expect(try await DropInClient.status(address) == 403)
                #expect(backend.accepted == 2)
            }
        }

        @Test("--auth-plugin ClientCertCNAuth --auth-source alice with --verify-client: alice in, mallory 403", .enabled(if: OutsideTools.have("openssl"), OutsideTools.installHint("openssl")))
        func clientCertCNAuth() async throws {
            let folder = try WebsockifyFolder("client-cn")
            defer { folder.remove() }
            let pki = try TestPKI.shared()
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let port = try await FreePort.on()
            try await folder.run(
                [
                    "--cert", pki.localhost.certificatePath, "--key", pki.localhost.keyPath, "--verify-client", "--cafile", pki.caPath,
                    "--auth-plugin", "ClientCertCNAuth", "--auth-source", "alice", "127.0.0.1:\(port)", backend.hostPort,
                ],
                listening: "127.0.0.1:\(port)"
            ) { _ in
                let address = try DropInClient.local(port)
                let alice = try await DropInClient.upgradeTLS(address, configuration: try TLSClient.configuration(trusting: pki.caPath, certificate: pki.alice))
                try await DropInEcho.check(alice.client)
                let (mallory, session) = try await DropInClient.attemptTLS(
                    address, configuration: try TLSClient.configuration(trusting: pki.caPath, certificate: pki.mallory), headers: [("SSL_CLIENT_S_DN_CN", "alice")]
                )
                #expect(mallory.status == 403, "\(mallory)")
                await session?.shutdown()
                #expect(backend.accepted == 1)
            }
        }

        // MARK: Logging

        @Test("-v: debug lines appear (and not without it)")
        func verbose() async throws {
            let folder = try WebsockifyFolder("verbose")
            defer { folder.remove() }
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            for verbose in [true, false] {
                let port = try await FreePort.on()
                let arguments = (verbose ? ["-v"] : []) + ["127.0.0.1:\(port)", backend.hostPort]
                try await folder.run(arguments, listening: "127.0.0.1:\(port)", log: "verbose-\(verbose).log") { ferry in
                    try await DropInEcho.check(try await DropInClient.upgrade(try DropInClient.local(port)))
                    let logged = await ferry.waitForOutput("session started", timeout: verbose ? .seconds(5) : .milliseconds(300))
                    #expect(logged == verbose, "\(arguments):\n\(ferry.output)")
                }
            }
        }

        @Test("--log-file FILE: the log lines also go to the file")
        func logFile() async throws {
            let folder = try WebsockifyFolder("log-file")
            defer { folder.remove() }
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let port = try await FreePort.on()
            try await folder.run(["--log-file", "ws.log", "127.0.0.1:\(port)", backend.hostPort], listening: "127.0.0.1:\(port)") { _ in
                try await DropInEcho.check(try await DropInClient.upgrade(try DropInClient.local(port)))
                let logged = await Relay.eventually(timeout: .seconds(5)) {
                    let text = (try? String(contentsOfFile: folder.file("ws.log"), encoding: .utf8)) ?? ""
                    return text.contains("listening address=127.0.0.1:\(port)") && text.split(separator: "\n").count >= 2
                }
                #expect(logged, "\((try? String(contentsOfFile: folder.file("ws.log"), encoding: .utf8)) ?? "no ws.log")")
            }
        }

        // MARK: Accepted with a warning, refused

        @Test("-D goes to the background once listening (exit 0, the relay keeps working); --libserver, --traffic warn")
        func backgroundAndWarnings() async throws {
            let folder = try WebsockifyFolder("warnings")
            defer { folder.remove() }
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let port = try await FreePort.on()
            let (status, output) = try await folder.runToExit(["-D", "--libserver", "--traffic", "--log-file", folder.file("daemon.log"), "127.0.0.1:\(port)", backend.hostPort])
            #expect(status == 0, "\(output)")
            for flag in ["-D/--daemon", "--libserver", "--traffic"] {
                #expect(output.contains("ferry (websockify command line): warning: \(flag):"), "\(flag):\n\(output)")
            }
            #expect(output.contains("listening address=127.0.0.1:\(port)"), "\(output)")
            let pidText = output.split(separator: "\n").first { $0.contains("running in the background as process ") }?.split(separator: " ").last
            let pid = try #require(pidText.flatMap { pid_t(String($0)) }, "\(output)")
            defer {
                kill(pid, SIGKILL)
            }
            #expect(kill(pid, 0) == 0, "the background relay is alive")
            try await DropInEcho.check(try await DropInClient.upgrade(try DropInClient.local(port)))
            // Its logs now go to --log-file only.
            let logged = (try? String(contentsOfFile: folder.file("daemon.log"), encoding: .utf8)) ?? ""
            #expect(logged.contains("listening"), "\(logged)")
            kill(pid, SIGINT)
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: .seconds(5))
            while kill(pid, 0) == 0 && clock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(kill(pid, 0) != 0, "the background relay stops on SIGINT")
        }

        @Test("-D passes on a start-up failure and its status")
        func backgroundFailure() async throws {
            let folder = try WebsockifyFolder("daemon-fail")
            defer { folder.remove() }
            let busy = try await ServerBootstrap(group: IntegrationLoops.group).bind(host: "127.0.0.1", port: 0).get()
            let port = busy.localAddress!.port!
            let (status, output) = try await folder.runToExit(["-D", "127.0.0.1:\(port)", "127.0.0.1:5900"])
            try await busy.close()
            #expect(status == 2, "\(output)")
            #expect(output.contains("address already in use (another process listens there; pick another port)"), "\(output)")
            #expect(!output.contains("running in the background"), "\(output)")
        }

        @Test("unsupported flags and plugins: exit status 2, a message naming them and the Ferry way")
        func unsupported() async throws {
            let folder = try WebsockifyFolder("unsupported")
            defer { folder.remove() }
            let port = try await FreePort.on()
            let cases: [([String], String)] = [
                (["--key-password", "x"], "--key-password"),
                (["--inetd"], "--inetd"),
                (["--syslog", "/dev/log"], "--syslog"),
                (["--token-plugin", "BaseTokenAPI", "--token-source", "http://127.0.0.1:1/%s"], "BaseTokenAPI"),
            ]
            for (flags, name) in cases {
                let target = flags.first == "--token-plugin" ? [] : ["127.0.0.1:9"]
                let (status, output) = try await folder.runToExit(flags + ["127.0.0.1:\(port)"] + target)
                #expect(status == 2, "\(flags): status \(String(describing: status))\n\(output)")
                #expect(output.contains("ferry (websockify command line): ") && output.contains(name) && output.contains("instead"), "\(flags):\n\(output)")
                #expect(!output.contains("listening"), "\(flags) started anyway:\n\(output)")
            }
            let (wrapStatus, wrapOutput) = try await folder.runToExit(["127.0.0.1:\(port)", "--", "Xvnc", ":1"])
            #expect(wrapStatus == 2 && wrapOutput.contains("wrap mode"), "\(wrapOutput)")
            let (fewStatus, fewOutput) = try await folder.runToExit(["127.0.0.1:\(port)"])
            #expect(fewStatus == 2 && fewOutput.contains("too few arguments"), "\(fewOutput)")
            // An option websockify itself does not have: Ferry's front names it.
            let (unknownStatus, unknownOutput) = try await folder.runToExit(["--no-such-option=1", "127.0.0.1:\(port)", "127.0.0.1:9"])
            #expect(unknownStatus != 0 && unknownStatus != nil && unknownOutput.contains("--no-such-option"), "\(String(describing: unknownStatus)): \(unknownOutput)")
        }

        @Test("--help prints websockify's usage")
        func help() async throws {
            let folder = try WebsockifyFolder("help")
            defer { folder.remove() }
            let (status, output) = try await folder.runToExit(["--help"])
            #expect(status == 0)
            #expect(output.contains("usage: websockify [options] [source_addr:]source_port target_addr:target_port"), "\(output)")
        }

        // MARK: IPv6

        @Test("--prefer-ipv6 with a bare port: listens on [::], reachable on ::1", .enabled(if: FreePort.hasIPv6Loopback, "no IPv6 loopback on this machine"))
        func preferIPv6() async throws {
            let folder = try WebsockifyFolder("ipv6")
            defer { folder.remove() }
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let port = try await FreePort.on("::")
            try await folder.run(["--prefer-ipv6", "\(port)", backend.hostPort], listening: "[::]:\(port)") { ferry in
                #expect(ferry.runningAs?.hasPrefix("ferry --listen [::]:\(port) ") == true, "\(ferry.output)")
                try await DropInEcho.check(try await DropInClient.upgrade(try SocketAddress(ipAddress: "::1", port: port)))
                // websockify's IPv6 socket is dual-stack: IPv4 clients get in too.
                try await DropInEcho.check(try await DropInClient.upgrade(try DropInClient.local(port)))
            }
            // And an IPv6 target, written as websockify takes it (no brackets).
            let v6Backend = try await TestBackend.start(.echo, host: "::1")
            defer { Task { await v6Backend.close() } }
            let port2 = try await FreePort.on()
            try await folder.run(["127.0.0.1:\(port2)", "::1:\(v6Backend.port)"], listening: "127.0.0.1:\(port2)", log: "v6-target.log") { _ in
                try await DropInEcho.check(try await DropInClient.upgrade(try DropInClient.local(port2)))
                #expect(v6Backend.accepted == 1)
            }
        }
    }
}
