import DeployModel
import HostCommandModel
import Yams

/// The outcome of reading an appspec: the typed value when there were no errors, and every finding.
public struct AppSpecReport: Sendable, Equatable {
    /// The appspec, when it has no errors.
    public var appSpec: AppSpec?
    /// Whatever could be read, errors or not (entries with errors left out), for checks that go on regardless.
    public var partial: AppSpec?
    public var findings: [Finding]

    public var errors: [Finding] { findings.filter { $0.severity == .error } }
    public var warnings: [Finding] { findings.filter { $0.severity == .warning } }
}

/// Parses and validates appspec.yml text. It never stops at the first problem and never crashes on a shape:
/// every finding names the file, line, column and key, and says what was expected.
public enum AppSpecParser {
    public static let topLevelKeys = ["version", "os", "files", "permissions", "hooks", "file_exists_behavior"]
    static let fileKeys = ["source", "destination"]
    static let scriptKeys = ["location", "timeout", "runas", "sudo"]
    static let permissionKeys = ["object", "pattern", "except", "owner", "group", "mode", "acls", "context", "type"]
    static let contextKeys = ["name", "type", "range"]
    /// AWS caps a lifecycle event at 3600 s; deployctl allows more and says so.
    public static let awsEventTimeoutCap = 3600
    /// The longest timeout deployctl accepts for one script (a day): beyond it a number is a mistake, and bounding
    /// it keeps every sum of timeouts far from overflow.
    public static let maxScriptTimeout = 86_400

    /// The names an appspec is looked up by at the revision root, in order: the requested one, then
    /// `appspec.yaml`, then `appspec.yml` (ARCHITECTURE.md, compatibility facts: the same for every event, unlike the Ruby agent).
    public static func candidateFileNames(_ requested: String?) -> [String] {
        var names: [String] = []
        for name in [requested ?? "appspec.yml", "appspec.yaml", "appspec.yml"] where !names.contains(name) { names.append(name) }
        return names
    }

    /// The most YAML nodes an appspec may stand for once its aliases are expanded (a 10,000-file appspec is
    /// about 30,000).
    public static let maxNodes = 200_000
    /// The deepest nesting of lists and mappings (an appspec needs 5).
    public static let maxDepth = 64

    public static func parse(_ text: String, fileName: String = "appspec.yml") -> AppSpecReport {
        var walker = Walker(file: fileName, text: text)
        let spec = walker.document()
        // A YAML syntax error stops the parser there; what comes before it is still checked (findings of the part
        // that parsed, except those only its end causes, such as a key the cut-off part lacks).
        if let syntax = walker.findings.first(where: { $0.code == "AS154" }), let line = syntax.position?.line, line > 1 {
            let prefix = text.split(separator: "\n", omittingEmptySubsequences: false).prefix(line - 1).joined(separator: "\n")
            var before = Walker(file: fileName, text: prefix)
            _ = before.document()
            walker.findings += before.findings.filter { finding in
                guard let at = finding.position?.line, at < line, finding.code != "AS154" else { return false }
                return !finding.message.contains("missing")
            }
        }
        let errors = walker.findings.contains { $0.severity == .error }
        // In file order, so the report reads top to bottom (whole-file findings first).
        let ordered = walker.findings.enumerated().sorted { a, b in
            let pa = a.element.position.map { ($0.line, $0.column) } ?? (0, 0)
            let pb = b.element.position.map { ($0.line, $0.column) } ?? (0, 0)
            return pa != pb ? pa < pb : a.offset < b.offset
        }.map(\.element)
        return AppSpecReport(appSpec: errors ? nil : spec, partial: spec, findings: ordered)
    }
}

private struct Walker {
    let file: String
    let text: String
    var findings: [Finding] = []

    init(file: String, text: String) {
        self.file = file
        self.text = text
    }

    mutating func error(_ code: String, _ node: Node?, _ path: String, _ message: String) {
        findings.append(Finding(.error, code: code, file: file, position: position(node), keyPath: path, message: message))
    }

    mutating func warning(_ code: String, _ node: Node?, _ path: String, _ message: String) {
        findings.append(Finding(.warning, code: code, file: file, position: position(node), keyPath: path, message: message))
    }

