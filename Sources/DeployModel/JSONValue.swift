import Foundation

/// A JSON document whose objects keep their members in order.
///
/// The aws CLI prints members in the order of the service model, so every response
/// is encoded into this tree (see `JSONValueEncoder`) before it is rendered as JSON,
/// text or a table. Input from flags and `--cli-input-json` is parsed into it too.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([JSONMember])

    /// The value of `key` when this is an object.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var isEmptyContainer: Bool {
        switch self {
        case .array(let a): return a.isEmpty
        case .object(let o): return o.isEmpty
        default: return false
        }
    }

    /// The JSON type name used in error messages.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .int, .double: return "number"
        case .string: return "string"
        case .array: return "list"
        case .object: return "structure"
        }
    }
}

/// One member of a JSON object.
public struct JSONMember: Sendable, Equatable {
    public var key: String
    public var value: JSONValue

    public init(_ key: String, _ value: JSONValue) {
        self.key = key
        self.value = value
    }
}

extension JSONValue {
    /// Builds an object from `(key, value)` pairs; a later duplicate replaces an earlier one in place.
    public static func members(_ pairs: [(String, JSONValue)]) -> JSONValue {
        var members: [JSONMember] = []
        for (key, value) in pairs {
            if let index = members.firstIndex(where: { $0.key == key }) {
                members[index].value = value
            } else {
                members.append(JSONMember(key, value))
            }
        }
        return .object(members)
    }

    /// Returns this object with `other`'s members laid over it (other wins), keeping first-seen order.
    public func merging(_ other: JSONValue) -> JSONValue {
        guard case .object(var members) = self, case .object(let overlay) = other else { return other }
        for member in overlay {
            if let index = members.firstIndex(where: { $0.key == member.key }) {
                members[index].value = member.value
            } else {
                members.append(member)
            }
        }
        return .object(members)
    }
}

// MARK: - Rendering

