import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes log records to standard error as `text` (`2026-11-26T02:11:54Z info session ended client=…`)
/// or `json` (one object per line, for log collectors). Values are escaped so that nothing a client
/// sends can forge a line.
public struct FerryLogHandler: LogHandler {
    /// The shared level when there is one (``LiveLogLevel``); setting a level on a logger detaches
    /// that copy from it.
    public var logLevel: Logger.Level {
        get { self.live?.level ?? self.level }
        set {
            self.level = newValue
            self.live = nil
        }
    }
    private var level: Logger.Level
    private var live: LiveLogLevel?
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let format: LogFormat
    private let label: String
    private let sink: @Sendable (String) -> Void

    /// - Parameter live: a level shared with other loggers and changed by reloads; nil: `options.level`.
    public init(label: String, options: LoggingOptions, live: LiveLogLevel? = nil, sink: @escaping @Sendable (String) -> Void = FerryLogHandler.standardError) {
        self.label = label
        self.level = options.level
        self.live = live
        self.format = options.format
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = self.metadata
        if let provided = self.metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let keys = merged.keys.sorted()
        let time = Self.timestamp()
        var line: String
        switch self.format {
        case .text:
            line = "\(time) \(event.level) \(self.label): \(Self.escapeText(event.message.description))"
            for key in keys { line += " \(key)=\(Self.textValue(merged[key]!))" }
        case .json:
            line = "{\"time\":\"\(time)\",\"level\":\"\(event.level)\",\"logger\":\(Self.jsonString(self.label)),\"message\":\(Self.jsonString(event.message.description))"
            for key in keys { line += ",\(Self.jsonString(key)):\(Self.jsonString(merged[key]!.description))" }
            line += "}"
        }
        self.sink(line + "\n")
    }

    /// A sink that appends lines to a file (`--access-log`); nil if the file cannot be opened.
    public static func appending(to path: String) -> (@Sendable (String) -> Void)? {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else { return nil }
        return { line in
            var line = line
            line.withUTF8 { bytes in _ = write(descriptor, bytes.baseAddress, bytes.count) }
        }
    }

    @Sendable public static func standardError(_ line: String) {
        var line = line
        line.withUTF8 { bytes in _ = write(STDERR_FILENO, bytes.baseAddress, bytes.count) }
    }

    private static func textValue(_ value: Logger.Metadata.Value) -> String {
        let text = value.description
        let plain = !text.isEmpty && text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") }
        return plain ? text : Self.jsonString(text)
    }

    private static func escapeText(_ text: String) -> String {
        text.utf8.contains { $0 < 0x20 } ? String(Self.jsonString(text).dropFirst().dropLast()) : text
    }

    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    private static func timestamp() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        var seconds = spec.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        let millis = Int32(spec.tv_nsec / 1_000_000)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(millis, 3))Z"
    }
}
