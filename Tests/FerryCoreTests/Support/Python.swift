import Foundation

/// Python 3 for signing JWTs with jwcrypto (as websockify's JWTTokenApi tests do) and for the
/// side-by-side comparison with websockify.
enum Python {
    /// Runs `python3 -c script args...`; status and output (standard output and error together).
    static func run(_ script: String, _ arguments: [String], timeout: Duration = .seconds(60)) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// True if `python3` can import every module named.
    static func canImport(_ modules: [String]) -> Bool {
        (try? Self.run("import " + modules.joined(separator: ", "), []).status) == 0
    }

    /// Signs `claims` (JSON) with the key file as websockify's tests do: a PEM key through
    /// `JWK.import_from_pem`, a secret file as a JWK `k` (`JWK(kty='oct', k=<file content>)`).
    static func signJWT(keyFile: String, algorithm: String, claims: String) throws -> String {
        let (status, output) = try Self.run(Self.signScript, [keyFile, algorithm, claims])
        guard status == 0, let token = output.split(separator: "\n").last.map(String.init), token.split(separator: ".").count == 3 else {
            throw PythonFailure(what: "signing a JWT with jwcrypto", output: output)
        }
        return token
    }

    private static let signScript = """
        import json, sys
        from jwcrypto import jwk, jwt
        key_file, algorithm, claims = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
        data = open(key_file, 'rb').read()
        if algorithm.startswith('HS'):
            key = jwk.JWK(kty='oct', k=data.decode('utf-8'))
        else:
            key = jwk.JWK()
            key.import_from_pem(data)
        token = jwt.JWT(header={'alg': algorithm}, claims=claims)
        token.make_signed_token(key)
        print(token.serialize())
        """
}

struct PythonFailure: Error, CustomStringConvertible {
    var what: String
    var output: String
    var description: String { "python3 failed \(self.what):\n\(self.output)" }
}
