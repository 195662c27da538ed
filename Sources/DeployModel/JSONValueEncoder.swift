import Foundation

/// Encodes `Encodable` values into a `JSONValue`, keeping members in the order `encode(to:)` writes them
/// (for the generated shapes: the order of the service model). `nil` optionals are left out, dates become
/// ISO 8601 strings with an offset, as aws CLI v2 prints them.
public struct JSONValueEncoder: Sendable {
    public init() {}

    public func encode<T: Encodable>(_ value: T) throws -> JSONValue {
        let node = EncodingNode()
        try EncoderCore(node: node, codingPath: []).encodeAny(value)
        return node.resolve()
    }
}

/// Timestamps as the aws CLI v2 prints them: `2026-11-21T23:30:42.853000+00:00`.
public enum Timestamp {
    public static func format(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        var whole = seconds.rounded(.down)
        var micros = Int(((seconds - whole) * 1_000_000).rounded())
        if micros >= 1_000_000 {
            whole += 1
            micros -= 1_000_000
        }
        var t = time_t(whole)
        var parts = tm()
        gmtime_r(&t, &parts)
        var text = String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
            Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
        if micros != 0 { text += String(format: ".%06d", micros) }
        return text + "+00:00"
    }

    /// Parses ISO 8601 (`2026-11-21`, `2026-11-21T10:00:00Z`, fractions and `+hh:mm` offsets) or epoch seconds.
    public static func parse(_ text: String) -> Date? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let epoch = Double(trimmed) { return Date(timeIntervalSince1970: epoch) }
        var scanner = DigitScanner(Array(trimmed.utf8))
        guard let year = scanner.number(4), scanner.take("-"), let month = scanner.number(2), scanner.take("-"),
            let day = scanner.number(2)
        else { return nil }
        var hour = 0
        var minute = 0
        var second = 0
        var fraction = 0.0
        if scanner.take("T") || scanner.take("t") || scanner.take(" ") {
            guard let h = scanner.number(2), scanner.take(":"), let m = scanner.number(2) else { return nil }
            hour = h
            minute = m
            if scanner.take(":") {
                guard let s = scanner.number(2) else { return nil }
                second = s
                if scanner.take(".") {
                    guard let digits = scanner.digits(), !digits.isEmpty else { return nil }
                    fraction = Double("0." + digits) ?? 0
                }
            }
        }
        var offset = 0
        if scanner.take("Z") || scanner.take("z") {
        } else if let sign = scanner.peek, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            scanner.index += 1
            guard let oh = scanner.number(2) else { return nil }
            _ = scanner.take(":")
            guard let om = scanner.number(2) else { return nil }
            offset = (oh * 3600 + om * 60) * (sign == UInt8(ascii: "-") ? -1 : 1)
        }
        guard scanner.atEnd, (1...12).contains(month), (1...31).contains(day), (0...23).contains(hour), (0...59).contains(minute),
            (0...60).contains(second)
        else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        return Date(timeIntervalSince1970: Double(timegm(&parts) - offset) + fraction)
    }
}

private struct DigitScanner {
    let bytes: [UInt8]
    var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { index >= bytes.count }
    var peek: UInt8? { atEnd ? nil : bytes[index] }

    mutating func take(_ character: Unicode.Scalar) -> Bool {
        guard peek == UInt8(ascii: character) else { return false }
        index += 1
        return true
    }

    mutating func number(_ count: Int) -> Int? {
        guard index + count <= bytes.count else { return nil }
        var value = 0
        for byte in bytes[index..<index + count] {
            guard (48...57).contains(byte) else { return nil }
            value = value * 10 + Int(byte - 48)
        }
        index += count
        return value
    }

    mutating func digits() -> String? {
        let start = index
        while let b = peek, (48...57).contains(b) { index += 1 }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }
}

private final class EncodingNode {
    enum Kind {
        case empty
        case value(JSONValue)
        case object([(String, EncodingNode)])
        case array([EncodingNode])
    }
    var kind: Kind = .empty

    func resolve() -> JSONValue {
        switch kind {
        case .empty: return .object([])
        case .value(let v): return v
        case .object(let members): return .object(members.map { JSONMember($0.0, $0.1.resolve()) })
        case .array(let items): return .array(items.map { $0.resolve() })
        }
    }

    func appendMember(_ key: String) -> EncodingNode {
        let child = EncodingNode()
        if case .object(var members) = kind {
            members.removeAll { $0.0 == key }
            members.append((key, child))
            kind = .object(members)
        } else {
            kind = .object([(key, child)])
        }
        return child
    }

