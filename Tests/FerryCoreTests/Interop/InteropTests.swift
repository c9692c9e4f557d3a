import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import FerryCore

/// Runs the independent Python `websockets` client (Tests/Interop/websockets_client.py) against a
/// relay started here, in front of a TCP echo backend. `.ci/run` installs `websockets` with pip.
@Suite("Interop with Python websockets")
struct InteropTests {
    @Test(.enabled(if: OutsideTools.python("websockets"), OutsideTools.pipHint("websockets")))
    func pythonWebsocketsClientAgainstRelay() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let echo = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoHandler()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let configuration = try FerryConfiguration(
            listeners: [ListenAddress(host: "127.0.0.1", port: 0)],
            routes: [Route(path: "/echo", target: .tcp(host: "127.0.0.1", port: echo.localAddress!.port!))]
        )
        let server = try FerryServer(configuration: configuration, group: group, logger: Logger(label: "interop"))
        let port = try await server.start()[0].port!

        let script = Repository.tests.appendingPathComponent("Interop/websockets_client.py")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path, "ws://127.0.0.1:\(port)/echo"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = try await BlockingWork.run { () throws -> Data? in
            let text = try output.fileHandleForReading.readToEnd()
            process.waitUntilExit()
            return text
        }
        let log = String(decoding: text ?? Data(), as: UTF8.self)

        #expect(process.terminationStatus == 0, "python websockets client failed (is `pip install websockets` done?):\n\(log)")
        #expect(log.contains("PASS check_stream"), "\(log)")
        #expect(!log.contains("FAIL"), "\(log)")

        await server.stop()
        try await echo.close()
    }
}