    func position(_ node: Node?) -> SourcePosition? {
        guard let mark = node?.mark else { return nil }
        return SourcePosition(line: mark.line, column: mark.column)
    }

    // MARK: Document

    mutating func document() -> AppSpec? {
        if text.utf8.count > 1_048_576 {
            error("AS101", nil, "", "the file is larger than 1 MiB; an appspec is a short YAML document")
            return nil
        }
        if text.contains("\t"),
            let line = text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex(where: {
                $0.prefix(while: { $0 == " " || $0 == "\t" }).contains("\t")
            })
        {
            findings.append(
                Finding(
                    .error, code: "AS153", file: file, position: SourcePosition(line: line + 1, column: 1), keyPath: "",
                    message: "a tab is used for indentation; YAML indents with spaces only"))
            return nil
        }
        let root: Node?
        do {
            root = try YAMLNodes.compose(text)
        } catch let yaml as YamlError {
            reportSyntax(yaml)
            return nil
        } catch {
            self.error("AS156", nil, "", "cannot read the file as YAML: \(error)")
            return nil
        }
        guard let root, !isNull(root) else {
            error("AS102", nil, "", "the file is empty; an appspec needs at least `version: 0.0` and `os: linux`")
            return nil
        }
        // Bound the work, not the bytes: aliases let a small file stand for millions of nodes.
        var budget = AppSpecParser.maxNodes
        if let problem = Self.exceedsBounds(root, budget: &budget, depth: 0) {
            error("AS103", root, "", problem)
            return nil
        }
        guard let mapping = root.mapping else {
            error("AS104", root, "", "the top level must be a mapping of keys (version, os, files, permissions, hooks), got \(describe(root))")
            return nil
        }
        var spec = AppSpec()
        var seen: [String: Node] = [:]
        for (keyNode, value) in mapping {
            guard let key = keyNode.scalar?.string else {
                error("AS105", keyNode, "", "keys must be plain names, got \(describe(keyNode))")
                continue
            }
            seen[key] = keyNode
            switch key {
            case "version": spec.version = version(value, keyNode) ?? spec.version
            case "os": spec.os = os(value, keyNode) ?? spec.os
            case "files": spec.files = files(value, keyNode)
            case "permissions": spec.permissions = permissions(value, keyNode)
            case "hooks": spec.hooks = hooks(value, keyNode)
            case "file_exists_behavior": spec.fileExistsBehavior = fileExistsBehavior(value)
            case "resources":
                error("AS106", keyNode, key, "`resources` belongs to Lambda and ECS appspecs; a server appspec uses files and hooks")
            default:
                error("AS107", keyNode, key, "unknown top-level key '\(key)'" + choice(key, AppSpecParser.topLevelKeys))
            }
        }
        if seen["version"] == nil { error("AS108", root, "version", "missing; add `version: 0.0`") }
        if seen["os"] == nil { error("AS109", root, "os", "missing; add `os: linux`") }
        return spec
    }

    mutating func reportSyntax(_ yaml: YamlError) {
        switch yaml {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            var message = "invalid YAML: \(problem)"
            if let context { message += " (\(context.text) at \(context.mark.line):\(context.mark.column))" }
            if let hint = indentationHint(line: mark.line, problem: problem) { message += "; " + hint }
            findings.append(
                Finding(
                    .error, code: "AS154", file: file, position: SourcePosition(line: mark.line, column: mark.column), keyPath: "", message: message))
        case .duplicatedKeysInMapping(let duplicates, let context):
            for key in duplicates {
                let (first, second) = duplicateLines(of: key, after: context.mark)
                findings.append(
                    Finding(
                        .error, code: "AS155", file: file, position: second, keyPath: key,
                        message: "duplicate key; it is already set at line \(first.line)"))
            }
        case .reader(let problem, let offset, _, _):
            error("AS110", nil, "", "the file is not valid UTF-8 text: \(problem)\(offset.map { " at byte \($0)" } ?? "")")
        default:
            error("AS111", nil, "", "invalid YAML: \(yaml)")
        }
    }