extension JSONValue {
    /// Renders like Python's `json.dumps(value, indent=4, ensure_ascii=False)`, which is what the aws CLI prints.
    public func rendered(indent: Int = 4) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out, level: 0, indent: indent)
        return String(decoding: out, as: UTF8.self)
    }

    /// Renders on one line with no spaces, for storage.
    public func compact() -> String {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out, level: 0, indent: nil)
        return String(decoding: out, as: UTF8.self)
    }

    /// Into bytes, not a String: appending to a String checks its storage and encoding at every step, and the server
    /// renders every response and every stored row this way.
    private func write(into out: inout [UInt8], level: Int, indent: Int?) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .double(let d): out.append(contentsOf: JSONValue.format(d).utf8)
        case .string(let s): JSONValue.writeString(s, into: &out)
        case .array(let items):
            if items.isEmpty {
                out.append(contentsOf: "[]".utf8)
                return
            }
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.newline(into: &out, level: level + 1, indent: indent)
                item.write(into: &out, level: level + 1, indent: indent)
            }
            JSONValue.newline(into: &out, level: level, indent: indent)
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            if members.isEmpty {
                out.append(contentsOf: "{}".utf8)
                return
            }
            out.append(UInt8(ascii: "{"))
            for (i, member) in members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.newline(into: &out, level: level + 1, indent: indent)
                JSONValue.writeString(member.key, into: &out)
                out.append(UInt8(ascii: ":"))
                if indent != nil { out.append(UInt8(ascii: " ")) }
                member.value.write(into: &out, level: level + 1, indent: indent)
            }
            JSONValue.newline(into: &out, level: level, indent: indent)
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func newline(into out: inout [UInt8], level: Int, indent: Int?) {
        guard let indent else { return }
        out.append(0x0A)
        out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: level * indent))
    }

    /// A JSON string literal of `s` (only what JSON requires escaped), in bytes.
    private static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        appendEscaped(s, to: &out)
        out.append(UInt8(ascii: "\""))
    }

    static func format(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d > 0 ? "Infinity" : "-Infinity" }
        // What "%.1f" prints for a whole number, without formatting through Foundation.
        if d == d.rounded(), abs(d) < 1e16 { return (d == 0 && d.sign == .minus ? "-" : "") + String(Int64(d)) + ".0" }
        return "\(d)"
    }

    /// A JSON string literal of `s`. `asciiOnly` escapes everything past `~` as `\\uXXXX` (surrogate pairs beyond the
    /// BMP), as Python's `json.dumps` does by default (botocore's tokens, JMESPath's `to_string`); otherwise only
    /// what JSON requires is escaped, as the aws CLI prints (`ensure_ascii=False`).
    public static func writeString(_ s: String, into out: inout String, asciiOnly: Bool = false) {
        // Escaped a byte at a time into one buffer (see `appendEscaped`), unless non-ASCII must be escaped too.
        if !asciiOnly || s.utf8.allSatisfy({ $0 <= 0x7E }) {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(s.utf8.count + 16)
            writeString(s, into: &bytes)
            out += String(decoding: bytes, as: UTF8.self)
            return
        }
        out += "\""
        func hex(_ value: UInt32) {
            let digits = String(value, radix: 16)
            out += "\\u" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
        }
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 {
                    hex(scalar.value)
                } else if asciiOnly, scalar.value > 0x7E {
                    if scalar.value > 0xFFFF {
                        let v = scalar.value - 0x10000
                        hex(0xD800 + (v >> 10))
                        hex(0xDC00 + (v & 0x3FF))
                    } else {
                        hex(scalar.value)
                    }
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}

extension JSONValue {
    /// Appends `s` with JSON's escapes for quotes, backslashes and control characters (short forms where JSON has
    /// them, `\u00xx` otherwise) and every other byte as it is (a UTF-8 sequence's bytes are all above 0x7F); a
    /// string that needs no escape is copied whole. Appending scalar by scalar to a String was the slowest part of
    /// rendering the deployment specification, JSON inside JSON.
    fileprivate static func appendEscaped(_ s: String, to bytes: inout [UInt8]) {
        let utf8 = s.utf8
        guard utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
            bytes.append(contentsOf: utf8)
            return
        }
        let digits = Array("0123456789abcdef".utf8)
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0A: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0x08: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
            case 0x0C: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
            case ..<0x20:
                bytes += [
                    UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), digits[Int(byte >> 4)], digits[Int(byte & 0xF)],
                ]
            default: bytes.append(byte)
            }
        }
    }
}

// MARK: - Parsing

/// A JSON syntax error with the character offset where parsing stopped.
public struct JSONSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    public var offset: Int
    public var reason: String
    public var description: String { "invalid JSON at character \(offset + 1): \(reason)" }
}

extension JSONValue {
    /// Parses JSON text, keeping object member order. Duplicate keys keep the last value.
    public static func parse(_ text: String) throws(JSONSyntaxError) -> JSONValue {
        var parser = JSONParser(bytes: Array(text.utf8))
        do throws(JSONSyntaxError) {
            parser.skipSpace()
            let value = try parser.parseValue(depth: 0)
            parser.skipSpace()
            if parser.index < parser.bytes.count { throw parser.fail("unexpected text after the JSON value") }
            return value
        } catch {
            // Offsets count characters (Unicode scalars) of the text, not its UTF-8 bytes.
            var located = error
            located.offset = parser.bytes[..<min(error.offset, parser.bytes.count)].lazy.filter { $0 & 0xC0 != 0x80 }.count
            throw located
        }
    }
}

/// Parses the UTF-8 bytes of a Swift string (valid UTF-8 by construction, so every run between ASCII delimiters
/// is valid too). Error offsets are byte offsets here; `JSONValue.parse` turns them into character offsets.
private struct JSONParser {
    let bytes: [UInt8]
    var index = 0

    static let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")

    mutating func skipSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    func fail(_ reason: String) -> JSONSyntaxError { JSONSyntaxError(offset: index, reason: reason) }

