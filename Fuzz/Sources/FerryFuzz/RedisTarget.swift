import NIOCore

@testable import FerryCore

/// `redis`: what a Redis server (or whatever answers on its port) sends back, through
/// ``RESPReplyParser``, and the token values and `--token-redis` URLs read from text.
///
/// Input: byte 0 picks how the stream is cut into reads (``Chunks``); the rest is the reply stream.
/// Checked:
/// - the stream in one read and cut into reads gives the same values and the same error;
/// - every value keeps within the limits (bulk length, array count, depth);
/// - a bulk string's value, read as a token's target, never names the dynamic target;
/// - the text as a `--token-redis` URL either parses or fails naming the flag, and its password
///   never appears in the error or the description.
enum RedisTarget {
    struct Outcome: Equatable {
        var values: [RESPValue] = []
        var error: RESPReplyParser.Failure?
    }

    static func run(_ input: [UInt8]) {
        guard let control = input.first else { return }
        let stream = input.dropFirst()
        let whole = Self.parse([stream])
        let cut = Self.parse(Chunks.split(stream, control: control))
        trace("redis: \(whole.values.count) values, error \(String(describing: whole.error))")
        require(whole == cut, "one read gives \(whole), cut reads give \(cut)")
        let limits = RESPReplyParser.Limits()
        for value in whole.values { Self.check(value, depth: 0, limits: limits) }

        let text = String(decoding: stream, as: UTF8.self)
        do {
            let endpoint = try RedisEndpoint.parse(text)
            require(!endpoint.host.isEmpty && (1...65535).contains(endpoint.port), "accepted \(endpoint)")
            if let password = endpoint.password {
                require(!endpoint.description.contains(":" + RedisEndpoint.encode(password) + "@"), "the description shows the password")
            }
        } catch {
            require(error.flag == "--token-redis", "an error that does not name the flag: \(error)")
        }
    }

    static func parse(_ chunks: [ArraySlice<UInt8>]) -> Outcome {
        var parser = RESPReplyParser()
        var outcome = Outcome()
        for chunk in chunks {
            var buffer = ByteBuffer(bytes: chunk)
            do {
                while let value = try parser.next(&buffer) { outcome.values.append(value) }
            } catch {
                outcome.error = error
                return outcome
            }
        }
        return outcome
    }

    static func check(_ value: RESPValue, depth: Int, limits: RESPReplyParser.Limits) {
        switch value {
        case .bulkString(let buffer?):
            require(buffer.readableBytes <= limits.maxBulkLength, "a bulk string of \(buffer.readableBytes) bytes")
            if RedisTokenValue.target(String(buffer: buffer)) == .dynamic { require(false, "a value names the dynamic target") }
        case .array(let items?):
            require(depth < limits.maxDepth, "an array nested \(depth + 1) deep")
            require(items.count <= limits.maxArrayCount, "an array of \(items.count)")
            for item in items { Self.check(item, depth: depth + 1, limits: limits) }
        case .simpleString(let text), .error(let text):
            require(text.utf8.count <= limits.maxLineLength * 3, "a line of \(text.utf8.count) bytes")
        default:
            return
        }
    }
}
