import Foundation

/// A request member that is missing, mistyped, unknown or out of range, named by its path
/// (`revision.s3Location.bucket`, `tags[1].Key`).
public struct ParameterValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Problem: Sendable, Equatable {
        case missing
        case unknown(validNames: [String])
        case invalidType(expected: String, got: String)
        case invalidValue(String)
        /// A value outside the member's enum (`type` names the enum shape).
        case invalidEnum(type: String, value: String, validValues: [String])
    }

    /// Member names from the top of the request down to the offending member; list positions as `[n]`.
    public var path: [String]
    public var problem: Problem

    public init(path: [String], problem: Problem) {
        self.path = path
        self.problem = problem
    }

    public var dottedPath: String {
        var out = ""
        for part in path {
            if part.hasPrefix("[") || out.isEmpty { out += part } else { out += "." + part }
        }
        return out
    }

    public var description: String {
        switch problem {
        case .missing:
            let parent = Array(path.dropLast())
            let name = path.last ?? "?"
            if parent.isEmpty { return "Missing required parameter in input: \"\(name)\"" }
            return "Missing required parameter in \(ParameterValidationError(path: parent, problem: .missing).dottedPath): \"\(name)\""
        case .unknown(let valid):
            let parent = Array(path.dropLast())
            let location = parent.isEmpty ? "input" : ParameterValidationError(path: parent, problem: .missing).dottedPath
            return "Unknown parameter in \(location): \"\(path.last ?? "?")\", must be one of: \(valid.joined(separator: ", "))"
        case .invalidType(let expected, let got):
            return "Invalid type for parameter \(dottedPath): expected \(expected), got \(got)"
        case .invalidValue(let reason):
            return "Invalid value for parameter \(dottedPath): \(reason)"
        case .invalidEnum(_, let value, let valid):
            return
                "Value '\(value.prefix(100))' at '\(dottedPath)' failed to satisfy constraint: Member must satisfy enum value set: [\(valid.joined(separator: ", "))]"
        }
    }

    /// The refusal the service makes of this request, when it is the service's to make rather than the client's: a
    /// value outside an enum is checked by CodeDeploy, not by botocore, so it is the operation's own
    /// `Invalid<Enum>Exception` or `Invalid<Member>Exception` when the model lists one, else AWS's generic
    /// `ValidationException`. Nil for what the client refuses (missing or unknown members, wrong types).
    public func serviceError(operation: String) -> ServiceError? {
        guard case .invalidEnum(let type, _, _) = problem else { return nil }
        let listed = CodeDeployOperation.errors[operation] ?? []
        let member = path.last { !$0.hasPrefix("[") } ?? ""
        // A tag filter's Type is refused as an invalid tag (EC2 tag filters have their own exception).
        let tagFilter = type == "EC2TagFilterType" ? "InvalidEC2TagException" : type == "TagFilterType" ? "InvalidTagException" : nil
        let candidates =
            [
                "Invalid\(type)Exception", "Invalid\(member.prefix(1).uppercased() + member.dropFirst())Exception",
                "Invalid\(type.replacingOccurrences(of: "Type", with: ""))Exception",
            ] + (tagFilter.map { [$0] } ?? [])
        let code = candidates.first { listed.contains($0) } ?? "ValidationException"
        return ServiceError(code, code == "ValidationException" ? "1 validation error detected: \(description)" : description)
    }
}

/// Thrown by a generated enum's decoder for a value it does not have.
public struct InvalidEnumValue: Error, Sendable {
    public var type: String
    public var value: String
    public var validValues: [String]
    public var codingPath: [any CodingKey]

    public init(type: String, value: String, validValues: [String], codingPath: [any CodingKey]) {
        self.type = type
        self.value = value
        self.validValues = validValues
        self.codingPath = codingPath
    }
}

