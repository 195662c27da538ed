import DeployModel

/// A JMESPath syntax or evaluation error, with the character position of a syntax error in the expression.
public struct JMESPathError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The expression does not parse (what the aws CLI reports as "Bad value for --query").
        case syntax
        /// A function got the wrong number or types of arguments, or does not exist.
        case function
        /// Values that cannot be compared or sliced.
        case evaluation
    }

    public var kind: Kind
    public var message: String
    /// Where a syntax error was found (0-based character offset), when known.
    public var position: Int?

    public var description: String {
        position.map { "\(message) (at character \($0 + 1))" } ?? message
    }
}

/// One token of an expression, as jmespath.py's lexer makes them.
struct Token: Equatable {
    enum Kind: String {
        case dot, star, rbracket, comma, colon, current, lparen, rparen, lbrace, rbrace
        case unquotedIdentifier = "unquoted_identifier", quotedIdentifier = "quoted_identifier"
        case flatten, filter, lbracket, literal, number
        case pipe, or, and, expref, lt, lte, gt, gte, eq, ne, not, eof
    }

    var kind: Kind
    var text: String = ""
    var literal: JSONValue = .null
    var number: Int = 0
    var start: Int
}

/// Splits an expression into tokens (the grammar of jmespath.org and jmespath.py 1.1, quirks included: a JSON
/// literal that is not JSON is read as a string, a raw string keeps backslashes other than `\'`).
struct Lexer {
    let chars: [Character]
    var position = 0

    init(_ text: String) { chars = Array(text) }

    var current: Character? { position < chars.count ? chars[position] : nil }

    static func isIdentifierStart(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c == "_") }
    static func isIdentifierPart(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c.isNumber || c == "_") }
    static func isDigit(_ c: Character) -> Bool { c.isASCII && c.isNumber }

    func fail(_ message: String, at start: Int) -> JMESPathError { JMESPathError(kind: .syntax, message: message, position: start) }

    mutating func tokenize() throws(JMESPathError) -> [Token] {
        guard !chars.isEmpty else { throw JMESPathError(kind: .syntax, message: "Invalid JMESPath expression: cannot be empty.") }
        var tokens: [Token] = []
        let simple: [Character: Token.Kind] = [
            ".": .dot, "*": .star, "]": .rbracket, ",": .comma, ":": .colon, "@": .current, "(": .lparen, ")": .rparen, "{": .lbrace,
            "}": .rbrace,
        ]
        while let c = current {
            let start = position
            if let kind = simple[c] {
                tokens.append(Token(kind: kind, text: String(c), start: start))
                position += 1
            } else if Self.isIdentifierStart(c) {
                var text = ""
                while let d = current, Self.isIdentifierPart(d) {
                    text.append(d)
                    position += 1
                }
                tokens.append(Token(kind: .unquotedIdentifier, text: text, start: start))
            } else if c == " " || c == "\t" || c == "\n" || c == "\r" {
                position += 1
            } else if c == "[" {
                position += 1
                if current == "]" {
                    position += 1
                    tokens.append(Token(kind: .flatten, text: "[]", start: start))
                } else if current == "?" {
                    position += 1
                    tokens.append(Token(kind: .filter, text: "[?", start: start))
                } else {
                    tokens.append(Token(kind: .lbracket, text: "[", start: start))
                }
            } else if c == "'" {
                let raw = try consume(until: "'").replacingOccurrences(of: "\\'", with: "'")
                tokens.append(Token(kind: .literal, text: raw, literal: .string(raw), start: start))
            } else if c == "|" {
                tokens.append(matchOrElse("|", .or, .pipe, start))
            } else if c == "&" {
                tokens.append(matchOrElse("&", .and, .expref, start))
            } else if c == "`" {
                let lexeme = try consume(until: "`").replacingOccurrences(of: "\\`", with: "`")
                tokens.append(Token(kind: .literal, text: lexeme, literal: try Self.literal(lexeme, start: start), start: start))
            } else if Self.isDigit(c) || c == "-" {
                var text = String(c)
                position += 1
                while let d = current, Self.isDigit(d) {
                    text.append(d)
                    position += 1
                }
                guard text != "-" else { throw fail("Unknown token '-'", at: start) }
                guard let value = Int(text) else { throw fail("Number out of range: \(text)", at: start) }
                tokens.append(Token(kind: .number, text: text, number: value, start: start))
            } else if c == "\"" {
                let lexeme = "\"" + (try consume(until: "\"")) + "\""
                guard case .string(let name)? = try? JSONValue.parse(lexeme) else {
                    throw fail("Invalid quoted identifier \(lexeme)", at: start)
                }
                tokens.append(Token(kind: .quotedIdentifier, text: name, start: start))
            } else if c == "<" {
                tokens.append(matchOrElse("=", .lte, .lt, start))
            } else if c == ">" {
                tokens.append(matchOrElse("=", .gte, .gt, start))
            } else if c == "!" {
                tokens.append(matchOrElse("=", .ne, .not, start))
            } else if c == "=" {
                position += 1
                guard current == "=" else { throw fail("Unknown token '='", at: start) }
                position += 1
                tokens.append(Token(kind: .eq, text: "==", start: start))
            } else {
                throw fail("Unknown token '\(c)'", at: start)
            }
        }
        tokens.append(Token(kind: .eof, start: chars.count))
        return tokens
    }

    mutating func matchOrElse(_ expected: Character, _ matched: Token.Kind, _ otherwise: Token.Kind, _ start: Int) -> Token {
        let first = chars[position]
        position += 1
        if current == expected {
            position += 1
            return Token(kind: matched, text: String([first, expected]), start: start)
        }
        return Token(kind: otherwise, text: String(first), start: start)
    }

    /// The text up to the closing `delimiter`; a backslash keeps itself and the character after it.
    mutating func consume(until delimiter: Character) throws(JMESPathError) -> String {
        let start = position
        var text = ""
        position += 1
        while current != delimiter {
            if current == "\\" {
                text.append("\\")
                position += 1
            }
            guard let c = current else { throw fail("Unclosed \(delimiter) delimiter", at: start) }
            text.append(c)
            position += 1
        }
        position += 1
        return text
    }

    /// A backtick literal: JSON, or (deprecated, still accepted) the text as a string.
    static func literal(_ lexeme: String, start: Int) throws(JMESPathError) -> JSONValue {
        if let value = try? JSONValue.parse(lexeme) { return value }
        let trimmed = String(lexeme.drop { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" })
        if let value = try? JSONValue.parse("\"" + trimmed + "\"") { return value }
        throw JMESPathError(kind: .syntax, message: "Bad token `\(lexeme)`", position: start)
    }
}