    /// libyaml's indentation errors in plain words: how line `line` is indented against the lines above it.
    func indentationHint(line: Int, problem: String) -> String? {
        let indentationProblems = [
            "did not find expected '-' indicator", "did not find expected key", "mapping values are not allowed",
            "block sequence entries are not allowed", "did not find expected <document start>",
        ]
        guard indentationProblems.contains(where: { problem.contains($0) }) else { return nil }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard line >= 1, line <= lines.count else { return nil }
        func indent(_ text: Substring) -> Int { text.prefix { $0 == " " }.count }
        func isContent(_ text: Substring) -> Bool {
            let bare = text.drop { $0 == " " }
            return !bare.isEmpty && !bare.hasPrefix("#")
        }
        let here = indent(lines[line - 1])
        guard let above = stride(from: line - 2, through: 0, by: -1).first(where: { isContent(lines[$0]) }) else { return nil }
        var column = indent(lines[above])
        if lines[above].dropFirst(column).hasPrefix("- ") { column += 2 }
        return
            "line \(line) is indented by \(here) space\(here == 1 ? "" : "s") and line \(above + 1) by \(column): in YAML the keys of one mapping, and the '- ' of one list's items, start in exactly the same column"
    }

    /// Yams reports a duplicate at the first occurrence; find the repeated key's own line for the message.
    func duplicateLines(of key: String, after mark: Mark) -> (SourcePosition, SourcePosition?) {
        let first = SourcePosition(line: mark.line, column: mark.column)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard mark.line >= 1, mark.line <= lines.count else { return (first, first) }
        let indent = mark.column - 1
        for index in mark.line..<lines.count {
            let line = lines[index]
            let leading = line.prefix(while: { $0 == " " }).count
            let rest = line.dropFirst(leading)
            let bare = rest.hasPrefix("- ") ? rest.dropFirst(2) : rest
            let column = leading + (rest.count - bare.count)
            if column == indent, bare.hasPrefix(key + ":") || bare.hasPrefix("\"\(key)\":") || bare.hasPrefix("'\(key)':") {
                return (first, SourcePosition(line: index + 1, column: column + 1))
            }
        }
        return (first, first)
    }

    // MARK: Scalars

    func isNull(_ node: Node) -> Bool {
        guard case .scalar(let s) = node else { return false }
        return s.style == .plain && ["", "~", "null", "Null", "NULL"].contains(s.string)
    }

    /// A value as findings quote it: at most `limit` characters, control characters escaped.
    static func cut(_ text: String, limit: Int = 80) -> String {
        var shown = String(
            text.unicodeScalars.prefix(limit).map { $0.properties.generalCategory == .control ? "\\u{\(String($0.value, radix: 16))}" : String($0) }
                .joined())
        if text.unicodeScalars.count > limit { shown += "… (\(text.utf8.count) bytes)" }
        return shown
    }

    /// Counts `node` as if its aliases were expanded, stopping as soon as the budget or the depth is exceeded,
    /// so the check itself is bounded whatever the document. Returns the problem, if any.
    static func exceedsBounds(_ node: Node, budget: inout Int, depth: Int) -> String? {
        budget -= 1
        if budget < 0 {
            return
                "the document stands for more than \(AppSpecParser.maxNodes) YAML nodes once its aliases (*name) are expanded; an appspec is a short document (is an alias repeated many times?)"
        }
        if depth > AppSpecParser.maxDepth { return "the document nests lists and mappings more than \(AppSpecParser.maxDepth) levels deep" }
        switch node {
        case .scalar, .alias: return nil
        case .sequence(let sequence):
            for item in sequence {
                if let problem = exceedsBounds(item, budget: &budget, depth: depth + 1) { return problem }
            }
        case .mapping(let mapping):
            for (key, value) in mapping {
                if let problem = exceedsBounds(key, budget: &budget, depth: depth + 1) { return problem }
                if let problem = exceedsBounds(value, budget: &budget, depth: depth + 1) { return problem }
            }
        }
        return nil
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let s):
            if isNull(node) { return "nothing (null)" }
            return s.style == .plain ? "'\(Self.cut(s.string))'" : "\"\(Self.cut(s.string))\""
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    func expected(_ names: [String]) -> String { "; expected one of: \(names.joined(separator: ", "))" }

