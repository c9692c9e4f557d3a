// swift-tools-version:6.1
// Coverage-guided fuzzing of the parsers a stranger's bytes reach (see README.md). A package of its own, so
// the main build and `swift test` never link libFuzzer; `bash .ci/fuzz` builds and runs it.
import PackageDescription

let package = Package(
    name: "ferry-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        // The parent package, named explicitly: a path dependency's identity would otherwise be the
        // name of the folder the repository was cloned into.
        .package(name: "ferry", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
    ],
    targets: [
        .target(name: "CLibFuzzer"),
        .executableTarget(
            name: "FerryFuzz",
            dependencies: [
                "CLibFuzzer",
                .product(name: "FerryCore", package: "ferry"),
                .product(name: "FerryCommandLine", package: "ferry"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
