import DeployModel
import Foundation

/// JMESPath's built-in functions, with jmespath.py's argument checks (arity, then types; `array-number` means every
/// element a number; `[array-number, array-string]` means all numbers or all strings, as the first one decides).
enum Functions {
    struct Signature {
        var parameters: [[String]]
        var variadic = false
    }

    static let signatures: [String: Signature] = [
        "abs": Signature(parameters: [["number"]]),
        "avg": Signature(parameters: [["array-number"]]),
        "ceil": Signature(parameters: [["number"]]),
        "contains": Signature(parameters: [["array", "string"], []]),
        "ends_with": Signature(parameters: [["string"], ["string"]]),
        "floor": Signature(parameters: [["number"]]),
        "join": Signature(parameters: [["string"], ["array-string"]]),
        "keys": Signature(parameters: [["object"]]),
        "length": Signature(parameters: [["string", "array", "object"]]),
        "map": Signature(parameters: [["expref"], ["array"]]),
        "max": Signature(parameters: [["array-number", "array-string"]]),
        "max_by": Signature(parameters: [["array"], ["expref"]]),
        "merge": Signature(parameters: [["object"]], variadic: true),
        "min": Signature(parameters: [["array-number", "array-string"]]),
        "min_by": Signature(parameters: [["array"], ["expref"]]),
        "not_null": Signature(parameters: [[]], variadic: true),
        "reverse": Signature(parameters: [["array", "string"]]),
        "sort": Signature(parameters: [["array-string", "array-number"]]),
        "sort_by": Signature(parameters: [["array"], ["expref"]]),
        "starts_with": Signature(parameters: [["string"], ["string"]]),
        "sum": Signature(parameters: [["array-number"]]),
        "to_array": Signature(parameters: [[]]),
        "to_number": Signature(parameters: [[]]),
        "to_string": Signature(parameters: [[]]),
        "type": Signature(parameters: [[]]),
        "values": Signature(parameters: [["object"]]),
    ]

    static func fail(_ message: String) -> JMESPathError { JMESPathError(kind: .function, message: message) }

    static func typeName(_ argument: Argument) -> String {
        switch argument {
        case .expression: return "expref"
        case .value(let value): return typeName(value)
        }
    }

