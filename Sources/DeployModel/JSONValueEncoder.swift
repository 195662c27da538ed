import Foundation

/// Encodes `Encodable` values into a `JSONValue`, keeping members in the order `encode(to:)` writes them
/// (for the generated shapes: the order of the service model). `nil` optionals are left out.
///
/// Dates are epoch seconds by default: the AWS JSON 1.1 wire format and the canonical form deployctl stores. Only
/// what is shown to a person (the CLI's output) uses ``DateEncoding/display``, ISO 8601 with an offset as aws CLI
/// v2 prints it. The decoder reads both, so state files written before either way still load.
public struct JSONValueEncoder: Sendable {
    public enum DateEncoding: Sendable {
        /// Seconds since 1970 as a number, milliseconds kept (`1409764576.589`).
        case epochSeconds
        /// `2014-09-03T17:16:16.589000+00:00`, as aws CLI v2 prints timestamps.
        case display
    }

    public var dateEncoding: DateEncoding

    public init(dateEncoding: DateEncoding = .epochSeconds) {
        self.dateEncoding = dateEncoding
    }

    public func encode<T: Encodable>(_ value: T) throws -> JSONValue {
        // Only the top-level value is asked: a dynamic cast for every nested value would cost every other shape.
        if let direct = value as? any DirectJSONEncodable { return direct.jsonValue(dates: dateEncoding) }
        let node = EncodingNode()
        try EncoderCore(node: node, codingPath: [], dateEncoding: dateEncoding).encodeAny(value)
        return node.resolve()
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
            // Drop the enum's reference first, so the array is appended to in place (else every member copies all).
            kind = .empty
            if members.contains(where: { $0.0 == key }) { members.removeAll { $0.0 == key } }
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
            kind = .empty
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
    let dateEncoding: JSONValueEncoder.DateEncoding
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func encodeAny<T: Encodable>(_ value: T) throws {
        if let date = value as? Date {
            switch dateEncoding {
            case .display: node.kind = .value(.string(Timestamp.format(date)))
            case .epochSeconds: node.kind = .value(.double((date.timeIntervalSince1970 * 1000).rounded() / 1000))
            }
        } else if let json = value as? JSONValue {
            node.kind = .value(json)
        } else {
            try value.encode(to: self)
        }
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .object = node.kind {} else { node.kind = .object([]) }
        return KeyedEncodingContainer(KeyedContainer<Key>(node: node, codingPath: codingPath, dateEncoding: dateEncoding))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if case .array = node.kind {} else { node.kind = .array([]) }
        return UnkeyedContainer(node: node, codingPath: codingPath, dateEncoding: dateEncoding)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleContainer(node: node, codingPath: codingPath, dateEncoding: dateEncoding)
    }

    struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let node: EncodingNode
        var codingPath: [any CodingKey]
        let dateEncoding: JSONValueEncoder.DateEncoding

        mutating func encodeNil(forKey key: Key) throws { node.appendMember(key.stringValue).kind = .value(.null) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            let child = node.appendMember(key.stringValue)
            try EncoderCore(node: child, codingPath: codingPath + [key], dateEncoding: dateEncoding).encodeAny(value)
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
            -> KeyedEncodingContainer<NestedKey>
        {
            EncoderCore(node: node.appendMember(key.stringValue), codingPath: codingPath + [key], dateEncoding: dateEncoding)
                .container(keyedBy: keyType)
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            EncoderCore(node: node.appendMember(key.stringValue), codingPath: codingPath + [key], dateEncoding: dateEncoding).unkeyedContainer()
        }
        mutating func superEncoder() -> any Encoder {
            EncoderCore(node: node.appendMember("super"), codingPath: codingPath, dateEncoding: dateEncoding)
        }
        mutating func superEncoder(forKey key: Key) -> any Encoder {
            EncoderCore(node: node.appendMember(key.stringValue), codingPath: codingPath + [key], dateEncoding: dateEncoding)
        }
    }

    struct UnkeyedContainer: UnkeyedEncodingContainer {
        let node: EncodingNode
        var codingPath: [any CodingKey]
        let dateEncoding: JSONValueEncoder.DateEncoding
        var count: Int {
            if case .array(let items) = node.kind { return items.count }
            return 0
        }

        mutating func encodeNil() throws { node.appendItem().kind = .value(.null) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            try EncoderCore(node: node.appendItem(), codingPath: codingPath, dateEncoding: dateEncoding).encodeAny(value)
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type)
            -> KeyedEncodingContainer<NestedKey>
        {
            EncoderCore(node: node.appendItem(), codingPath: codingPath, dateEncoding: dateEncoding).container(keyedBy: keyType)
        }
        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            EncoderCore(node: node.appendItem(), codingPath: codingPath, dateEncoding: dateEncoding).unkeyedContainer()
        }
        mutating func superEncoder() -> any Encoder { EncoderCore(node: node.appendItem(), codingPath: codingPath, dateEncoding: dateEncoding) }
    }

    struct SingleContainer: SingleValueEncodingContainer {
        let node: EncodingNode
        var codingPath: [any CodingKey]
        let dateEncoding: JSONValueEncoder.DateEncoding

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
            try EncoderCore(node: node, codingPath: codingPath, dateEncoding: dateEncoding).encodeAny(value)
        }
    }
}