    func appendItem() -> EncodingNode {
        let child = EncodingNode()
        if case .array(var items) = kind {
            items.append(child)
            kind = .array(items)
        } else {
            kind = .array([child])
        }
        return child
    }
}

private struct EncoderCore: Encoder {
    let node: EncodingNode
    var codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func encodeAny<T: Encodable>(_ value: T) throws {
        if let date = value as? Date {
            node.kind = .value(.string(Timestamp.format(date)))
        } else if let json = value as? JSONValue {
            node.kind = .value(json)
        } else {
            try value.encode(to: self)
        }
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .object = node.kind {} else { node.kind = .object([]) }
        return KeyedEncodingContainer(KeyedContainer<Key>(node: node, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if case .array = node.kind {} else { node.kind = .array([]) }
        return UnkeyedContainer(node: node, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleContainer(node: node, codingPath: codingPath)
    }

    struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let node: EncodingNode
        var codingPath: [any CodingKey]

        mutating func encodeNil(forKey key: Key) throws { node.appendMember(key.stringValue).kind = .value(.null) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            let child = node.appendMember(key.stringValue)
            try EncoderCore(node: child, codingPath: codingPath + [key]).encodeAny(value)
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
            -> KeyedEncodingContainer<NestedKey>
        {
            EncoderCore(node: node.appendMember(key.stringValue), codingPath: codingPath + [key])
                .container(keyedBy: keyType)
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            EncoderCore(node: node.appendMember(key.stringValue), codingPath: codingPath + [key]).unkeyedContainer()
        }
        mutating func superEncoder() -> any Encoder {
            EncoderCore(node: node.appendMember("super"), codingPath: codingPath)
        }
        mutating func superEncoder(forKey key: Key) -> any Encoder {
            EncoderCore(node: node.appendMember(key.stringValue), codingPath: codingPath + [key])
        }
    }

    struct UnkeyedContainer: UnkeyedEncodingContainer {
        let node: EncodingNode
        var codingPath: [any CodingKey]
        var count: Int {
            if case .array(let items) = node.kind { return items.count }
            return 0
        }

        mutating func encodeNil() throws { node.appendItem().kind = .value(.null) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            try EncoderCore(node: node.appendItem(), codingPath: codingPath).encodeAny(value)
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type)
            -> KeyedEncodingContainer<NestedKey>
        {
            EncoderCore(node: node.appendItem(), codingPath: codingPath).container(keyedBy: keyType)
        }
        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            EncoderCore(node: node.appendItem(), codingPath: codingPath).unkeyedContainer()
        }
        mutating func superEncoder() -> any Encoder { EncoderCore(node: node.appendItem(), codingPath: codingPath) }
    }

    struct SingleContainer: SingleValueEncodingContainer {
        let node: EncodingNode
        var codingPath: [any CodingKey]

        mutating func encodeNil() throws { node.kind = .value(.null) }
        mutating func encode(_ value: Bool) throws { node.kind = .value(.bool(value)) }
        mutating func encode(_ value: String) throws { node.kind = .value(.string(value)) }
        mutating func encode(_ value: Double) throws { node.kind = .value(.double(value)) }
        mutating func encode(_ value: Float) throws { node.kind = .value(.double(Double(value))) }
        mutating func encode(_ value: Int) throws { node.kind = .value(.int(value)) }
        mutating func encode(_ value: Int8) throws { node.kind = .value(.int(Int(value))) }
        mutating func encode(_ value: Int16) throws { node.kind = .value(.int(Int(value))) }
        mutating func encode(_ value: Int32) throws { node.kind = .value(.int(Int(value))) }
        mutating func encode(_ value: Int64) throws { node.kind = .value(.int(Int(value))) }
        mutating func encode(_ value: UInt) throws { node.kind = .value(.int(Int(value))) }
        mutating func encode(_ value: UInt8) throws { node.kind = .value(.int(Int(value))) }
        mutating func encode(_ value: UInt16) throws { node.kind = .value(.int(Int(value))) }
        mutating func encode(_ value: UInt32) throws { node.kind = .value(.int(Int(value))) }
        mutating func encode(_ value: UInt64) throws { node.kind = .value(.int(Int(value))) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            try EncoderCore(node: node, codingPath: codingPath).encodeAny(value)
        }
    }
}
