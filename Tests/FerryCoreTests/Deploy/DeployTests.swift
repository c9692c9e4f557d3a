import Foundation
import Testing

/// Checks the files in deploy/: a real HAProxy and nginx in front of Ferry processes
/// (Tests/Deploy/load_balancer_test.py), `systemd-analyze verify` on the unit, and the Kubernetes
/// YAML parsing. `.ci/run` installs haproxy and nginx; where a tool is missing its test is skipped
/// and says so.
@Suite("Deploy files")
struct DeployTests {
    /// Runs a command; returns its exit status and output. The sbin folders join PATH: Debian puts
    /// haproxy and nginx there, and a non-root user's PATH leaves them out.
    static func run(_ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = (environment["PATH"].map { [$0] } ?? []).joined() + ":/usr/local/sbin:/usr/sbin:/sbin"
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test(
        .enabled(if: OutsideTools.have("haproxy", "nginx"), OutsideTools.installHint("haproxy", "nginx")),
        .enabled(if: OutsideTools.python("websockets"), OutsideTools.pipHint("websockets"))
    )
    func behindHAProxyAndNginx() throws {
        let ferry = try #require(FerryExecutable.path, "the ferry executable was not built next to the tests")
        let (status, log) = try Self.run(["python3", Repository.root.appendingPathComponent("Tests/Deploy/load_balancer_test.py").path, ferry])
        #expect(status == 0, "load balancer tests failed:\n\(log)")
        #expect(log.contains("PASS haproxy"), "\(log)")
        #expect(log.contains("PASS nginx"), "\(log)")
    }

    @Test(.enabled(if: OutsideTools.have("systemd-analyze"), OutsideTools.installHint("systemd-analyze")))
    func systemdUnitVerifies() throws {
        let ferry = try #require(FerryExecutable.path, "the ferry executable was not built next to the tests")
        let unit = try String(contentsOf: Repository.root.appendingPathComponent("deploy/systemd/ferry.service"), encoding: .utf8)
        #expect(unit.contains("ExecReload=/bin/kill -HUP $MAINPID"))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-unit-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let copy = folder.appendingPathComponent("ferry.service")
        try unit.replacingOccurrences(of: "/usr/local/bin/ferry", with: ferry).write(to: copy, atomically: true, encoding: .utf8)
        let (status, output) = try Self.run(["systemd-analyze", "verify", copy.path])
        #expect(status == 0, "systemd-analyze verify: \(output)")
    }

    @Test(.enabled(if: OutsideTools.python("yaml"), OutsideTools.pipHint("yaml")))
    func kubernetesManifestsParse() throws {
        let path = Repository.root.appendingPathComponent("deploy/kubernetes/ferry.yaml").path
        let (status, output) = try Self.run([
            "python3", "-c",
            "import sys, yaml; docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]; print(' '.join(d['kind'] for d in docs))",
            path,
        ])
        #expect(status == 0, "\(output)")
        for kind in ["Deployment", "Service", "PodDisruptionBudget", "Secret", "Ingress"] {
            #expect(output.contains(kind), "no \(kind) in ferry.yaml: \(output)")
        }
    }
}
