import AppSpec
import Bundles
import Foundation
import HostCommandModel

/// What `deployctl validate` found in a bundle or a source directory.
public struct ValidationReport: Sendable, Equatable {
    /// The appspec file that was read, relative to the revision root (nil when none was found).
    public var appSpecPath: String?
    public var appSpec: AppSpec?
    public var findings: [Finding]

    public var errors: [Finding] { findings.filter { $0.severity == .error } }
    public var warnings: [Finding] { findings.filter { $0.severity == .warning } }
    public var isValid: Bool { errors.isEmpty }
    /// The revision could not be read at all (a missing directory, an unreadable or unsafe bundle): not a finding
    /// about its content.
    public var isUnreadable: Bool { findings.contains { $0.code.hasPrefix("RV00") } }
}

/// The files of a revision, from a directory or a bundle's entries, keyed by path relative to the revision root.
struct RevisionTree {
    struct Item {
        var kind: BundleEntry.Kind
        var mode: UInt16
        var linkTarget: String? = nil
    }
    var items: [String: Item] = [:]
    /// The prefix (a single top-level directory holding the appspec) stripped from every path, if any.
    var strippedPrefix: String?

    /// The first symlink on the way to `path` (the path itself included) that leads outside the revision, with
    /// its target: deployctl never follows it.
    func escapingLink(on path: String) -> (link: String, target: String)? {
        var prefix = ""
        for part in path.split(separator: "/") {
            prefix = prefix.isEmpty ? String(part) : prefix + "/" + part
            if let item = items[prefix], item.kind == .symlink, let target = item.linkTarget,
                !EntrySafety.staysInside(target, from: prefix)
            {
                return (prefix, target)
            }
        }
        return nil
    }

    func contains(directory path: String) -> Bool {
        if path.isEmpty { return true }
        if items[path]?.kind == .directory { return true }
        return items.keys.contains { $0.hasPrefix(path + "/") }
    }

    /// As the agent does: a bundle whose only top-level entry is a directory holding the appspec is unpacked
    /// as if that directory were the root.
    mutating func stripSingleTopDirectory(appSpecNames: [String]) {
        let tops = Set(items.keys.compactMap { $0.split(separator: "/").first.map(String.init) })
        guard tops.count == 1, let top = tops.first, contains(directory: top) else { return }
        guard appSpecNames.contains(where: { items["\(top)/\($0)"] != nil }) else { return }
        var stripped: [String: Item] = [:]
        for (path, item) in items where path != top {
            stripped[String(path.dropFirst(top.count + 1))] = item
        }
        items = stripped
        strippedPrefix = top
    }
}

/// Checks a revision before it is uploaded: the archive is safe, the appspec is valid, and every script and
/// every `files` source it names is in the revision. Collects every problem; never stops at the first.
public enum RevisionValidator {
    /// The appspec names tried in order: the requested one, then `appspec.yaml`, then `appspec.yml`.
    public static func appSpecCandidates(_ requested: String?) -> [String] { AppSpecParser.candidateFileNames(requested) }