    /// "; did you mean 'X'?" when a candidate is close, else the list of what is allowed.
    func choice(_ name: String, _ candidates: [String]) -> String {
        let hint = suggestion(name, candidates)
        return hint.isEmpty ? expected(candidates) : hint
    }

    func suggestion(_ name: String, _ candidates: [String]) -> String {
        Suggestion.closest(to: name, in: candidates).map { "; did you mean '\($0)'?" } ?? ""
    }

    /// A non-empty string scalar, or an error naming what was there instead.
    mutating func string(_ node: Node, _ path: String, what: String) -> String? {
        guard case .scalar(let s) = node, !isNull(node) else {
            error("AS112", node, path, "expected \(what), got \(describe(node))")
            return nil
        }
        let value = s.string.trimmingSpacesAndTabs
        guard !value.isEmpty else {
            error("AS113", node, path, "expected \(what), got an empty string")
            return nil
        }
        return value
    }

    mutating func version(_ node: Node, _ key: Node) -> String? {
        guard case .scalar(let s) = node, !isNull(node) else {
            error("AS114", isNull(node) ? key : node, "version", "expected 0.0, got \(describe(node))")
            return nil
        }
        let raw = s.string.trimmingSpacesAndTabs
        if let number = Double(raw), number == 0, raw.allSatisfy({ $0.isNumber || $0 == "." }) {
            if s.style == .singleQuoted || s.style == .doubleQuoted {
                // Observed with the AWS agent 1.8.1: a quoted version is refused (a Ruby error).
                warning(
                    "AS201",
                    node, "version",
                    "the version is quoted; deployctl accepts it, but the AWS CodeDeploy agent refuses a quoted version: write version: 0.0")
            }
            return "0.0"
        }
        error("AS115", node, "version", "unsupported version \(describe(node)); the only appspec version is 0.0")
        return nil
    }

    mutating func os(_ node: Node, _ key: Node) -> String? {
        guard let value = string(node, "os", what: "linux") else { return nil }
        switch value {
        case "linux": return value
        case "windows":
            error("AS116", node, "os", "windows appspecs are not supported by deployctl, which deploys to Linux hosts; use `os: linux`")
        default:
            error("AS117", node, "os", "unsupported operating system '\(value)'" + choice(value, ["linux"]))
        }
        return nil
    }

    mutating func fileExistsBehavior(_ node: Node) -> FileExistsBehavior? {
        if isNull(node) { return nil }
        guard let value = string(node, "file_exists_behavior", what: "DISALLOW, OVERWRITE or RETAIN") else { return nil }
        if let behavior = FileExistsBehavior(rawValue: value) { return behavior }
        let names = FileExistsBehavior.allCases.map(\.rawValue)
        error("AS118", node, "file_exists_behavior", "invalid value '\(value)'" + choice(value, names))
        return nil
    }

    // MARK: Sections

    /// The items of a section that must be a non-empty list.
    mutating func list(_ node: Node, _ key: Node, _ path: String, example: String) -> [Node]? {
        if isNull(node) {
            error("AS119", key, path, "the section is empty; remove it or add entries (\(example))")
            return nil
        }
        guard case .sequence(let seq) = node else {
            error("AS120", node, path, "expected a list of entries (\(example)), got \(describe(node))")
            return nil
        }
        if seq.isEmpty {
            error("AS121", node, path, "the section is empty; remove it or add entries (\(example))")
            return nil
        }
        return Array(seq)
    }

    /// The members of a mapping entry; unknown keys are reported with a suggestion.
    mutating func entry(_ node: Node, _ path: String, known: [String], what: String) -> [String: (Node, Node)]? {
        guard let mapping = node.mapping else {
            error("AS122", node, path, "expected \(what) (a mapping with \(known.joined(separator: ", "))), got \(describe(node))")
            return nil
        }
        var members: [String: (Node, Node)] = [:]
        for (keyNode, value) in mapping {
            guard let key = keyNode.scalar?.string else {
                error("AS123", keyNode, path, "keys must be plain names, got \(describe(keyNode))")
                continue
            }
            if known.contains(key) {
                members[key] = (keyNode, value)
            } else {
                error("AS124", keyNode, "\(path).\(key)", "unknown key '\(key)'" + choice(key, known))
            }
        }
        return members
    }

