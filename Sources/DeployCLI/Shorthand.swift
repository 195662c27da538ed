import DeployModel

/// A shorthand value that could not be parsed, with the position where parsing stopped.
struct ShorthandSyntaxError: Error, CustomStringConvertible {
    var text: String
    var offset: Int
    var reason: String

    var description: String {
        let caret = String(repeating: " ", count: offset) + "^"
        return "\(reason) at character \(offset + 1):\n  \(text)\n  \(caret)"
    }
}

/// The aws CLI's shorthand syntax: `Key=env,Value=prod`, `bucket=b,key=k`, nested `{a=b}` and `[x,y]`,
/// implicit lists (`events=A,B,enabled=true`), and single- or double-quoted values. Every scalar comes out
/// as a string; the decoder converts it to the member's type.
struct ShorthandParser {
    let chars: [Character]
    let text: String
    var index = 0

    init(_ text: String) {
        self.text = text
        self.chars = Array(text)
    }

    static func parseStructure(_ text: String) throws -> JSONValue {
        var parser = ShorthandParser(text)
        let value = try parser.parseMembers(closing: nil)
        if parser.index < parser.chars.count { throw parser.fail("unexpected '\(parser.chars[parser.index])'") }
        return value
    }

    func fail(_ reason: String) -> ShorthandSyntaxError {
        ShorthandSyntaxError(text: text, offset: min(index, chars.count), reason: reason)
    }

    var atEnd: Bool { index >= chars.count }

    mutating func skipSpaces() {
        while index < chars.count, chars[index] == " " { index += 1 }
    }

    /// `key=value(,key=value)*` up to `closing` (or the end).
    mutating func parseMembers(closing: Character?) throws -> JSONValue {
        var pairs: [(String, JSONValue)] = []
        while true {
            skipSpaces()
            if let closing, index < chars.count, chars[index] == closing, pairs.isEmpty { break }
            let key = try parseKey()
            guard index < chars.count, chars[index] == "=" else {
                throw fail("expected '=' after '\(key)' (shorthand is Key=Value,Key2=Value2)")
            }
            index += 1
            var value = try parseValue(stops: closing.map { [",", $0] } ?? [","])
            // An implicit list: `events=A,B` goes on while the next item has no `=`.
            var items: [JSONValue]? = nil
            while index < chars.count, chars[index] == ",", !nextItemIsMember(closing: closing) {
                index += 1
                let itemStart = index
                let item = try parseValue(stops: closing.map { [",", $0] } ?? [","])
                if item == .string(""), itemStart >= chars.count || (chars[itemStart] != "'" && chars[itemStart] != "\"") {
                    index = itemStart
                    throw fail("empty list item (quote it as '' if it is meant to be empty)")
                }
                if items == nil { items = [value] }
                items?.append(item)
            }
            if let items { value = .array(items) }
            pairs.append((key, value))
            skipSpaces()
            if index >= chars.count { break }
            if let closing, chars[index] == closing { break }
            guard chars[index] == "," else { throw fail("expected ',' between members") }
            index += 1
        }
        return .members(pairs)
    }

    /// Whether the text after the comma at `index` starts a new `key=` member.
    func nextItemIsMember(closing: Character?) -> Bool {
        var i = index + 1
        while i < chars.count, chars[i] == " " { i += 1 }
        if i < chars.count, chars[i] == "[" || chars[i] == "{" || chars[i] == "'" || chars[i] == "\"" { return false }
        while i < chars.count {
            let c = chars[i]
            if c == "=" { return true }
            if c == "," || c == closing || c == "]" { return false }
            i += 1
        }
        return false
    }

    mutating func parseKey() throws -> String {
        let start = index
        while index < chars.count, chars[index] != "=", chars[index] != ",", chars[index] != "}", chars[index] != "]" {
            index += 1
        }
        let key = String(chars[start..<index]).trimmingCharactersInSpaces()
        guard !key.isEmpty else { throw fail("expected a member name") }
        return key
    }

    mutating func parseValue(stops: [Character]) throws -> JSONValue {
        skipSpaces()
        guard index < chars.count else { return .string("") }
        switch chars[index] {
        case "[":
            index += 1
            var items: [JSONValue] = []
            skipSpaces()
            if index < chars.count, chars[index] == "]" {
                index += 1
                return .array(items)
            }
            while true {
                items.append(try parseValue(stops: [",", "]"]))
                skipSpaces()
                guard index < chars.count else { throw fail("missing ']'") }
                if chars[index] == "]" {
                    index += 1
                    return .array(items)
                }
                index += 1
            }
        case "{":
            index += 1
            let value = try parseMembers(closing: "}")
            guard index < chars.count, chars[index] == "}" else { throw fail("missing '}'") }
            index += 1
            return value
        case "'", "\"":
            let quote = chars[index]
            index += 1
            let start = index
            while index < chars.count, chars[index] != quote { index += 1 }
            guard index < chars.count else { throw fail("missing closing \(quote)") }
            let value = String(chars[start..<index])
            index += 1
            return .string(value)
        default:
            let start = index
            while index < chars.count, !stops.contains(chars[index]) {
                if chars[index] == "\\", index + 1 < chars.count { index += 1 }
                index += 1
            }
            var raw = String(chars[start..<index]).trimmingCharactersInSpaces()
            raw = raw.replacingEscapes()
            return .string(raw)
        }
    }
}

extension String {
    func trimmingCharactersInSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }

    fileprivate func replacingEscapes() -> String {
        guard contains("\\") else { return self }
        var out = ""
        var escaped = false
        for c in self {
            if escaped {
                out.append(c)
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else {
                out.append(c)
            }
        }
        return out
    }
}