    static func typeName(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool: return "boolean"
        case .int, .double: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    static func call(_ name: String, _ arguments: [Argument]) throws(JMESPathError) -> JSONValue {
        guard let signature = signatures[name] else { throw fail("Unknown function: \(name)()") }
        let declared = signature.parameters.count
        if signature.variadic ? arguments.count < declared : arguments.count != declared {
            // jmespath.py raises ArityError, a ParseError: a wrong argument count is a syntax error there.
            throw JMESPathError(
                kind: .syntax,
                message:
                    "Expected \(signature.variadic ? "at least " : "")\(declared) argument\(declared == 1 ? "" : "s") for function \(name)(), received \(arguments.count)"
            )
        }
        for (index, argument) in arguments.enumerated() {
            let types = index < declared ? signature.parameters[index] : (signature.variadic ? signature.parameters[declared - 1] : [])
            try check(argument, types, name)
        }
        return try run(name, arguments)
    }

    static func check(_ argument: Argument, _ types: [String], _ name: String) throws(JMESPathError) {
        guard !types.isEmpty else {
            if case .expression = argument { throw fail("\(name)() cannot take an expression reference (&…)") }
            return
        }
        let actual = typeName(argument)
        let bases = types.map { $0.split(separator: "-").first.map(String.init) ?? $0 }
        guard bases.contains(actual) else {
            throw fail("In function \(name)(), invalid type for value: expected one of \(types), received \"\(actual)\"")
        }
        let subtypes = types.compactMap { type -> String? in
            let parts = type.split(separator: "-", maxSplits: 1)
            return parts.count == 2 ? String(parts[1]) : nil
        }
        guard !subtypes.isEmpty, case .value(.array(let items)) = argument else { return }
        let allowed: String
        if subtypes.count == 1 {
            allowed = subtypes[0]
        } else {
            guard let first = items.first else { return }
            guard subtypes.contains(typeName(first)) else {
                throw fail("In function \(name)(), invalid type for value: expected one of \(types), received \"\(typeName(first))\"")
            }
            allowed = typeName(first)
        }
        for item in items where typeName(item) != allowed {
            throw fail("In function \(name)(), invalid type for value: expected one of \(types), received \"\(typeName(item))\"")
        }
    }

    static func value(_ argument: Argument) -> JSONValue {
        if case .value(let value) = argument { return value }
        return .null
    }

    static func expression(_ argument: Argument) -> Node {
        if case .expression(let node) = argument { return node }
        return .identity
    }

    static func run(_ name: String, _ arguments: [Argument]) throws(JMESPathError) -> JSONValue {
        let first = arguments.first.map(value) ?? .null
        switch name {
        case "abs":
            if case .int(let i) = first { return .int(i.magnitude > UInt(Int.max) ? i : abs(i)) }
            return .double(abs(Interpreter.number(first) ?? 0))
        case "avg":
            let numbers = first.arrayValue ?? []
            guard !numbers.isEmpty else { return .null }
            return .double(sum(numbers).asDouble / Double(numbers.count))
        case "ceil", "floor":
            if case .int = first { return first }
            let d = Interpreter.number(first) ?? 0
            let rounded = name == "ceil" ? d.rounded(.up) : d.rounded(.down)
            guard rounded.isFinite, abs(rounded) < 9.2e18 else { throw fail("\(name)() of \(d) is out of range") }
            return .int(Int(rounded))
        case "contains":
            let search = value(arguments[1])
            if case .string(let subject) = first {
                guard case .string(let needle) = search else { throw fail("contains() on a string needs a string to search for") }
                return .bool(needle.isEmpty || subject.unicodeScalars.firstRange(of: needle.unicodeScalars) != nil)
            }
            return .bool((first.arrayValue ?? []).contains { Interpreter.pythonEqual($0, search) })
        case "ends_with", "starts_with":
            let subject = Array((first.stringValue ?? "").unicodeScalars)
            let affix = Array((value(arguments[1]).stringValue ?? "").unicodeScalars)
            guard affix.count <= subject.count else { return .bool(false) }
            return .bool(name == "starts_with" ? Array(subject.prefix(affix.count)) == affix : Array(subject.suffix(affix.count)) == affix)
        case "join":
            let separator = first.stringValue ?? ""
            return .string((value(arguments[1]).arrayValue ?? []).compactMap(\.stringValue).joined(separator: separator))
        case "keys":
            guard case .object(let members) = first else { return .null }
            return .array(members.map { .string($0.key) })
        case "values":
            guard case .object(let members) = first else { return .null }
            return .array(members.map(\.value))
        case "length":
            switch first {
            case .string(let s): return .int(s.unicodeScalars.count)
            case .array(let a): return .int(a.count)
            case .object(let o): return .int(o.count)
            default: return .null
            }
        case "map":
            let node = expression(arguments[0])
            var results: [JSONValue] = []
            for item in value(arguments[1]).arrayValue ?? [] { results.append(try Interpreter.evaluate(node, item)) }
            return .array(results)
        case "max", "min":
            let items = first.arrayValue ?? []
            guard var best = items.first else { return .null }
            for item in items.dropFirst() {
                let order = try compareKeys(item, best, name)
                if name == "max" ? order > 0 : order < 0 { best = item }
            }
            return best
        case "max_by", "min_by":
            let items = first.arrayValue ?? []
            let node = expression(arguments[1])
            guard var best = items.first else { return .null }
            var bestKey = try key(node, best, name, allowed: ["number", "string"])
            for item in items.dropFirst() {
                let itemKey = try key(node, item, name, allowed: ["number", "string"])
                let order = try compareKeys(itemKey, bestKey, name)
                if name == "max_by" ? order > 0 : order < 0 {
                    best = item
                    bestKey = itemKey
                }
            }
            return best
        case "merge":
            var merged = JSONValue.object([])
            for argument in arguments { merged = merged.merging(value(argument)) }
            return merged
        case "not_null":
            return arguments.map(value).first { $0 != .null } ?? .null
        case "reverse":
            if case .string(let s) = first {
                var scalars = String.UnicodeScalarView()
                scalars.append(contentsOf: s.unicodeScalars.reversed())
                return .string(String(scalars))
            }
            return .array((first.arrayValue ?? []).reversed())
        case "sort":
            return .array(try stableSort(first.arrayValue ?? [], keys: first.arrayValue ?? [], name))
        case "sort_by":
            let items = first.arrayValue ?? []
            guard let head = items.first else { return first }
            let node = expression(arguments[1])
            let required = typeName(try Interpreter.evaluate(node, head))
            guard required == "number" || required == "string" else {
                throw fail("In function sort_by(), invalid type for value: expected one of [\"string\", \"number\"], received \"\(required)\"")
            }
            var keys: [JSONValue] = []
            for item in items { keys.append(try key(node, item, name, allowed: [required])) }
            return .array(try stableSort(items, keys: keys, name))
        case "sum":
            return sum(first.arrayValue ?? []).value
        case "to_array":
            if case .array = first { return first }
            return .array([first])
        case "to_number":
            switch first {
            case .int, .double: return first
            case .string(let s): return parseNumber(s)
            default: return .null
            }
        case "to_string":
            if case .string = first { return first }
            return .string(PythonJSON.dumps(first))
        case "type":
            return .string(typeName(first))
        default:
            throw fail("Unknown function: \(name)()")
        }
    }

    struct Sum {
        var integer = 0
        var real = 0.0
        var isReal = false
        var asDouble: Double { isReal ? real : Double(integer) }
        var value: JSONValue { isReal ? .double(real) : .int(integer) }
    }

    /// Python's `sum`: integers stay integers until a float joins, then it adds left to right in floating point.
    static func sum(_ items: [JSONValue]) -> Sum {
        var total = Sum()
        for item in items {
            switch item {
            case .int(let i):
                if total.isReal {
                    total.real += Double(i)
                } else {
                    let (added, overflow) = total.integer.addingReportingOverflow(i)
                    if overflow {
                        total.isReal = true
                        total.real = Double(total.integer) + Double(i)
                    } else {
                        total.integer = added
                    }
                }
            case .double(let d):
                if !total.isReal {
                    total.isReal = true
                    total.real = Double(total.integer)
                }
                total.real += d
            default: break
            }
        }
        return total
    }

    static func key(_ node: Node, _ item: JSONValue, _ name: String, allowed: [String]) throws(JMESPathError) -> JSONValue {
        let result = try Interpreter.evaluate(node, item)
        guard allowed.contains(typeName(result)) else {
            throw fail("In function \(name)(), invalid type for value: expected one of \(allowed), received \"\(typeName(result))\"")
        }
        return result
    }

    /// Numbers with numbers, strings with strings (by code point); anything else is an error, as in Python.
    static func compareKeys(_ a: JSONValue, _ b: JSONValue, _ name: String) throws(JMESPathError) -> Int {
        if let x = Interpreter.number(a), let y = Interpreter.number(b) { return x < y ? -1 : x > y ? 1 : 0 }
        if case .string(let x) = a, case .string(let y) = b { return Interpreter.compareScalars(x, y) }
        throw fail("In function \(name)(), a \(typeName(a)) and a \(typeName(b)) cannot be compared")
    }

    /// Python's `sorted` (stable) of `items` by `keys`.
    static func stableSort(_ items: [JSONValue], keys: [JSONValue], _ name: String) throws(JMESPathError) -> [JSONValue] {
        var indices = Array(items.indices)
        var failure: JMESPathError?
        indices.sort { a, b in
            do throws(JMESPathError) {
                let order = try compareKeys(keys[a], keys[b], name)
                return order != 0 ? order < 0 : a < b
            } catch {
                failure = failure ?? error
                return a < b
            }
        }
        if let failure { throw failure }
        return indices.map { items[$0] }
    }

    /// Python's `int(s)`, else `float(s)`, else null.
    static func parseNumber(_ text: String) -> JSONValue {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if let i = Int(trimmed) { return .int(i) }
        let lowered = trimmed.lowercased()
        guard !lowered.contains("x"), !trimmed.isEmpty, let d = Double(trimmed) else { return .null }
        if !d.isFinite, !["inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "nan", "+nan", "-nan"].contains(lowered) {
            return .null
        }
        return .double(d)
    }
}

/// Python's `json.dumps(value, separators=(",", ":"))` (ASCII only, `\uXXXX` escapes), for `to_string`.
enum PythonJSON {
    static func dumps(_ value: JSONValue) -> String {
        var out = ""
        write(value, into: &out)
        return out
    }

    static func write(_ value: JSONValue, into out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isNaN {
                out += "NaN"
            } else if d.isInfinite {
                out += d > 0 ? "Infinity" : "-Infinity"
            } else {
                out += JSONValue.array([.double(d)]).compact().dropFirst().dropLast()
            }
        case .string(let s): JSONValue.writeString(s, into: &out, asciiOnly: true)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                write(item, into: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, member) in members.enumerated() {
                if i > 0 { out += "," }
                JSONValue.writeString(member.key, into: &out, asciiOnly: true)
                out += ":"
                write(member.value, into: &out)
            }
            out += "}"
        }
    }

}