    mutating func files(_ node: Node, _ key: Node) -> [FileMapping] {
        guard let items = list(node, key, "files", example: "each with source and destination") else { return [] }
        var result: [FileMapping] = []
        for (index, item) in items.enumerated() {
            let path = "files[\(index)]"
            guard let members = entry(item, path, known: AppSpecParser.fileKeys, what: "a file mapping") else { continue }
            var source: String?
            if let (_, value) = members["source"] {
                if case .scalar(let s) = value, !isNull(value) {
                    source = s.string
                    if let problem = PathRules.escapesBundle(s.string) { error("AS125", value, "\(path).source", problem) }
                } else {
                    error("AS126", value, "\(path).source", "expected a path in the bundle (`/` for all of it), got \(describe(value))")
                }
            } else {
                error("AS127", item, "\(path).source", "missing; say which path of the bundle to install (`/` for all of it)")
            }
            var destination: String?
            if let (_, value) = members["destination"] {
                if let d = string(value, "\(path).destination", what: "an absolute directory path") {
                    if d.hasPrefix("/") {
                        destination = d
                    } else {
                        error("AS128", value, "\(path).destination", "must be an absolute path (starting with /), got '\(d)'")
                    }
                }
            } else {
                error("AS129", item, "\(path).destination", "missing; say which absolute directory to install into")
            }
            if let source, let destination {
                result.append(FileMapping(source: source, destination: destination, position: position(item)))
            }
        }
        return result
    }

    mutating func hooks(_ node: Node, _ key: Node) -> [String: [HookScript]] {
        if isNull(node) {
            error("AS130", key, "hooks", "the section is empty; remove it or map lifecycle events to scripts")
            return [:]
        }
        guard let mapping = node.mapping else {
            error(
                "AS131", node, "hooks",
                "expected a mapping of lifecycle events to lists of scripts (BeforeInstall: [- location: …]), got \(describe(node))")
            return [:]
        }
        if mapping.isEmpty { error("AS132", node, "hooks", "the section is empty; remove it or map lifecycle events to scripts") }
        var result: [String: [HookScript]] = [:]
        for (eventNode, value) in mapping {
            guard let event = eventNode.scalar?.string else {
                error("AS133", eventNode, "hooks", "event names must be plain names, got \(describe(eventNode))")
                continue
            }
            let path = "hooks.\(event)"
            if LifecycleEventName.reserved.contains(event) {
                error(
                    "AS134",
                    eventNode, path,
                    "\(event) is run by the agent itself and cannot have scripts; use one of \(LifecycleEventName.hookable.joined(separator: ", "))")
                continue
            }
            guard LifecycleEventName.hookable.contains(event) else {
                error("AS135", eventNode, path, "unknown lifecycle event '\(event)'" + choice(event, LifecycleEventName.hookable))
                continue
            }
            if isNull(value) {
                warning("AS202", eventNode, path, "no scripts listed; the event is ignored")
                continue
            }
            guard case .sequence(let seq) = value else {
                let hint = value.mapping != nil ? " (put a '- ' before location)" : ""
                error("AS136", value, path, "expected a list of scripts (- location: scripts/run.sh), got \(describe(value))\(hint)")
                continue
            }
            var scripts: [HookScript] = []
            for (index, item) in seq.enumerated() {
                if let script = hookScript(item, "\(path)[\(index)]") { scripts.append(script) }
            }
            if seq.isEmpty { warning("AS203", value, path, "no scripts listed; the event is ignored") }
            result[event] = scripts
        }
        return result
    }

