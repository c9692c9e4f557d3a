import CLibFuzzer
import Foundation

/// The fuzz targets, chosen at start-up by `FERRY_FUZZ_TARGET` (one binary, one link).
enum FuzzTarget: String, CaseIterable, Sendable {
    case frame, http, proxy, tokenfile, jwt, path, websockify, redis

    static let selected: FuzzTarget = {
        let name = ProcessInfo.processInfo.environment["FERRY_FUZZ_TARGET"] ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
            report("FerryFuzz: set FERRY_FUZZ_TARGET to one of: \(names) (got '\(name)')")
            exit(2)
        }
        return target
    }()

    func run(_ input: [UInt8]) {
        switch self {
        case .frame: FrameTarget.run(input)
        case .http: HTTPTarget.run(input)
        case .proxy: ProxyTarget.run(input)
        case .tokenfile: TokenFileTarget.run(input)
        case .jwt: JWTTarget.run(input)
        case .path: PathTarget.run(input)
        case .websockify: WebsockifyTarget.run(input)
        case .redis: RedisTarget.run(input)
        }
    }
}

/// The program's entry: picks the target, sets it up, then hands over to libFuzzer's driver.
///
/// SwiftPM links an executable with its own `main` (the module's entry point), so libFuzzer's `main` is
/// not used; `LLVMFuzzerRunDriver` is libFuzzer's documented way in for such programs.
@main
enum FerryFuzzMain {
    static func main() {
        let target = FuzzTarget.selected  // an unknown name stops here, before any input is read
        if target == .jwt { JWTTarget.setUp() }
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            fuzzerTestOneInput(data, size)
        }
        exit(status)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    FuzzTarget.selected.run(input)
    return 0
}

/// A property the target checks; a violation crashes, so libFuzzer keeps the input.
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
    if !condition() {
        report("FerryFuzz: property violated at \(file):\(line): \(message())")
        abort()
    }
}

/// `FERRY_FUZZ_VERBOSE=1`: each target says what it made of each input (to check what a seed reaches).
let verbose = ProcessInfo.processInfo.environment["FERRY_FUZZ_VERBOSE"].map { !$0.isEmpty && $0 != "0" } ?? false

func trace(_ line: @autoclosure () -> String) {
    if verbose { report("FerryFuzz: " + line()) }
}

/// A line on standard error.
func report(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
