import DeployModel
import Foundation
import TestSupport
import Testing

@testable import JMESPath

/// deployctl's JMESPath against Python's `jmespath` (what the aws CLI's `--query` runs) on the same documents:
/// hand-written cases for every part of the grammar and every function, and thousands of generated expressions. A
/// case agrees when both give the same JSON, or both refuse it the same way (syntax error, or an error evaluating).
@Suite struct DifferentialTests {
    static let documents: [String] = [
        #"""
        {"foo": {"bar": {"baz": [0, 1, 2, 3, 4]}, "qux": "x"}, "a": [{"b": 1, "c": "x"}, {"b": 2, "c": "y"}, {"b": null, "c": "z"}, {"b": 3.5}],
         "people": [{"name": "b", "age": 30, "tags": ["x", "y"]}, {"name": "a", "age": 25, "tags": []}, {"name": "c", "age": null}, {"name": "é", "age": 25.5}],
         "s": "héllo wörld 😀", "n": -3.7, "i": 42, "t": true, "f": false, "z": 0, "e": "", "nil": null,
         "l": [[1, 2], [3, [4, 5]], 6, [], "x"], "o": {"k1": 1, "k2": "v", "k3": [1, 2], "k4": {"deep": true}},
         "nums": [3, 1.5, -2, 10, 0], "strs": ["b", "a", "C", "", "ab"], "mixed": [1, "1", true, null, [1], {"a": 1}],
         "nested": {"list": [{"x": [{"y": 1}, {"y": 2}]}, {"x": [{"y": 3}]}, {"x": []}]}}
        """#,
        #"""
        {"deploymentInfo": {"applicationName": "web", "deploymentId": "d-ABC123", "status": "Failed", "deploymentOverview":
         {"Pending": 0, "InProgress": 0, "Succeeded": 2, "Failed": 1, "Skipped": 0},
         "errorInformation": {"code": "HEALTH_CONSTRAINTS", "message": "too many failed"},
         "instances": [{"id": "web-1", "status": "Succeeded", "events": [{"name": "Install", "status": "Succeeded"}]},
                       {"id": "web-2", "status": "Failed", "events": [{"name": "Install", "status": "Succeeded"}, {"name": "ValidateService", "status": "Failed"}]}],
         "createTime": 1764523200.5, "tags": {"env": "prod", "team": "ops"}}, "deployments": ["d-1", "d-2", "d-3"], "nextToken": null}
        """#,
        #"[1, "a", null, {"a": 1, "b": [1, 2]}, [1, [2]], true, 2.5, -1, "", {}]"#,
    ]

    static let handWritten: [String] = [
        "foo", "foo.bar", "foo.bar.baz", "foo.bar.baz[0]", "foo.bar.baz[-1]", "foo.bar.baz[10]", "foo.bar.baz[-10]", "foo.nope.baz",
        "foo.*", "foo.*.baz", "foo.*.baz[0]", "*", "*.*", "@", "@.foo", "\"foo\".\"bar\"", "\"\"", "\"a b\"", "foo.\"qux\"",
        "a[*].b", "a[].b", "a[*].c", "a[0:2].b", "a[::2].c", "a[::-1].c", "a[-2:].c", "a[:-1]", "a[5:]", "a[1:1]", "a[::0]", "a[0:3:2]",
        "foo.bar.baz[1:3]", "foo.bar.baz[:]", "foo.bar.baz[::-2]", "foo.bar.baz[3:0:-1]", "foo.bar.baz[-1:-4:-1]", "s[0:2]",
        "l[]", "l[][]", "l[0][1]", "l[1][1][0]", "l[*][0]", "l[][0]", "[0:2]", "[-1]", "[*]", "[]", "[?@ == `1`]",
        "a[?b > `1`]", "a[?b > `1`].c", "a[?b == `null`].c", "a[?b != `null`] | length(@)", "a[?c == 'y'].b | [0]",
        "people[?age >= `26`].name | [0]", "people[?age < `30`].name", "people[?tags].name", "people[?!tags].name",
        "people[?contains(tags, 'x')].name", "people[?name > 'a'].name", "people[?age > 'a']", "people[?starts_with(name, 'a')]",
        "a[?b >= `1` && c == 'y'].b", "a[?b == `1` || c == 'z'].c", "a[?!b].c", "a[?`true`].c", "a[?`false`]",
        "t && f", "t || f", "f || e || nil || 'last'", "e || z", "z && 'zero is true'", "!z", "!e", "!t", "!nil", "!`[]`", "!`0.0`",
        "i > `41`", "i == `42.0`", "z == f", "t == `1`", "`[1]` == `[true]`", "`{\"a\": 1, \"b\": 2}` == `{\"b\": 2, \"a\": 1}`",
        "s == 'héllo wörld 😀'", "nums[?@ > `0`]", "strs[?@ > 'a']", "mixed[?@ == `1`]", "mixed[?@]", "mixed[0] < mixed[1]",
        "[foo, a]", "[foo.qux, i, `3`]", "{x: i, y: s}", "{\"quoted key\": i}", "foo.{q: qux, b: bar.baz[0]}", "foo.[qux, qux]",
        "a[*].[b, c]", "a[*].{b: b}", "people[*].{n: name, a: age}", "nil.[a]", "nil.{a: a}", "{a: i, a: s}", "{a: i b: s}",
        "a | [0]", "a | [0].c", "a[*].b | [0]", "a[].b | sort(@)", "foo.bar | baz", "(foo.bar).baz", "(a[*].b)[0]",
        "length(s)", "length(a)", "length(o)", "length(i)", "length(`\"😀\"`)", "reverse(s)", "reverse(nums)", "reverse(i)",
        "keys(o)", "values(o)", "keys(a)", "sort(nums)", "sort(strs)", "sort(mixed)", "sort(`[]`)", "max(nums)", "min(nums)",
        "max(strs)", "min(strs)", "max(`[]`)", "max(mixed)", "sum(nums)", "sum(`[]`)", "sum(`[1, 2]`)", "avg(nums)", "avg(`[]`)",
        "avg(`[2, 2]`)", "abs(n)", "abs(i)", "abs(s)", "ceil(n)", "floor(n)", "ceil(i)", "floor(`1.5`)",
        "join(', ', strs)", "join(', ', nums)", "join(`1`, strs)", "contains(s, 'wör')", "contains(s, '')", "contains(strs, 'a')",
        "contains(nums, `10`)", "contains(nums, `10.0`)", "contains(`[1]`, `true`)", "contains(s, `1`)", "contains(i, `1`)",
        "starts_with(s, 'hé')", "ends_with(s, '😀')", "ends_with(s, `1`)", "to_string(o)", "to_string(s)", "to_string(n)",
        "to_string(people[0])", "to_string(`1.0`)", "to_string(`[1e20, 0.1]`)", "to_number('42')", "to_number(' 7 ')",
        "to_number('1.5e3')", "to_number('abc')", "to_number(t)", "to_number(nil)", "to_number(i)", "to_array(i)", "to_array(a)",
        "type(i)", "type(n)", "type(s)", "type(t)", "type(nil)", "type(o)", "type(a)", "not_null(nil, e, i)", "not_null(nil)",
        "not_null()", "merge(o, `{\"k1\": 2, \"new\": 3}`)", "merge(`{}`)", "merge(o, i)", "map(&b, a)", "map(&[b, c], a)",
        "map(&length(@), strs)", "sort_by(people, &name)[].name", "sort_by(people, &age)", "sort_by(a, &c)[].c",
        "sort_by(`[]`, &a)", "sort_by(a, &b)", "max_by(people, &age)", "min_by(people, &name).name", "max_by(a, &c).c",
        "min_by(`[]`, &a)", "max_by(mixed, &@)", "sort_by(people, &tags)", "length(`1`, `2`)", "unknown_function(i)", "length()",
        "sum(strs)", "avg(mixed)", "keys(@)", "deploymentInfo.instances[?status == 'Failed'].id",
        "deploymentInfo.instances[].events[?status == 'Failed'].name[]", "deploymentInfo.deploymentOverview.Failed",
        "deploymentInfo.[deploymentId, status]", "deploymentInfo.tags.env", "deployments[-1]", "deployments | length(@)",
        "deploymentInfo.errorInformation.code", "nested.list[].x[].y", "nested.list[*].x[*].y", "nested.list[].x[0].y",
        "nested.list[?length(x) > `0`].x[0].y", "nested.list[*].x[?y > `1`].y", "nested.list[0].x[*].y | [1]", "`\"literal\"`",
        "`foo`", "` foo`", "`[1, 2, 3]`[1]", "'raw\\'s'", "'a\\b'", "`\\``", "foo.`1`", "foo[`1`]",
        // Syntax errors.
        "", "foo.", ".foo", "foo..bar", "[?", "a[1", "a[", "a]", "foo bar", "'unclosed", "`unclosed", "\"unclosed", "=", "==",
        "foo =", "a[?b =", "!", "&", "|", "||", "a |", "{", "{a}", "{a:}", "{1: a}", "[a,]", "[,]", "a[0:1:2:3]", "a[::a]", "f(",
        "\"f\"(a)", "(a", "a)", "foo.[", "foo.{", "foo.1", "foo[1.5]", "-", "--1", "a[-]", "@@", "a.@", "#", "a ~ b", "$",
    ]

    /// Expressions built at random from the grammar over the documents' member names (seeded: a failure names the
    /// expression, and the same ones come back on every run).
    static func generated(count: Int) -> [String] {
        var rng = SplitMix64(seed: 0x5EED_2026)
        let names = [
            "foo", "bar", "baz", "a", "b", "c", "people", "name", "age", "tags", "s", "n", "i", "t", "f", "z", "e", "l", "o",
            "k1", "k3", "nums", "strs", "mixed", "nested", "list", "x", "y", "deploymentInfo", "status", "instances", "id", "events",
        ]
        let literals = ["`1`", "`0`", "`-1`", "`2.5`", "`\"x\"`", "'y'", "'a'", "`null`", "`true`", "`false`", "`[]`", "`{}`", "`[1, 2]`", "''"]
        func pick<T>(_ items: [T]) -> T { items[Int(rng.next() % UInt64(items.count))] }
        func chance(_ percent: UInt64) -> Bool { rng.next() % 100 < percent }
        func expression(_ depth: Int) -> String {
            if depth <= 0 || chance(25) { return chance(80) ? pick(names) : chance(50) ? pick(literals) : "@" }
            let e = { expression(depth - 1) }
            switch rng.next() % 22 {
            case 0, 1, 2: return "\(e()).\(pick(names))"
            case 3: return "\(e())[\(Int(rng.next() % 7) - 3)]"
            case 4:
                let part = { chance(50) ? String(Int(rng.next() % 9) - 4) : "" }
                return "\(e())[\(part()):\(part())\(chance(40) ? ":" + (chance(20) ? "0" : String(Int(rng.next() % 5) - 2)) : "")]"
            case 5: return "\(e())[*]\(chance(50) ? "." + pick(names) : "")"
            case 6: return "\(e())[]\(chance(50) ? "." + pick(names) : "")"
            case 7: return "\(e()).*"
            case 8:
                let comparator = pick(["==", "!=", "<", "<=", ">", ">="])
                let condition = chance(70) ? "\(expression(depth - 2)) \(comparator) \(chance(60) ? pick(literals) : expression(depth - 2))" : e()
                return "\(e())[?\(condition)]\(chance(40) ? "." + pick(names) : "")"
            case 9: return "\(e()) | \(e())"
            case 10: return "\(e()) || \(e())"
            case 11: return "\(e()) && \(e())"
            case 12: return "!\(e())"
            case 13: return "(\(e()))"
            case 14: return "[\(e()), \(e())]"
            case 15: return "{\(pick(names)): \(e()), \(pick(["k", "\"q k\""])): \(e())}"
            case 16: return "\(e()).[\(e()), \(pick(names))]"
            case 17: return "\(e()) \(pick(["==", "!=", "<", ">=", ">"])) \(e())"
            case 18:
                let unary = [
                    "length", "keys", "values", "sort", "reverse", "type", "to_string", "to_number", "to_array", "abs", "ceil",
                    "floor", "sum", "avg", "max", "min", "not_null",
                ]
                return "\(pick(unary))(\(e()))"
            case 19:
                let byName = pick(["sort_by", "max_by", "min_by"])
                return chance(80) ? "\(byName)(\(e()), &\(pick(names)))" : "map(&\(pick(names)), \(e()))"
            case 20:
                switch rng.next() % 5 {
                case 0: return "join(\(pick(["', '", "''"])), \(e()))"
                case 1: return "contains(\(e()), \(chance(50) ? pick(literals) : e()))"
                case 2: return "\(pick(["starts_with", "ends_with"]))(\(e()), \(pick(["'h'", "'o'", "''", "'a'"])))"
                case 3: return "merge(\(e()), \(pick(["`{\"z\": 1}`", "o", "@"])))"
                default: return "not_null(\(e()), \(e()))"
                }
            default: return "\(e())\(pick(["[0]", "[-1]", "[1:]", "[::-1]"]))"
            }
        }
        return (0..<count).map { _ in expression(Int(rng.next() % 5) + 1) }
    }

    /// Runs Python's jmespath on every (expression, document) pair; `nil` when Python or jmespath is missing.
    static func python(_ expressions: [String]) throws -> [[String: JSONValue]]? {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jmespath-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = JSONValue.members([
            ("expressions", .array(expressions.map { .string($0) })),
            ("documents", .array(documents.map { .string($0) })),
        ])
        try Data(input.compact().utf8).write(to: directory.appendingPathComponent("cases.json"))
        let script = #"""
            import json, sys
            import jmespath, jmespath.exceptions as x
            cases = json.load(open(sys.argv[1]))
            documents = [json.loads(d) for d in cases["documents"]]
            out = []
            for expression in cases["expressions"]:
                row = []
                for document in documents:
                    try:
                        row.append({"result": json.dumps(jmespath.search(expression, document), ensure_ascii=False)})
                    except (x.LexerError, x.ParseError, x.IncompleteExpressionError, x.EmptyExpressionError):
                        row.append({"error": "syntax"})
                    except Exception:
                        row.append({"error": "evaluation"})
                out.append(row)
            json.dump(out, open(sys.argv[2], "w"))
            """#
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", "-c", script, directory.appendingPathComponent("cases.json").path, directory.appendingPathComponent("out.json").path,
        ]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        let text = try String(contentsOf: directory.appendingPathComponent("out.json"), encoding: .utf8)
        guard case .array(let rows) = try JSONValue.parse(text) else { return nil }
        return rows.flatMap { row -> [[String: JSONValue]] in
            (row.arrayValue ?? []).map { cell in
                if let error = cell["error"]?.stringValue { return ["error": .string(error)] }
                let result = (try? JSONValue.parse(cell["result"]?.stringValue ?? "")) ?? .string("<unparsable>")
                return ["result": result]
            }
        }
    }

    static func ours(_ expression: String, _ document: JSONValue) -> [String: JSONValue] {
        do {
            let compiled = try JMESPathExpression(expression)
            do {
                return ["result": try compiled.search(document)]
            } catch {
                return ["error": .string(error.kind == .syntax ? "syntax" : "evaluation")]
            }
        } catch {
            return ["error": .string(error.kind == .syntax ? "syntax" : "evaluation")]
        }
    }

    @Test func agreesWithPythonJMESPath() throws {
        let expressions = Self.handWritten + Self.generated(count: 4000)
        guard let expected = try Self.python(expressions) else {
            Issue.record("python3 with the jmespath package is needed (make test installs awscli, which brings it)")
            return
        }
        let documents = try Self.documents.map { try JSONValue.parse($0) }
        var compared = 0
        var disagreements: [String] = []
        for (i, expression) in expressions.enumerated() {
            for (j, document) in documents.enumerated() {
                let theirs = expected[i * documents.count + j]
                let mine = Self.ours(expression, document)
                compared += 1
                if mine != theirs {
                    disagreements.append("\(expression) on document \(j): python \(theirs), deployctl \(mine)")
                }
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) of \(compared) disagree:\n\(disagreements.prefix(40).joined(separator: "\n"))")
        // The generated set must exercise results, not only errors.
        let results = expected.filter { $0["result"] != nil && $0["result"] != .null }.count
        #expect(results > expressions.count / 3, "only \(results) non-null results")
    }
}