    mutating func hookScript(_ node: Node, _ path: String) -> HookScript? {
        guard let members = entry(node, path, known: AppSpecParser.scriptKeys, what: "a script") else { return nil }
        var location: String?
        if let (_, value) = members["location"] {
            if let l = string(value, "\(path).location", what: "the script's path in the bundle") {
                if let problem = PathRules.escapesBundle(l) {
                    error("AS137", value, "\(path).location", problem)
                } else {
                    location = l
                }
            }
        } else {
            error("AS138", node, "\(path).location", "missing; give the script's path in the bundle")
        }
        var timeout = HookScript.defaultTimeout
        if let (_, value) = members["timeout"] {
            if case .scalar(let s) = value, !isNull(value), let seconds = Int(s.string.trimmingSpacesAndTabs), seconds > 0 {
                timeout = min(seconds, AppSpecParser.maxScriptTimeout)
                if seconds > AppSpecParser.maxScriptTimeout {
                    error(
                        "AS139",
                        value, "\(path).timeout",
                        "\(Self.cut(s.string)) s is more than deployctl's limit of \(AppSpecParser.maxScriptTimeout) s (a day) per script")
                } else if seconds > AppSpecParser.awsEventTimeoutCap {
                    warning(
                        "AS204",
                        value, "\(path).timeout",
                        "\(seconds) s is above AWS CodeDeploy's 3600 s limit per event; deployctl allows it, AWS would not")
                }
            } else if case .scalar(let s) = value, !isNull(value), case let digits = s.string.trimmingSpacesAndTabs, !digits.isEmpty,
                digits.allSatisfy(\.isNumber), Int(digits) == nil
            {
                error(
                    "AS140",
                    value, "\(path).timeout",
                    "\(Self.cut(s.string)) s is more than deployctl's limit of \(AppSpecParser.maxScriptTimeout) s (a day) per script")
            } else {
                error("AS141", value, "\(path).timeout", "must be a positive whole number of seconds, got \(describe(value))")
            }
        }
        var runas: String?
        if let (_, value) = members["runas"] {
            if let user = string(value, "\(path).runas", what: "a user name") {
                if user.range(of: #"^[a-z_][a-z0-9_.-]*\$?$"#, options: [.regularExpression, .caseInsensitive]) != nil, user.count <= 32 {
                    runas = user
                } else {
                    error("AS142", value, "\(path).runas", "'\(user)' is not a valid user name")
                }
            }
        }
        if let (keyNode, _) = members["sudo"] {
            warning("AS205", keyNode, "\(path).sudo", "sudo is ignored by deployctl; use runas to choose the user")
        }
        guard let location else { return nil }
        return HookScript(location: location, timeout: timeout, runas: runas, position: position(node))
    }

    mutating func permissions(_ node: Node, _ key: Node) -> [Permission] {
        guard let items = list(node, key, "permissions", example: "each with an object and what to set on it") else { return [] }
        var result: [Permission] = []
        for (index, item) in items.enumerated() {
            let path = "permissions[\(index)]"
            guard let members = entry(item, path, known: AppSpecParser.permissionKeys, what: "a permission") else { continue }
            var ok = true
            var permission = Permission(object: "", position: position(item))
            if let (_, value) = members["object"] {
                if let object = string(value, "\(path).object", what: "an absolute path") {
                    if object.hasPrefix("/") {
                        permission.object = object
                    } else {
                        error("AS143", value, "\(path).object", "must be an absolute path (starting with /), got '\(object)'")
                        ok = false
                    }
                } else {
                    ok = false
                }
            } else {
                error("AS144", item, "\(path).object", "missing; give the absolute path the permissions apply to")
                ok = false
            }
            if let (_, value) = members["pattern"] {
                if let pattern = string(value, "\(path).pattern", what: "a glob such as *.sh") { permission.pattern = pattern } else { ok = false }
            }
            if let (_, value) = members["except"] {
                if let globs = stringList(value, "\(path).except", what: "globs") { permission.except = globs } else { ok = false }
            }
            if let (_, value) = members["owner"] {
                if let owner = string(value, "\(path).owner", what: "a user name") { permission.owner = owner } else { ok = false }
            }
            if let (_, value) = members["group"] {
                if let group = string(value, "\(path).group", what: "a group name") { permission.group = group } else { ok = false }
            }
            if let (_, value) = members["mode"] {
                if let mode = mode(value, "\(path).mode") { permission.mode = mode } else { ok = false }
            }
            if let (_, value) = members["acls"] {
                if let entries = stringList(value, "\(path).acls", what: "ACL entries such as u:bob:rw") {
                    for (i, text) in entries.enumerated() {
                        switch ACLGrammar.parse(text) {
                        case .success(let acl): permission.acls.append(acl)
                        case .failure(let problem):
                            error("AS145", value, "\(path).acls[\(i)]", problem.message)
                            ok = false
                        }
                    }
                } else {
                    ok = false
                }
            }
            if let (_, value) = members["context"] {
                if let context = selinuxContext(value, "\(path).context") { permission.context = context } else { ok = false }
            }
            if let (_, value) = members["type"] {
                if case .scalar(let s) = value, let single = PermissionObjectType(rawValue: s.string) {
                    error("AS146", value, "\(path).type", "must be a list; write `type: [\(single.rawValue)]`")
                    ok = false
                } else if let names = stringList(value, "\(path).type", what: "file and/or directory") {
                    var types: [PermissionObjectType] = []
                    for name in names {
                        if let type = PermissionObjectType(rawValue: name) {
                            types.append(type)
                        } else {
                            error("AS147", value, "\(path).type", "unknown type '\(name)'" + choice(name, ["file", "directory"]))
                            ok = false
                        }
                    }
                    permission.types = types
                } else {
                    ok = false
                }
            }
            if ok { result.append(permission) }
        }
        return result
    }

