import DeployModel
import Foundation

/// A compiled JMESPath expression (jmespath.org; results identical to jmespath.py 1.1, which the aws CLI's `--query`
/// uses: `Tests/JMESPathTests` compares the two on thousands of expressions).
public struct JMESPathExpression: Sendable {
    let root: Node
    public let text: String

    /// Parses `text`; a syntax error says where.
    public init(_ text: String) throws(JMESPathError) {
        self.text = text
        root = try Parser.parse(text)
    }

    /// Evaluates the expression against `value`.
    public func search(_ value: JSONValue) throws(JMESPathError) -> JSONValue {
        try Interpreter.evaluate(root, value)
    }
}

/// The tree-walking evaluator, after jmespath.py's `TreeInterpreter` (Python's equality, ordering and truthiness
/// where the specification leaves them open).
enum Interpreter {
    static func evaluate(_ node: Node, _ value: JSONValue) throws(JMESPathError) -> JSONValue {
        switch node {
        case .identity, .current: return value
        case .field(let name): return value[name] ?? .null
        case .literal(let literal): return literal
        case .subexpression(let children), .indexExpression(let children):
            var result = value
            for child in children { result = try evaluate(child, result) }
            return result
        case .index(let position):
            guard case .array(let items) = value else { return .null }
            let actual = position < 0 ? items.count + position : position
            return items.indices.contains(actual) ? items[actual] : .null
        case .slice(let start, let stop, let step):
            guard case .array(let items) = value else { return .null }
            return .array(try slice(items, start: start, stop: stop, step: step))
        case .projection(let left, let right):
            guard case .array(let items) = try evaluate(left, value) else { return .null }
            return .array(try collect(items, right))
        case .valueProjection(let left, let right):
            guard case .object(let members) = try evaluate(left, value) else { return .null }
            return .array(try collect(members.map(\.value), right))
        case .filterProjection(let left, let right, let condition):
            guard case .array(let items) = try evaluate(left, value) else { return .null }
            var kept: [JSONValue] = []
            for item in items where isTrue(try evaluate(condition, item)) {
                let projected = try evaluate(right, item)
                if projected != .null { kept.append(projected) }
            }
            return .array(kept)
        case .flatten(let inner):
            guard case .array(let items) = try evaluate(inner, value) else { return .null }
            var merged: [JSONValue] = []
            for item in items {
                if case .array(let nested) = item { merged += nested } else { merged.append(item) }
            }
            return .array(merged)
        case .comparator(let kind, let leftNode, let rightNode):
            let left = try evaluate(leftNode, value)
            let right = try evaluate(rightNode, value)
            switch kind {
            case .eq: return .bool(topLevelEqual(left, right))
            case .ne: return .bool(!topLevelEqual(left, right))
            default:
                guard let order = try order(left, right) else { return .null }
                switch kind {
                case .lt: return .bool(order < 0)
                case .lte: return .bool(order <= 0)
                case .gt: return .bool(order > 0)
                default: return .bool(order >= 0)
                }
            }
        case .or(let left, let right):
            let matched = try evaluate(left, value)
            return isTrue(matched) ? matched : try evaluate(right, value)
        case .and(let left, let right):
            let matched = try evaluate(left, value)
            return isTrue(matched) ? try evaluate(right, value) : matched
        case .not(let inner):
            let result = try evaluate(inner, value)
            if number(result) != nil { return .bool(false) }
            return .bool(!isTrue(result))
        case .pipe(let left, let right):
            return try evaluate(right, try evaluate(left, value))
        case .multiSelectList(let nodes):
            if value == .null { return .null }
            var items: [JSONValue] = []
            for child in nodes { items.append(try evaluate(child, value)) }
            return .array(items)
        case .multiSelectHash(let pairs):
            if value == .null { return .null }
            var members: [(String, JSONValue)] = []
            for (key, child) in pairs { members.append((key, try evaluate(child, value))) }
            return .members(members)
        case .function(let name, let argumentNodes):
            var arguments: [Argument] = []
            for child in argumentNodes {
                if case .expref(let expression) = child {
                    arguments.append(.expression(expression))
                } else {
                    arguments.append(.value(try evaluate(child, value)))
                }
            }
            return try Functions.call(name, arguments)
        case .expref:
            throw JMESPathError(kind: .evaluation, message: "An expression reference (&…) can only be a function's argument.")
        }
    }

