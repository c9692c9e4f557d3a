import Foundation
import NIOCore
import Testing

@testable import FerryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension OperationsTests {
    /// `--config` with the real `ferry` executable: started from a file and `FERRY_*` variables, the
    /// file edited while sessions run (routes added, removed, changed; a broken edit; a change that
    /// needs a restart), picked up on SIGHUP and by the watch (a ConfigMap-style symlink swap), and
    /// `--reload-grace`.
    @Suite("Configuration file and live reload (ferry executable)", .enabled(if: FerryExecutable.path != nil, "the ferry executable is not built (swift build)"))
    struct ConfigReloadTests {
        /// Two echo backends, told apart by what they accepted.
        struct Backends {
            let a: TestBackend
            let b: TestBackend
            var aTarget: String { "127.0.0.1:\(self.a.address.port!)" }
            var bTarget: String { "127.0.0.1:\(self.b.address.port!)" }
        }

        static func withBackends<T>(_ body: (Backends) async throws -> T) async throws -> T {
            let a = try await TestBackend.start(.echo)
            let b = try await TestBackend.start(.echo)
            defer {
                Task {
                    await a.close()
                    await b.close()
                }
            }
            return try await body(Backends(a: a, b: b))
        }

        /// `ferry --listen 127.0.0.1:PORT --config PATH` plus `arguments`, started in `directory`;
        /// waits until it listens. `trap '' HUP` keeps an early SIGHUP from ending it.
        static func start(config path: String, arguments: [String] = [], environment: [String: String?] = [:], directory: String) async throws -> (ChildProcess, SocketAddress) {
            let executable = try #require(FerryExecutable.path)
            let port = try await FreePort.on()
            let ferry = try ChildProcess(
                executable: "/bin/sh",
                arguments: ["-c", "trap '' HUP; exec \"$0\" \"$@\"", executable, "--listen", "127.0.0.1:\(port)", "--config", path] + arguments,
                environment: environment,
                logPath: "\(directory)/ferry-\(UUID().uuidString.prefix(6)).log"
            )
            guard await ferry.waitForOutput("listening address=127.0.0.1:\(port)", timeout: .seconds(10)) else {
                await ferry.stop()
                throw ConfigReloadFailure(what: "ferry did not listen:\n\(ferry.output)")
            }
            return (ferry, try SocketAddress(ipAddress: "127.0.0.1", port: port))
        }

        /// Sends SIGHUP every 250 ms (at most 10 s) until the log has one more `text` than before.
        static func hangUp(_ ferry: ChildProcess, untilLogged text: String) async throws -> Bool {
            let before = ferry.output.components(separatedBy: text).count
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: .seconds(10))
            while clock.now < deadline && ferry.isRunning {
                kill(ferry.pid, SIGHUP)
                try await Task.sleep(for: .milliseconds(250))
                if ferry.output.components(separatedBy: text).count > before { return true }
            }
            return false
        }

        /// The status a handshake on `path` gets (101 when it upgrades).
        static func status(_ address: SocketAddress, _ path: String) async throws -> Int {
            let client = try await WSTestClient.open(to: address)
            defer { Task { await client.shutdown() } }
            try await client.sendHandshake(path: path, host: "127.0.0.1:\(address.port ?? 0)")
            return try await client.readResponse(timeout: .seconds(5)).status
        }

        static func yaml(routes: [(String, String)], extra: String = "") -> String {
            "routes:\n" + routes.map { "  - path: \($0.0)\n    target: \($0.1)\n" }.joined() + extra
        }

        @Test("SIGHUP applies added, removed and changed routes and limits; live sessions go on; a broken edit and a restart-only change are logged, and the last good routes stay", .timeLimit(.minutes(2)))
        func sighupReload() async throws {
            try await Self.withBackends { backends in
                let directory = try TLSFiles.makeDirectory("config-reload")
                defer { try? FileManager.default.removeItem(atPath: directory) }
                let path = "\(directory)/ferry.yaml"
                let first = Self.yaml(routes: [("/a", backends.aTarget), ("/b", backends.bTarget), ("/gone", backends.aTarget)], extra: "buffer-size: 256KiB\n")
                // Padded to a fixed size, so that rewrites keep size, inode and time: only SIGHUP, not
                // the 2-second watch, can notice them.
                try PaddedFile.write(path, contents: Data(first.utf8), size: 2048)
                let adminPort = try await FreePort.on()
                let (ferry, address) = try await Self.start(config: path, arguments: ["--admin-listen", "127.0.0.1:\(adminPort)"], directory: directory)
                do {
                    let onA = try await FerryBinary.upgrade(address, path: "/a")
                    let onGone = try await FerryBinary.upgrade(address, path: "/gone")
                    try await AuthClient.expectEcho(onA, "before")
                    #expect(try await Self.status(address, "/new") == 404)

                    let second = Self.yaml(routes: [("/a", backends.aTarget), ("/b", backends.aTarget), ("/new", backends.bTarget)], extra: "buffer-size: 256KiB\n")
                    try PaddedFile.rewriteKeepingStamp(path, contents: Data(second.utf8))
                    #expect(try await Self.hangUp(ferry, untilLogged: "configuration reloaded: "), "\(ferry.output)")
                    #expect(ferry.output.contains("configuration reloaded: routes +/new -/gone ~/b file="), "\(ferry.output)")

                    // New handshakes see the new table at once.
                    let bBefore = backends.b.accepted
                    #expect(try await Self.status(address, "/new") == 101)
                    #expect(await backends.b.waitForAccepted(bBefore + 1))
                    #expect(try await Self.status(address, "/gone") == 404)
                    let aBefore = backends.a.accepted
                    #expect(try await Self.status(address, "/b") == 101)
                    #expect(await backends.a.waitForAccepted(aBefore + 1), "/b now leads to backend A")
                    // Live sessions keep the target they were given, on a kept route and a removed one.
                    try await AuthClient.expectEcho(onA, "after")
                    try await AuthClient.expectEcho(onGone, "still here")

                    // A broken edit: logged with its line, and the routes stay.
                    try PaddedFile.rewriteKeepingStamp(path, contents: Data("routes:\n  - path: /x\n    target: [\n".utf8))
                    #expect(try await Self.hangUp(ferry, untilLogged: "configuration not reloaded"), "\(ferry.output)")
                    #expect(ferry.output.contains("the last good one stays: \(path):"), "\(ferry.output)")
                    #expect(try await Self.status(address, "/new") == 101)

                    // Limits change live; a change that needs a restart is named, and the rest of the
                    // same edit still applies.
                    let third = Self.yaml(routes: [("/a", backends.aTarget), ("/third", backends.bTarget)], extra: "buffer-size: 1MiB\ntrusted-proxy: [10.0.0.0/8]\n")
                    try PaddedFile.rewriteKeepingStamp(path, contents: Data(third.utf8))
                    #expect(try await Self.hangUp(ferry, untilLogged: "needs a restart"), "\(ferry.output)")
                    #expect(ferry.output.contains("routes +/third -/b -/new; limits bufferSize; needs a restart: --trusted-proxy"), "\(ferry.output)")
                    #expect(try await Self.status(address, "/third") == 101)
                    #expect(try await Self.status(address, "/new") == 404)

                    // Counted on /metrics.
                    let metrics = try await PlainHTTP.get(try SocketAddress(ipAddress: "127.0.0.1", port: adminPort), path: "/metrics")
                    // At least: a SIGHUP sent again before the log showed the last one reloads again.
                    func count(_ result: String) -> Int {
                        let prefix = #"ferry_config_reloads_total{result="\#(result)"} "#
                        return metrics.body.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Int($0.dropFirst(prefix.count)) } ?? 0
                    }
                    #expect(count("applied") >= 2 && count("failed") >= 1, "\(metrics.body)")
                    await onA.shutdown()
                    await onGone.shutdown()
                } catch {
                    await ferry.stop()
                    throw error
                }
                await ferry.stop()
            }
        }

        @Test("the watch picks up an edit without SIGHUP, also as a Kubernetes ConfigMap update shows (a symlink swap); the log level changes live", .timeLimit(.minutes(1)))
        func watchAndSymlinkSwap() async throws {
            try await Self.withBackends { backends in
                let directory = try TLSFiles.makeDirectory("config-watch")
                defer { try? FileManager.default.removeItem(atPath: directory) }
                // As the kubelet lays out a mounted ConfigMap: ferry.yaml -> ..data/ferry.yaml,
                // ..data -> ..v1; an update writes ..v2 and renames a new ..data link over the old.
                let fs = FileManager.default
                try fs.createDirectory(atPath: "\(directory)/..v1", withIntermediateDirectories: false)
                try Self.yaml(routes: [("/a", backends.aTarget)]).write(toFile: "\(directory)/..v1/ferry.yaml", atomically: true, encoding: .utf8)
                try fs.createSymbolicLink(atPath: "\(directory)/..data", withDestinationPath: "..v1")
                try fs.createSymbolicLink(atPath: "\(directory)/ferry.yaml", withDestinationPath: "..data/ferry.yaml")
                let (ferry, address) = try await Self.start(config: "\(directory)/ferry.yaml", directory: directory)
                do {
                    let session = try await FerryBinary.upgrade(address, path: "/a")
                    #expect(try await Self.status(address, "/swapped") == 404)
                    try fs.createDirectory(atPath: "\(directory)/..v2", withIntermediateDirectories: false)
                    try Self.yaml(routes: [("/a", backends.aTarget), ("/swapped", backends.bTarget)], extra: "log-level: debug\n").write(toFile: "\(directory)/..v2/ferry.yaml", atomically: true, encoding: .utf8)
                    try fs.createSymbolicLink(atPath: "\(directory)/..data_tmp", withDestinationPath: "..v2")
                    #expect(rename("\(directory)/..data_tmp", "\(directory)/..data") == 0)
                    try fs.removeItem(atPath: "\(directory)/..v1")
                    #expect(await ferry.waitForOutput("configuration reloaded: routes +/swapped; log level debug", timeout: .seconds(8)), "\(ferry.output)")
                    #expect(!ferry.output.contains("session started"), "no debug lines before")
                    #expect(try await Self.status(address, "/swapped") == 101)
                    #expect(await ferry.waitForOutput("session started", timeout: .seconds(3)), "the log level changed live:\n\(ferry.output)")
                    try await AuthClient.expectEcho(session, "unchanged route")
                    await session.shutdown()
                } catch {
                    await ferry.stop()
                    throw error
                }
                await ferry.stop()
            }
        }

        @Test("--reload-grace: sessions on a removed route get 1001 'route removed' after it; the others go on", .timeLimit(.minutes(1)))
        func reloadGrace() async throws {
            try await Self.withBackends { backends in
                let directory = try TLSFiles.makeDirectory("config-grace")
                defer { try? FileManager.default.removeItem(atPath: directory) }
                let path = "\(directory)/ferry.yaml"
                try Self.yaml(routes: [("/a", backends.aTarget), ("/gone", backends.bTarget)]).write(toFile: path, atomically: true, encoding: .utf8)
                let (ferry, address) = try await Self.start(config: path, environment: ["FERRY_RELOAD_GRACE": "300ms"], directory: directory)
                do {
                    let kept = try await FerryBinary.upgrade(address, path: "/a")
                    let doomed = try await FerryBinary.upgrade(address, path: "/gone")
                    try Self.yaml(routes: [("/a", backends.aTarget)]).write(toFile: path, atomically: true, encoding: .utf8)
                    #expect(try await Self.hangUp(ferry, untilLogged: "configuration reloaded: routes -/gone"), "\(ferry.output)")
                    let close = try await doomed.waitForClose(timeout: .seconds(5))
                    #expect(close == WSCloseInfo(code: 1001, reason: "route removed"))
                    try await AuthClient.expectEcho(kept, "kept")
                    await kept.shutdown()
                    await doomed.shutdown()
                } catch {
                    await ferry.stop()
                    throw error
                }
                await ferry.stop()
            }
        }

        @Test("a relay from a file and FERRY_* alone; --check prints where each option came from and exits 0, or 2 with the file position")
        func startAndCheck() async throws {
            try await Self.withBackends { backends in
                let directory = try TLSFiles.makeDirectory("config-start")
                defer { try? FileManager.default.removeItem(atPath: directory) }
                let path = "\(directory)/ferry.yaml"
                try "routes:\n  - path: /a\n    target: \(backends.aTarget)\nbasic-auth: alice:s3cret\n".write(toFile: path, atomically: true, encoding: .utf8)
                let executable = try #require(FerryExecutable.path)
                let check = try ChildProcess(executable: executable, arguments: ["--check"], environment: ["FERRY_CONFIG": path, "FERRY_LISTEN": "127.0.0.1:6080"], logPath: "\(directory)/check.log")
                #expect(await check.waitForExit(timeout: .seconds(10)) == 0, "\(check.output)")
                #expect(check.output.contains("  - /a=\(backends.aTarget)  # \(path):2:5"), "\(check.output)")
                #expect(check.output.contains("  - 127.0.0.1:6080  # FERRY_LISTEN"), "\(check.output)")
                #expect(check.output.contains("alice:****") && !check.output.contains("s3cret"), "\(check.output)")

                try "routes:\n  - path: /a\n    target: 'localhost:'\n".write(toFile: "\(directory)/bad.yaml", atomically: true, encoding: .utf8)
                let bad = try ChildProcess(executable: executable, arguments: ["--config", "\(directory)/bad.yaml", "--check", "--listen", "127.0.0.1:6080"], logPath: "\(directory)/bad.log")
                #expect(await bad.waitForExit(timeout: .seconds(10)) == 2)
                #expect(bad.output.contains("ferry: \(directory)/bad.yaml:2:5: --route /a=localhost: port is missing"), "\(bad.output)")

                // The relay itself, from the file and the environment: the route works.
                try "routes:\n  - path: /a\n    target: \(backends.aTarget)\n".write(toFile: path, atomically: true, encoding: .utf8)
                let (ferry, address) = try await Self.start(config: path, environment: ["FERRY_MAX_CONNECTIONS": "50"], directory: directory)
                let session = try await FerryBinary.upgrade(address, path: "/a")
                try await AuthClient.expectEcho(session, "from the file")
                await session.shutdown()
                await ferry.stop()
            }
        }
    }
}

struct ConfigReloadFailure: Error, CustomStringConvertible {
    var what: String
    var description: String { self.what }
}
