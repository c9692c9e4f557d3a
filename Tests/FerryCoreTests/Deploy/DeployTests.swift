import Foundation
import Testing

@testable import FerryCommandLine

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
        for kind in ["Deployment", "Service", "PodDisruptionBudget", "Secret", "Ingress", "ConfigMap"] {
            #expect(output.contains(kind), "no \(kind) in ferry.yaml: \(output)")
        }
        // The ConfigMap's file is one Ferry reads: every key an option, every value accepted.
        let (configStatus, config) = try Self.run([
            "python3", "-c",
            "import sys, yaml; print(next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d['kind'] == 'ConfigMap')['data']['ferry.yaml'], end='')",
            path,
        ])
        #expect(configStatus == 0, "\(config)")
        let layers = try ConfigLayers.resolve(commandLine: ["--config", "/etc/ferry/config/ferry.yaml"], environment: [:]) { (file) throws(ConfigSourceError) in
            try ConfigFileReader.parse(config, path: file)
        }
        let folder = try TLSFiles.makeDirectory("k8s-config")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "change-me: vnc-backend:5900\n".write(toFile: "\(folder)/tokens", atomically: true, encoding: .utf8)
        let arguments = layers.arguments.map { $0 == "/etc/ferry/secrets/tokens" ? "\(folder)/tokens" : $0 }
        let (configuration, _) = try FerryFlags.configuration(arguments)
        #expect(configuration.routes.routes.map(\.path) == ["/vnc"])
        #expect(layers.effective.map(\.option.name).contains("token-file"))
    }
}
