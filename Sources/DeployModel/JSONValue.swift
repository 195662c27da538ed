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
        var out = ""
        write(into: &out, level: 0, indent: indent)
        return out
    }

    /// Renders on one line with no spaces, for storage.
    public func compact() -> String {
        var out = ""
        write(into: &out, level: 0, indent: nil)
        return out
    }

    private func write(into out: inout String, level: Int, indent: Int?) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += JSONValue.format(d)
        case .string(let s): JSONValue.writeString(s, into: &out)
        case .array(let items):
            if items.isEmpty {
                out += "[]"
                return
            }
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                JSONValue.newline(into: &out, level: level + 1, indent: indent)
                item.write(into: &out, level: level + 1, indent: indent)
            }
            JSONValue.newline(into: &out, level: level, indent: indent)
            out += "]"
        case .object(let members):
            if members.isEmpty {
                out += "{}"
                return
            }
            out += "{"
            for (i, member) in members.enumerated() {
                if i > 0 { out += "," }
                JSONValue.newline(into: &out, level: level + 1, indent: indent)
                JSONValue.writeString(member.key, into: &out)
                out += indent == nil ? ":" : ": "
                member.value.write(into: &out, level: level + 1, indent: indent)
            }
            JSONValue.newline(into: &out, level: level, indent: indent)
            out += "}"
        }
    }

    private static func newline(into out: inout String, level: Int, indent: Int?) {
        guard let indent else { return }
        out += "\n"
        out += String(repeating: " ", count: level * indent)
    }

    static func format(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d > 0 ? "Infinity" : "-Infinity" }
        if d == d.rounded(), abs(d) < 1e16 { return String(format: "%.1f", d) }
        return "\(d)"
    }

    static func writeString(_ s: String, into out: inout String) {
        out += "\""
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
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
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
        var parser = JSONParser(scalars: Array(text.unicodeScalars))
        parser.skipSpace()
        let value = try parser.parseValue(depth: 0)
        parser.skipSpace()
        if parser.index < parser.scalars.count {
            throw JSONSyntaxError(offset: parser.index, reason: "unexpected text after the JSON value")
        }
        return value
    }
}

private struct JSONParser {
    let scalars: [Unicode.Scalar]
    var index = 0

    mutating func skipSpace() {
        while index < scalars.count, [" ", "\n", "\r", "\t"].contains(scalars[index]) { index += 1 }
    }

    func fail(_ reason: String) -> JSONSyntaxError { JSONSyntaxError(offset: index, reason: reason) }

    mutating func parseValue(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard depth < 512 else { throw fail("nesting deeper than 512 levels") }
        guard index < scalars.count else { throw fail("unexpected end of input") }
        switch scalars[index] {
        case "{": return try parseObject(depth: depth)
        case "[": return try parseArray(depth: depth)
        case "\"": return .string(try parseString())
        case "t": return try literal("true", .bool(true))
        case "f": return try literal("false", .bool(false))
        case "n": return try literal("null", .null)
        default: return try parseNumber()
        }
    }

    mutating func literal(_ word: String, _ value: JSONValue) throws(JSONSyntaxError) -> JSONValue {
        let w = Array(word.unicodeScalars)
        guard index + w.count <= scalars.count, Array(scalars[index..<index + w.count]) == w else {
            throw fail("expected a JSON value")
        }
        index += w.count
        return value
    }

    mutating func parseNumber() throws(JSONSyntaxError) -> JSONValue {
        let start = index
        var isInteger = true
        while index < scalars.count {
            let c = scalars[index]
            if ("0"..."9").contains(c) || c == "-" || c == "+" {
                index += 1
            } else if c == "." || c == "e" || c == "E" {
                isInteger = false
                index += 1
            } else {
                break
            }
        }
        let text = String(String.UnicodeScalarView(scalars[start..<index]))
        if text.isEmpty { throw fail("expected a JSON value") }
        if isInteger, let i = Int(text) { return .int(i) }
        guard let d = Double(text) else { throw JSONSyntaxError(offset: start, reason: "invalid number '\(text)'") }
        return .double(d)
    }

    mutating func parseString() throws(JSONSyntaxError) -> String {
        index += 1
        var out = String.UnicodeScalarView()
        while index < scalars.count {
            let c = scalars[index]
            index += 1
            switch c {
            case "\"": return String(out)
            case "\\":
                guard index < scalars.count else { throw fail("unterminated string") }
                let e = scalars[index]
                index += 1
                switch e {
                case "\"": out.append("\"")
                case "\\": out.append("\\")
                case "/": out.append("/")
                case "b": out.append("\u{08}")
                case "f": out.append("\u{0C}")
                case "n": out.append("\n")
                case "r": out.append("\r")
                case "t": out.append("\t")
                case "u":
                    var code = try hex4()
                    if (0xD800..<0xDC00).contains(code), index + 1 < scalars.count, scalars[index] == "\\",
                        scalars[index + 1] == "u"
                    {
                        index += 2
                        let low = try hex4()
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    out.append(Unicode.Scalar(code) ?? "\u{FFFD}")
                default: throw fail("invalid escape '\\\(e)'")
                }
            default:
                if c.value < 0x20 { throw fail("control character in string") }
                out.append(c)
            }
        }
        throw fail("unterminated string")
    }

    mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        guard index + 4 <= scalars.count else { throw fail("truncated \\u escape") }
        let text = String(String.UnicodeScalarView(scalars[index..<index + 4]))
        guard let v = UInt32(text, radix: 16) else { throw fail("invalid \\u escape") }
        index += 4
        return v
    }

    mutating func parseArray(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        index += 1
        var items: [JSONValue] = []
        skipSpace()
        if index < scalars.count, scalars[index] == "]" {
            index += 1
            return .array(items)
        }
        while true {
            skipSpace()
            items.append(try parseValue(depth: depth + 1))
            skipSpace()
            guard index < scalars.count else { throw fail("unterminated list") }
            if scalars[index] == "," {
                index += 1
            } else if scalars[index] == "]" {
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
        if index < scalars.count, scalars[index] == "}" {
            index += 1
            return .object([])
        }
        while true {
            skipSpace()
            guard index < scalars.count, scalars[index] == "\"" else { throw fail("expected a member name in quotes") }
            let key = try parseString()
            skipSpace()
            guard index < scalars.count, scalars[index] == ":" else { throw fail("expected ':'") }
            index += 1
            skipSpace()
            pairs.append((key, try parseValue(depth: depth + 1)))
            skipSpace()
            guard index < scalars.count else { throw fail("unterminated object") }
            if scalars[index] == "," {
                index += 1
            } else if scalars[index] == "}" {
                index += 1
                return .members(pairs)
            } else {
                throw fail("expected ',' or '}'")
            }
        }
    }
}