    mutating func parseValue(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard depth < 512 else { throw fail("nesting deeper than 512 levels") }
        guard index < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case Self.quote: return .string(try parseString())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        default: return try parseNumber()
        }
    }

    mutating func literal(_ word: StaticString, _ value: JSONValue) throws(JSONSyntaxError) -> JSONValue {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw fail("expected a JSON value") }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { throw fail("expected a JSON value") }
        index += count
        return value
    }

    mutating func parseNumber() throws(JSONSyntaxError) -> JSONValue {
        let start = index
        var isInteger = true
        scan: while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "+"): index += 1
            case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"):
                isInteger = false
                index += 1
            default: break scan
            }
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        if text.isEmpty { throw fail("expected a JSON value") }
        if isInteger, let i = Int(text) { return .int(i) }
        guard let d = Double(text) else { throw JSONSyntaxError(offset: start, reason: "invalid number '\(text)'") }
        return .double(d)
    }

    /// A string: runs without escapes are copied as they are; escapes are decoded one by one.
    mutating func parseString() throws(JSONSyntaxError) -> String {
        index += 1
        var out = ""
        var runStart = index
        while index < bytes.count {
            let c = bytes[index]
            if c == Self.quote {
                out += String(decoding: bytes[runStart..<index], as: UTF8.self)
                index += 1
                return out
            }
            if c < 0x20 { throw fail("control character in string") }
            guard c == Self.backslash else {
                index += 1
                continue
            }
            out += String(decoding: bytes[runStart..<index], as: UTF8.self)
            index += 1
            guard index < bytes.count else { throw fail("unterminated string") }
            let e = bytes[index]
            index += 1
            switch e {
            case Self.quote: out += "\""
            case Self.backslash: out += "\\"
            case UInt8(ascii: "/"): out += "/"
            case UInt8(ascii: "b"): out += "\u{08}"
            case UInt8(ascii: "f"): out += "\u{0C}"
            case UInt8(ascii: "n"): out += "\n"
            case UInt8(ascii: "r"): out += "\r"
            case UInt8(ascii: "t"): out += "\t"
            case UInt8(ascii: "u"):
                var code = try hex4()
                if (0xD800..<0xDC00).contains(code), index + 1 < bytes.count, bytes[index] == Self.backslash,
                    bytes[index + 1] == UInt8(ascii: "u")
                {
                    index += 2
                    let low = try hex4()
                    code = 0x10000 + ((code - 0xD800) << 10) + (low &- 0xDC00)
                }
                out.unicodeScalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
            default:
                index -= 1
                throw fail("invalid escape '\\\(Unicode.Scalar(e))'")
            }
            runStart = index
        }
        throw fail("unterminated string")
    }

    mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var value: UInt32 = 0
        for b in bytes[index..<index + 4] {
            let digit: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = b - UInt8(ascii: "A") + 10
            default: throw fail("invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
        }
        index += 4
        return value
    }

    mutating func parseArray(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        index += 1
        var items: [JSONValue] = []
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(items)
        }
        while true {
            skipSpace()
            items.append(try parseValue(depth: depth + 1))
            skipSpace()
            guard index < bytes.count else { throw fail("unterminated list") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
            } else if bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(items)
            } else {
                throw fail("expected ',' or ']'")
            }
        }
    }

    mutating func parseObject(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        index += 1
        var pairs: [(String, JSONValue)] = []
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object([])
        }
        while true {
            skipSpace()
            guard index < bytes.count, bytes[index] == Self.quote else { throw fail("expected a member name in quotes") }
            let key = try parseString()
            skipSpace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            index += 1
            skipSpace()
            pairs.append((key, try parseValue(depth: depth + 1)))
            skipSpace()
            guard index < bytes.count else { throw fail("unterminated object") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
            } else if bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .members(pairs)
            } else {
                throw fail("expected ',' or '}'")
            }
        }
    }
}