    /// Validates a source directory (what `push` would bundle).
    public static func validate(directory: String, appSpecFileName: String? = nil, ignoreHidden: Bool = false) -> ValidationReport {
        let root = URL(fileURLWithPath: directory).standardizedFileURL.path
        var tree = RevisionTree()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            return ValidationReport(findings: [
                Finding(.error, code: "RV001", file: directory, position: nil, keyPath: "", message: "not a directory")
            ])
        }
        // The same entry rules as a bundle (and as the agent applies when it copies a directory revision).
        let entries: [BundleEntry]
        var findings: [Finding] = []
        do {
            let checked = try BundleArchive.checkedEntries(ofDirectory: root)
            entries = checked.entries
            for problem in checked.problems {
                var keyPath = ""
                if case .unsafeEntry(let path, _) = problem { keyPath = path }
                findings.append(Finding(.error, code: "RV101", file: directory, position: nil, keyPath: keyPath, message: problem.description))
            }
        } catch {
            return ValidationReport(findings: [
                Finding(.error, code: "RV002", file: directory, position: nil, keyPath: "", message: error.description)
            ])
        }
        for entry in entries {
            if ignoreHidden, entry.path.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }
            tree.items[entry.path] = RevisionTree.Item(kind: entry.kind, mode: entry.mode, linkTarget: entry.linkTarget)
        }
        return check(tree: tree, source: directory, findings: findings, appSpecFileName: appSpecFileName) { name in
            // Only a regular file of the revision is read, and only up to the limit: an appspec symlink is never
            // followed, a 200 MB appspec never read.
            guard tree.items[name]?.kind == .file else { return .unreadable }
            let fd = open(root + "/" + name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            guard fd >= 0 else { return .unreadable }
            defer { close(fd) }
            var data = [UInt8]()
            var chunk = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0 { return .unreadable }
                if count == 0 { break }
                data += chunk[0..<count]
                if data.count > maxAppSpecBytes { return .tooLarge }
            }
            return .text(String(decoding: data, as: UTF8.self))
        }
    }

    /// Validates a bundle file: its safety first, then its content.
    public static func validate(
        bundle path: String, declaredType: ArchiveFormat? = nil, appSpecFileName: String? = nil, limits: BundleLimits = .default
    ) -> ValidationReport {
        let entries: [BundleEntry]
        do {
            entries = try BundleArchive.entries(of: path, declaredType: declaredType, limits: limits)
        } catch {
            // A bundle that cannot be opened or read is not a finding about its content (validate exits 2); an unsafe
            // entry, a type other than declared or a limit passed are (exit 1).
            let code: String
            switch error {
            case .unsafeEntry: code = "RV109"
            case .typeMismatch: code = "RV110"
            case .limitExceeded: code = "RV111"
            default: code = "RV003"
            }
            return ValidationReport(findings: [Finding(.error, code: code, file: path, position: nil, keyPath: "", message: error.description)])
        }
        var tree = RevisionTree()
        for entry in entries {
            tree.items[entry.path] = RevisionTree.Item(kind: entry.kind, mode: entry.mode, linkTarget: entry.linkTarget)
        }
        let candidates = appSpecCandidates(appSpecFileName)
        tree.stripSingleTopDirectory(appSpecNames: candidates)
        let prefix = tree.strippedPrefix.map { $0 + "/" } ?? ""
        return check(tree: tree, source: path, findings: [], appSpecFileName: appSpecFileName) { name in
            do {
                return .text(String(decoding: try BundleArchive.readFile(path, entry: prefix + name, maxBytes: maxAppSpecBytes), as: UTF8.self))
            } catch {
                if case .limitExceeded? = error as? BundleError { return .tooLarge }
                return .unreadable
            }
        }
    }

    /// The largest appspec read (the agent's limit too): a larger one is refused in milliseconds, never parsed.
    public static let maxAppSpecBytes = 1 << 20

    enum AppSpecText {
        case text(String)
        case tooLarge
        case unreadable
    }

    static func check(
        tree: RevisionTree, source: String, findings initial: [Finding], appSpecFileName: String?, read: (String) -> AppSpecText
    ) -> ValidationReport {
        var findings = initial
        let candidates = appSpecCandidates(appSpecFileName)
        guard let name = candidates.first(where: { tree.items[$0]?.kind == .file || tree.items[$0]?.kind == .symlink }) else {
            findings.append(
                Finding(
                    .error, code: "RV102", file: source, position: nil, keyPath: "",
                    message: "no appspec at the root of the revision (looked for \(candidates.joined(separator: ", ")))"))
            return ValidationReport(appSpecPath: nil, findings: findings)
        }
        let text: String
        switch read(name) {
        case .text(let read): text = read
        case .tooLarge:
            findings.append(
                Finding(
                    .error, code: "RV112", file: name, position: nil, keyPath: "",
                    message: "the appspec is larger than \(maxAppSpecBytes >> 20) MiB; an appspec names files and hooks and is a few KB"))
            return ValidationReport(appSpecPath: name, findings: findings)
        case .unreadable:
            findings.append(Finding(.error, code: "RV103", file: name, position: nil, keyPath: "", message: "cannot read the appspec"))
            return ValidationReport(appSpecPath: name, findings: findings)
        }
        let report = AppSpecParser.parse(text, fileName: name)
        findings += report.findings
        findings += escapingSymlinks(tree, source: source)
        if let spec = report.partial {
            findings += scriptFindings(spec, tree, appSpecName: name, read: read)
            findings += fileSourceFindings(spec, tree, appSpecName: name)
        }
        let ordered = findings.enumerated().sorted { a, b in
            let pa = a.element.position.map { ($0.line, $0.column) } ?? (Int.max, 0)
            let pb = b.element.position.map { ($0.line, $0.column) } ?? (Int.max, 0)
            if a.element.file != b.element.file { return a.offset < b.offset }
            return pa != pb ? pa < pb : a.offset < b.offset
        }.map(\.element)
        return ValidationReport(appSpecPath: name, appSpec: report.appSpec, findings: ordered)
    }

    /// Symlinks that point outside the revision: installed as they are, never followed (a warning).
    static func escapingSymlinks(_ tree: RevisionTree, source: String) -> [Finding] {
        var findings: [Finding] = []
        for (path, item) in tree.items.sorted(by: { $0.key < $1.key }) where item.kind == .symlink {
            guard let target = item.linkTarget, !EntrySafety.staysInside(target, from: path) else { continue }
            findings.append(
                Finding(
                    .warning, code: "RV201", file: source, position: nil, keyPath: path,
                    message:
                        "the symlink points outside the revision (to '\(target)'); it is installed as a symlink, as the AWS agent does, and deployctl never follows it"
                ))
        }
        return findings
    }

    /// Each hook's script: inside the revision, a file, executable, and not holding the event on a background job.
    static func scriptFindings(_ spec: AppSpec, _ tree: RevisionTree, appSpecName name: String, read: (String) -> AppSpecText) -> [Finding] {
        var findings: [Finding] = []
        for (event, scripts) in spec.hooks.sorted(by: { order($0.key) < order($1.key) }) {
            for (index, script) in scripts.enumerated() {
                let path = normalize(script.location)
                let keyPath = "hooks.\(event)[\(index)].location"
                if let (link, target) = tree.escapingLink(on: path) {
                    findings.append(
                        Finding(
                            .error, code: "RV104", file: name, position: script.position, keyPath: keyPath,
                            message:
                                "'\(script.location)' goes through the symlink '\(link)', which leads outside the revision (to '\(target)'); deployctl runs only scripts inside the revision"
                        ))
                    continue
                }
                if tree.items[path]?.kind == .file, case .text(let body) = read(path) {
                    for warning in BackgroundJobs.unredirected(in: body) {
                        findings.append(
                            Finding(
                                .warning, code: "RV202", file: path, position: SourcePosition(line: warning.line, column: 1), keyPath: keyPath,
                                message:
                                    "'\(warning.text)' starts a background job without redirecting its output: the event waits for it until the \(script.timeout) s timeout (then fails with OutputsLeftOpen). Write: cmd > /dev/null 2>&1 &"
                            ))
                    }
                }
                switch tree.items[path]?.kind {
                case .file?, .symlink?, .hardlink?:
                    if let mode = tree.items[path]?.mode, mode & 0o111 == 0, tree.items[path]?.kind != .symlink {
                        findings.append(
                            Finding(
                                .warning, code: "RV203", file: name, position: script.position, keyPath: keyPath,
                                message: "'\(script.location)' is not executable; it will be made executable (chmod +x) before it runs"))
                    }
                case .directory?:
                    findings.append(
                        Finding(
                            .error, code: "RV105", file: name, position: script.position, keyPath: keyPath,
                            message: "'\(script.location)' is a directory, not a script"))
                default:
                    findings.append(
                        Finding(
                            .error, code: "RV106", file: name, position: script.position, keyPath: keyPath,
                            message: "the script '\(script.location)' is not in the revision\(suggestion(path, tree))"))
                }
            }
        }
        return findings
    }

    /// Each `files` source: inside the revision, and there.
    static func fileSourceFindings(_ spec: AppSpec, _ tree: RevisionTree, appSpecName name: String) -> [Finding] {
        var findings: [Finding] = []
        for (index, mapping) in spec.files.enumerated() {
            let path = normalize(mapping.source)
            if let (link, target) = tree.escapingLink(on: path), link != path || tree.items[path]?.kind != .symlink {
                findings.append(
                    Finding(
                        .error, code: "RV107", file: name, position: mapping.position, keyPath: "files[\(index)].source",
                        message:
                            "'\(mapping.source)' goes through the symlink '\(link)', which leads outside the revision (to '\(target)'); deployctl copies only what is inside the revision"
                    ))
                continue
            }
            if path.isEmpty || tree.items[path] != nil || tree.contains(directory: path) { continue }
            findings.append(
                Finding(
                    .error, code: "RV108", file: name, position: mapping.position, keyPath: "files[\(index)].source",
                    message: "'\(mapping.source)' is not in the revision\(suggestion(path, tree))"))
        }
        return findings
    }

    static func order(_ event: String) -> Int { LifecycleEventName.all.firstIndex(of: event) ?? Int.max }

    static func normalize(_ location: String) -> String {
        location.split(separator: "/").filter { $0 != "." }.joined(separator: "/")
    }

    static func suggestion(_ path: String, _ tree: RevisionTree) -> String {
        Suggestion.closest(to: path, in: Array(tree.items.keys), allowContainment: false).map { "; did you mean '\($0)'?" } ?? ""
    }
}

/// Lines of a hook script that start a background job whose output is not redirected: the event then waits for
/// the job (AWS's outcome), which is rarely what the author meant.
enum BackgroundJobs {
    static func unredirected(in script: String) -> [(line: Int, text: String)] {
        var found: [(line: Int, text: String)] = []
        for (index, raw) in script.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard !line.hasPrefix("#"), line.hasSuffix("&"), !line.hasSuffix("&&"), !line.hasSuffix("\\&") else { continue }
            let command = line.dropLast().trimmingCharacters(in: .whitespaces)
            // Redirected when stdout goes somewhere (`>`, `>>`, `&>`) and stderr too (`2>`, `2>&1`, `&>`).
            let stdout =
                command.contains("&>") || command.range(of: #"(^|[^0-9&])>"#, options: .regularExpression) != nil
                || command.contains("1>")
            let stderr = command.contains("&>") || command.contains("2>")
            if !(stdout && stderr) { found.append((index + 1, String(line.prefix(80)))) }
        }
        return found
    }
}