/// Decodes `Decodable` values from a `JSONValue` the way the aws CLI reads its input: scalars given as strings
/// (shorthand has no types) are converted to the member's type, a single value stands for a one-element list,
/// and members the shape does not have are reported instead of silently dropped.
public struct JSONValueDecoder: Sendable {
    /// Whether members the shape does not have are an error (requests) or ignored (answers of a newer server and
    /// stored values, read as botocore reads answers; also much cheaper).
    public var reportsUnknownMembers: Bool

    public init(reportsUnknownMembers: Bool = true) {
        self.reportsUnknownMembers = reportsUnknownMembers
    }

    public func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws(ParameterValidationError) -> T {
        let tracker = reportsUnknownMembers ? KeyTracker() : nil
        let result: T
        do {
            result = try T(from: DecoderCore(value: value, codingPath: [], tracker: tracker))
        } catch let error as ParameterValidationError {
            throw error
        } catch let error as DecodingError {
            throw Self.translate(error)
        } catch let error as InvalidEnumValue {
            throw ParameterValidationError(
                path: Self.pathNames(error.codingPath), problem: .invalidEnum(type: error.type, value: error.value, validValues: error.validValues))
        } catch {
            throw ParameterValidationError(path: [], problem: .invalidValue("\(error)"))
        }
        if let unknown = tracker?.firstUnknown() { throw unknown }
        return result
    }

    static func pathNames(_ codingPath: [any CodingKey]) -> [String] {
        codingPath.map { key in key.intValue.map { "[\($0)]" } ?? key.stringValue }
    }

    static func translate(_ error: DecodingError) -> ParameterValidationError {
        switch error {
        case .keyNotFound(let key, let context):
            return ParameterValidationError(path: pathNames(context.codingPath + [key]), problem: .missing)
        case .valueNotFound(_, let context):
            return ParameterValidationError(path: pathNames(context.codingPath), problem: .missing)
        case .typeMismatch(let type, let context):
            return ParameterValidationError(
                path: pathNames(context.codingPath),
                problem: .invalidType(expected: typeName(type), got: context.debugDescription))
        case .dataCorrupted(let context):
            return ParameterValidationError(
                path: pathNames(context.codingPath), problem: .invalidValue(context.debugDescription))
        @unknown default:
            return ParameterValidationError(path: [], problem: .invalidValue("\(error)"))
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "string"
        case is Int.Type: return "integer"
        case is Bool.Type: return "boolean"
        case is Date.Type: return "timestamp"
        case is Double.Type: return "number"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Array") { return "list" }
            if name.hasPrefix("Dictionary") { return "map" }
            return "structure"
        }
    }
}

/// Records which members each object offered and which of them a decoder asked for.
private final class KeyTracker {
    struct Entry {
        var path: [String]
        var present: [String]
        var requested: Set<String>
    }
    var entries: [String: Entry] = [:]

    /// Registers the members present at `path`; answers the id that ``request(id:key:)`` takes.
    func register(path: [String], present: [String]) -> String {
        let id = path.joined(separator: "\u{1}")
        if entries[id] == nil { entries[id] = Entry(path: path, present: present, requested: []) }
        return id
    }

    func request(id: String, key: String) {
        entries[id]?.requested.insert(key)
    }

    func firstUnknown() -> ParameterValidationError? {
        for entry in entries.values.sorted(by: { $0.path.count < $1.path.count }) {
            // Dictionaries (maps) ask for every key they are given, so only structures report here.
            if let key = entry.present.first(where: { !entry.requested.contains($0) }) {
                return ParameterValidationError(
                    path: entry.path + [key], problem: .unknown(validNames: entry.requested.sorted()))
            }
        }
        return nil
    }
}

private struct DecoderCore: Decoder {
    let value: JSONValue
    var codingPath: [any CodingKey]
    let tracker: KeyTracker?
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    var path: [String] { JSONValueDecoder.pathNames(codingPath) }

    func mismatch(_ type: Any.Type) -> DecodingError {
        .typeMismatch(type, .init(codingPath: codingPath, debugDescription: describe(value)))
    }