    mutating func stringList(_ node: Node, _ path: String, what: String) -> [String]? {
        guard case .sequence(let seq) = node, !seq.isEmpty else {
            error("AS148", node, path, "expected a non-empty list of \(what), got \(describe(node))")
            return nil
        }
        var out: [String] = []
        for (index, item) in seq.enumerated() {
            guard let s = string(item, "\(path)[\(index)]", what: what) else { return nil }
            out.append(s)
        }
        return out
    }

    /// The mode is read from the raw scalar text, so `0644`, `644` and `"0644"` all mean rw-r--r--.
    mutating func mode(_ node: Node, _ path: String) -> FileMode? {
        guard case .scalar(let s) = node, !isNull(node) else {
            error("AS149", node, path, "expected octal permission digits such as 644 or 0755, got \(describe(node))")
            return nil
        }
        let raw = s.string.trimmingSpacesAndTabs
        guard !raw.isEmpty, raw.count <= 4, raw.allSatisfy({ ("0"..."7").contains($0) }), let bits = UInt16(raw, radix: 8) else {
            error("AS150", node, path, "'\(raw)' is not an octal mode: use 1 to 4 digits 0-7, such as 644 or 0755")
            return nil
        }
        if s.style == .plain, raw.count > 1, raw.hasPrefix("0") {
            // YAML 1.1 (the Ruby agent's Psych) reads an unquoted leading zero as an octal number, and the agent then
            // takes that number's decimal digits for the mode: 0644 is 420, applied as 0420.
            let yaml11 = Int(raw, radix: 8) ?? 0
            let digits = String(yaml11)
            let aws =
                digits.allSatisfy({ ("0"..."7").contains($0) }) && digits.count <= 4
                ? "apply \(String(repeating: "0", count: max(0, 4 - digits.count)) + digits) (\(FileMode(bits: UInt16(digits, radix: 8) ?? 0).symbolic))"
                : "fail (\(digits) is not an octal mode)"
            warning(
                "AS206",
                node, path,
                "deployctl applies \(raw) as written, but the AWS CodeDeploy agent reads an unquoted \(raw) as the number \(yaml11) and would \(aws); quote it (\"\(raw)\") or drop the leading zero so both agree"
            )
        }
        return FileMode(bits: bits)
    }

    mutating func selinuxContext(_ node: Node, _ path: String) -> SELinuxContext? {
        guard let members = entry(node, path, known: AppSpecParser.contextKeys, what: "an SELinux context") else { return nil }
        guard let (_, typeNode) = members["type"] else {
            error("AS151", node, "\(path).type", "missing; an SELinux context needs a type such as httpd_sys_content_t")
            return nil
        }
        guard let type = string(typeNode, "\(path).type", what: "an SELinux type") else { return nil }
        var context = SELinuxContext(type: type)
        if let (_, value) = members["name"] { context.name = string(value, "\(path).name", what: "an SELinux user") }
        if let (_, value) = members["range"] {
            guard let range = string(value, "\(path).range", what: "an MLS range such as s0 or s0-s0:c0.c1023") else { return nil }
            if let problem = SELinuxRange.problem(in: range) {
                error("AS152", value, "\(path).range", problem)
                return nil
            }
            context.range = range
        }
        return context
    }
}