    static func collect(_ items: [JSONValue], _ right: Node) throws(JMESPathError) -> [JSONValue] {
        var collected: [JSONValue] = []
        for item in items {
            let projected = try evaluate(right, item)
            if projected != .null { collected.append(projected) }
        }
        return collected
    }

    /// Python's slice semantics (`list[start:stop:step]`); a zero step is an error.
    static func slice(_ items: [JSONValue], start: Int?, stop: Int?, step: Int?) throws(JMESPathError) -> [JSONValue] {
        let step = step ?? 1
        guard step != 0 else { throw JMESPathError(kind: .evaluation, message: "A slice step cannot be 0.") }
        let length = items.count
        func adjust(_ given: Int?, _ fallback: Int) -> Int {
            guard var position = given else { return fallback }
            if position < 0 {
                position += length
                if position < 0 { position = step < 0 ? -1 : 0 }
            } else if position >= length {
                position = step < 0 ? length - 1 : length
            }
            return position
        }
        var position = adjust(start, step < 0 ? length - 1 : 0)
        let end = adjust(stop, step < 0 ? -1 : length)
        var result: [JSONValue] = []
        while step > 0 ? position < end : position > end {
            result.append(items[position])
            position += step
        }
        return result
    }

    /// JMESPath's falsy values: empty string, list or object, null and false (numbers are true, 0 included).
    static func isTrue(_ value: JSONValue) -> Bool {
        switch value {
        case .null, .bool(false): return false
        case .string(let s): return !s.isEmpty
        case .array(let a): return !a.isEmpty
        case .object(let o): return !o.isEmpty
        default: return true
        }
    }

    /// A number that is not a boolean.
    static func number(_ value: JSONValue) -> Double? {
        switch value {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// `==` at the top of a comparison: a number never equals a boolean (jmespath.py special-cases Python's 1 == True).
    static func topLevelEqual(_ left: JSONValue, _ right: JSONValue) -> Bool {
        switch (left, right) {
        case (.bool, .int), (.bool, .double), (.int, .bool), (.double, .bool): return false
        default: return pythonEqual(left, right)
        }
    }

    /// Python's `==` on decoded JSON: numbers by value (booleans count as 0 and 1 inside containers), objects
    /// regardless of member order.
    static func pythonEqual(_ left: JSONValue, _ right: JSONValue) -> Bool {
        func numeric(_ v: JSONValue) -> Double? {
            if case .bool(let b) = v { return b ? 1 : 0 }
            return number(v)
        }
        switch (left, right) {
        case (.null, .null): return true
        case (.string(let a), .string(let b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case (.bool(let a), .bool(let b)): return a == b
        case (.int(let a), .int(let b)): return a == b
        case (.array(let a), .array(let b)): return a.count == b.count && zip(a, b).allSatisfy { pythonEqual($0, $1) }
        case (.object(let a), .object(let b)):
            guard a.count == b.count else { return false }
            return a.allSatisfy { member in b.contains { $0.key == member.key && pythonEqual($0.value, member.value) } }
        default:
            if let a = numeric(left), let b = numeric(right) { return a == b }
            return false
        }
    }

    /// Ordering for `<`, `<=`, `>`, `>=`: numbers with numbers, strings with strings (by code point); nil for other
    /// types; a number against a string is an error (Python refuses to compare them).
    static func order(_ left: JSONValue, _ right: JSONValue) throws(JMESPathError) -> Int? {
        if let a = number(left), let b = number(right) { return a < b ? -1 : a > b ? 1 : 0 }
        if case .string(let a) = left, case .string(let b) = right { return compareScalars(a, b) }
        func comparable(_ v: JSONValue) -> Bool {
            if case .string = v { return true }
            return number(v) != nil
        }
        if comparable(left), comparable(right) {
            throw JMESPathError(kind: .evaluation, message: "A number and a string cannot be compared.")
        }
        return nil
    }

    static func compareScalars(_ a: String, _ b: String) -> Int {
        var left = a.unicodeScalars.makeIterator()
        var right = b.unicodeScalars.makeIterator()
        while true {
            switch (left.next(), right.next()) {
            case (nil, nil): return 0
            case (nil, _): return -1
            case (_, nil): return 1
            case (let x?, let y?):
                if x.value != y.value { return x.value < y.value ? -1 : 1 }
            }
        }
    }
}

/// A function argument: a value, or an expression reference (`&expr`).
enum Argument {
    case value(JSONValue)
    case expression(Node)
}