    func describe(_ value: JSONValue) -> String {
        switch value {
        case .string(let s):
            // Long values are cut: an error message never echoes a 100 KB value.
            let shown = s.count > 80 ? String(s.prefix(80)) + "… (\(s.utf8.count) bytes)" : s
            return
                "\(value.typeName) '\(shown.unicodeScalars.map { $0.value < 32 || $0.value == 127 ? "\\u{\(String($0.value, radix: 16))}" : String($0) }.joined())'"
        case .int(let i): return "number \(i)"
        case .double(let d): return "number \(d)"
        case .bool(let b): return "boolean \(b)"
        default: return value.typeName
        }
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = value else {
            throw mismatch([String: String].self)
        }
        let pathID = tracker?.register(path: path, present: members.map(\.key))
        return KeyedDecodingContainer(KeyedContainer<Key>(members: members, decoder: self, pathID: pathID))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        switch value {
        case .array(let items): return UnkeyedContainer(items: items, decoder: self)
        case .null: throw mismatch([String].self)
        default: return UnkeyedContainer(items: [value], decoder: self)
        }
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleContainer(decoder: self) }

    func decodeValue<T: Decodable>(_ type: T.Type) throws -> T {
        if type == Date.self, let date = try decodeDate() as? T { return date }
        if type == JSONValue.self, let value = value as? T { return value }
        return try T(from: self)
    }

    func decodeDate() throws -> Date {
        switch value {
        case .int(let i): return Date(timeIntervalSince1970: Double(i))
        case .double(let d): return Date(timeIntervalSince1970: d)
        case .string(let s):
            guard let date = Timestamp.parse(s) else {
                throw DecodingError.dataCorrupted(
                    .init(
                        codingPath: codingPath,
                        debugDescription: "'\(s)' is not a timestamp (use ISO 8601 such as 2026-11-22T10:00:00Z, or epoch seconds)"
                    ))
            }
            return date
        default: throw mismatch(Date.self)
        }
    }

    func child(_ value: JSONValue, key: any CodingKey) -> DecoderCore {
        DecoderCore(value: value, codingPath: codingPath + [key], tracker: tracker)
    }

    struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let members: [JSONMember]
        let decoder: DecoderCore
        /// This container's entry in the tracker (nil when unknown members are not reported).
        let pathID: String?
        var codingPath: [any CodingKey] { decoder.codingPath }
        var allKeys: [Key] { members.compactMap { Key(stringValue: $0.key) } }

        func lookup(_ key: Key) -> JSONValue? {
            let name = key.stringValue
            if let pathID { decoder.tracker?.request(id: pathID, key: name) }
            return members.last { $0.key == name }?.value
        }

        func contains(_ key: Key) -> Bool { lookup(key) != nil }

