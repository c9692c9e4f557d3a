@testable import FerryCore
import NIOCore
import NIOEmbedded

/// `frame`: what a client sends after the 101, through ``WebSocketStreamDecoder`` (frame parser, message
/// rules, UTF-8 validation, close payloads, unmasking) in an `EmbeddedChannel`, as Ferry runs it.
///
/// Input: byte 0 picks how the stream is cut into reads (``Chunks``); byte 1 bit 0 sets a message size
/// limit of `(byte1 >> 1) * 8 + 1` bytes; the rest is the byte stream. Checked:
/// - the same stream in one read and cut into reads gives the same payload bytes, control messages and
///   error (payload before an error may differ only in how much of the failing read got out);
/// - the payload equals a plain reference unmasking of the stream's data frames (a prefix of it when
///   the stream breaks a rule);
/// - nothing comes out after an error;
/// - ``UTF8StreamValidator`` fed the cut stream agrees with the standard library on the whole stream.
enum FrameTarget {
    enum Control: Equatable {
        case ping([UInt8])
        case pong([UInt8])
        case close(UInt16?, String)
    }

    struct Outcome {
        var data: [UInt8] = []
        var controls: [Control] = []
        var error: WebSocketProtocolError? = nil
    }

    static func run(_ input: [UInt8]) {
        guard input.count >= 2 else { return }
        let control = input[0]
        let flags = input[1]
        let stream = input[2...]
        let maxMessageSize = flags & 1 == 1 ? Int(flags >> 1) * 8 + 1 : 0
        let chunks = Chunks.split(stream, control: control)

        let whole = Self.decode([stream], maxMessageSize: maxMessageSize, pooled: false)
        let cut = Self.decode(chunks, maxMessageSize: maxMessageSize, pooled: true)

        require(whole.error == cut.error, "error differs: one read \(String(describing: whole.error)), cut \(String(describing: cut.error))")
        require(whole.controls == cut.controls, "control messages differ: \(whole.controls) vs \(cut.controls)")
        if whole.error == nil {
            require(whole.data == cut.data, "payload differs between one read (\(whole.data.count) bytes) and cut reads (\(cut.data.count) bytes)")
        } else {
            require(cut.data.starts(with: whole.data), "payload of the one read is not a prefix of the cut reads' payload")
        }
        trace("frame: \(chunks.count) reads, \(cut.data.count) payload bytes, controls \(cut.controls), error \(cut.error.map { "\($0)" } ?? "none")")
        let reference = Self.referencePayload(stream)
        for outcome in [whole, cut] {
            if outcome.error == nil {
                require(outcome.data == reference, "payload (\(outcome.data.count) bytes) differs from the reference unmasking (\(reference.count) bytes)")
            } else {
                require(reference.starts(with: outcome.data), "payload before the error is not a prefix of the reference unmasking")
            }
            for case .close(let code, _) in outcome.controls {
                if let code { require(WebSocketClosePayload.isValidReceivedCode(code), "close code \(code) passed on") }
            }
        }

        // The validator, fed the cut stream, against the standard library on all of it.
        var validator = UTF8StreamValidator()
        var valid = true
        for chunk in chunks where valid {
            valid = chunk.withUnsafeBytes { validator.validate($0) }
        }
        let expected = String(validating: stream, as: UTF8.self) != nil
        require((valid && validator.isAtBoundary) == expected, "UTF8StreamValidator says \(valid && validator.isAtBoundary), the standard library \(expected)")
    }

    static func decode(_ chunks: [ArraySlice<UInt8>], maxMessageSize: Int, pooled: Bool) -> Outcome {
        let channel = EmbeddedChannel()
        let decoder = WebSocketStreamDecoder(role: .server, maxMessageSize: maxMessageSize, pool: pooled ? PayloadBufferPool() : nil)
        try! channel.pipeline.syncOperations.addHandler(decoder)
        var outcome = Outcome()
        for chunk in chunks {
            let failedEarlier = outcome.error != nil
            let before = (outcome.data.count, outcome.controls.count)
            var buffer = channel.allocator.buffer(capacity: chunk.count)
            buffer.writeBytes(chunk)
            do {
                try channel.writeInbound(buffer)
            } catch let error as WebSocketProtocolError {
                require(outcome.error == nil, "a second error after \(outcome.error!): \(error)")
                outcome.error = error
            } catch {
                require(false, "unexpected error type: \(error)")
            }
            Self.drain(channel, into: &outcome)
            if failedEarlier {
                require(outcome.data.count == before.0 && outcome.controls.count == before.1, "output after the error \(outcome.error!)")
            }
        }
        _ = try? channel.finish()
        return outcome
    }

    /// Reads everything the decoder passed on.
    static func drain(_ channel: EmbeddedChannel, into outcome: inout Outcome) {
        while let event = try! channel.readInbound(as: WebSocketInbound.self) {
            switch event {
            case .data(let buffer): outcome.data += buffer.readableBytesView
            case .ping(let buffer): outcome.controls.append(.ping(Array(buffer.readableBytesView)))
            case .pong(let buffer): outcome.controls.append(.pong(Array(buffer.readableBytesView)))
            case .close(let code, let reason): outcome.controls.append(.close(code, reason))
            }
        }
    }

    /// The unmasked payload of every data frame (opcodes 0–7) in `stream`, as far as it goes, read with no
    /// rule checked: what a correct decoder passes on for a stream that breaks no rule.
    static func referencePayload(_ stream: ArraySlice<UInt8>) -> [UInt8] {
        var output: [UInt8] = []
        var index = stream.startIndex
        let end = stream.endIndex
        while end - index >= 2 {
            let first = stream[index]
            let second = stream[index + 1]
            index += 2
            var length = UInt64(second & 0x7F)
            if length == 126 {
                guard end - index >= 2 else { break }
                length = UInt64(stream[index]) << 8 | UInt64(stream[index + 1])
                index += 2
            } else if length == 127 {
                guard end - index >= 8 else { break }
                length = stream[index..<(index + 8)].reduce(0) { $0 << 8 | UInt64($1) }
                index += 8
            }
            var key: [UInt8] = [0, 0, 0, 0]
            if second & 0x80 != 0 {
                guard end - index >= 4 else { break }
                key = Array(stream[index..<(index + 4)])
                index += 4
            }
            let available = Int(min(length, UInt64(end - index)))
            if first & 0x08 == 0 {
                for offset in 0..<available { output.append(stream[index + offset] ^ key[offset & 3]) }
            }
            index += available
            if UInt64(available) < length { break }
        }
        return output
    }
}
