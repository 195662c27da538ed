import Foundation

/// Decodes the `aws-chunked` content encoding botocore uses for S3 uploads with a trailing checksum
/// (`x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER`): `<hex size>[;ext]\r\n<data>\r\n` chunks, a zero-size
/// chunk, then trailer lines `name:value\r\n` and an empty line. Incremental (fed as the body arrives, memory flat),
/// with bounded header and trailer lines.
public struct AWSChunkedDecoder: Sendable {
    public struct Malformed: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    enum State: Equatable {
        case sizeLine
        case data(remaining: Int)
        case dataEnd
        case trailers
        case done
    }

    var state = State.sizeLine
    var line: [UInt8] = []
    /// The trailer fields after the last chunk (`x-amz-checksum-crc32` → its value), names lowercased.
    public private(set) var trailers: [String: String] = [:]
    static let maxLine = 4096
    static let maxTrailers = 16

    public init() {}

    public var isComplete: Bool { state == .done }

    /// Feeds body bytes; `emit` receives the decoded payload bytes in order.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        var index = 0
        while index < bytes.count {
            switch state {
            case .data(let remaining):
                let take = min(remaining, bytes.count - index)
                try emit(UnsafeRawBufferPointer(rebasing: bytes[index..<(index + take)]))
                index += take
                state = remaining == take ? .dataEnd : .data(remaining: remaining - take)
            case .done:
                throw Malformed(description: "bytes after the end of the aws-chunked body")
            case .sizeLine, .dataEnd, .trailers:
                let byte = bytes[index]
                index += 1
                if byte != UInt8(ascii: "\n") {
                    line.append(byte)
                    if line.count > Self.maxLine { throw Malformed(description: "an aws-chunked line is longer than \(Self.maxLine) bytes") }
                    continue
                }
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                let text = String(decoding: line, as: UTF8.self)
                line.removeAll(keepingCapacity: true)
                try endOfLine(text)
            }
        }
    }

    private mutating func endOfLine(_ text: String) throws {
        switch state {
        case .sizeLine:
            let hex = text.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            guard !hex.isEmpty, hex.count <= 16, let size = Int(hex, radix: 16), size >= 0 else {
                throw Malformed(description: "an aws-chunked chunk size is not hexadecimal: '\(text.prefix(40))'")
            }
            state = size == 0 ? .trailers : .data(remaining: size)
        case .dataEnd:
            guard text.isEmpty else { throw Malformed(description: "an aws-chunked chunk is longer than its declared size") }
            state = .sizeLine
        case .trailers:
            if text.isEmpty {
                state = .done
                return
            }
            guard trailers.count < Self.maxTrailers, let colon = text.firstIndex(of: ":") else {
                throw Malformed(description: "an aws-chunked trailer is not 'name:value': '\(text.prefix(40))'")
            }
            trailers[text[..<colon].lowercased()] = text[text.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        case .data, .done:
            break
        }
    }
}

/// CRC-32 (IEEE, as zlib and S3's `x-amz-checksum-crc32`), incremental.
public struct CRC32: Sendable {
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }
    var crc: UInt32 = 0xFFFF_FFFF

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var c = crc
        Self.table.withUnsafeBufferPointer { table in
            for byte in bytes { c = table[Int((c ^ UInt32(byte)) & 0xFF)] ^ (c >> 8) }
        }
        crc = c
    }

    public var value: UInt32 { crc ^ 0xFFFF_FFFF }

    /// The value as S3 writes it: base64 of the four big-endian bytes.
    public var base64: String {
        let v = value
        return Data([UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]).base64EncodedString()
    }
}