        func decodeNil(forKey key: Key) throws -> Bool {
            guard let v = lookup(key) else { return true }
            return v == .null
        }

        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            guard let v = lookup(key) else {
                throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing"))
            }
            if v == .null {
                throw DecodingError.valueNotFound(type, .init(codingPath: codingPath + [key], debugDescription: "null"))
            }
            return try decoder.child(v, key: key).decodeValue(type)
        }

        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
            -> KeyedDecodingContainer<NestedKey>
        {
            try decoder.child(lookup(key) ?? .null, key: key).container(keyedBy: type)
        }

        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            try decoder.child(lookup(key) ?? .null, key: key).unkeyedContainer()
        }

        func superDecoder() throws -> any Decoder { decoder }
        func superDecoder(forKey key: Key) throws -> any Decoder { decoder.child(lookup(key) ?? .null, key: key) }
    }

    struct IndexKey: CodingKey {
        var intValue: Int?
        var stringValue: String { "[\(intValue ?? 0)]" }
        init(_ index: Int) { intValue = index }
        init?(stringValue: String) { nil }
        init?(intValue: Int) { self.intValue = intValue }
    }

    struct UnkeyedContainer: UnkeyedDecodingContainer {
        let items: [JSONValue]
        let decoder: DecoderCore
        var currentIndex = 0
        var codingPath: [any CodingKey] { decoder.codingPath }
        var count: Int? { items.count }
        var isAtEnd: Bool { currentIndex >= items.count }

        mutating func next() throws -> DecoderCore {
            guard !isAtEnd else {
                throw DecodingError.valueNotFound(
                    JSONValue.self, .init(codingPath: codingPath, debugDescription: "list is shorter than expected"))
            }
            defer { currentIndex += 1 }
            return decoder.child(items[currentIndex], key: IndexKey(currentIndex))
        }

        mutating func decodeNil() throws -> Bool {
            guard !isAtEnd, items[currentIndex] == .null else { return false }
            currentIndex += 1
            return true
        }

        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            let d = try next()
            if d.value == .null {
                throw DecodingError.valueNotFound(type, .init(codingPath: d.codingPath, debugDescription: "null"))
            }
            return try d.decodeValue(type)
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws
            -> KeyedDecodingContainer<NestedKey>
        {
            try next().container(keyedBy: type)
        }

        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try next().unkeyedContainer() }
        mutating func superDecoder() throws -> any Decoder { try next() }
    }

    struct SingleContainer: SingleValueDecodingContainer {
        let decoder: DecoderCore
        var codingPath: [any CodingKey] { decoder.codingPath }
        var value: JSONValue { decoder.value }

        func decodeNil() -> Bool { value == .null }

        func decode(_ type: Bool.Type) throws -> Bool {
            switch value {
            case .bool(let b): return b
            case .string(let s) where s.lowercased() == "true": return true
            case .string(let s) where s.lowercased() == "false": return false
            default: throw decoder.mismatch(type)
            }
        }

        /// Only a string is a string: `{"applicationName": 5}` is refused, as botocore refuses it (shorthand, which
        /// has no types, only ever produces strings).
        func decode(_ type: String.Type) throws -> String {
            switch value {
            case .string(let s): return s
            default: throw decoder.mismatch(type)
            }
        }

        func decode(_ type: Double.Type) throws -> Double {
            switch value {
            case .int(let i): return Double(i)
            case .double(let d): return d
            case .string(let s):
                guard let d = Double(s.trimmingCharacters(in: .whitespaces)) else { throw decoder.mismatch(type) }
                return d
            default: throw decoder.mismatch(type)
            }
        }

        func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }

        func decodeInteger<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
            switch value {
            case .int(let i):
                guard let v = T(exactly: i) else { throw decoder.mismatch(type) }
                return v
            case .double(let d):
                guard let v = T(exactly: d) else { throw decoder.mismatch(type) }
                return v
            case .string(let s):
                guard let v = T(s.trimmingCharacters(in: .whitespaces)) else { throw decoder.mismatch(type) }
                return v
            default: throw decoder.mismatch(type)
            }
        }

        func decode(_ type: Int.Type) throws -> Int { try decodeInteger(type) }
        func decode(_ type: Int8.Type) throws -> Int8 { try decodeInteger(type) }
        func decode(_ type: Int16.Type) throws -> Int16 { try decodeInteger(type) }
        func decode(_ type: Int32.Type) throws -> Int32 { try decodeInteger(type) }
        func decode(_ type: Int64.Type) throws -> Int64 { try decodeInteger(type) }
        func decode(_ type: UInt.Type) throws -> UInt { try decodeInteger(type) }
        func decode(_ type: UInt8.Type) throws -> UInt8 { try decodeInteger(type) }
        func decode(_ type: UInt16.Type) throws -> UInt16 { try decodeInteger(type) }
        func decode(_ type: UInt32.Type) throws -> UInt32 { try decodeInteger(type) }
        func decode(_ type: UInt64.Type) throws -> UInt64 { try decodeInteger(type) }

        func decode<T: Decodable>(_ type: T.Type) throws -> T { try decoder.decodeValue(type) }
    }
}
