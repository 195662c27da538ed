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
}

/// The files of a revision, from a directory or a bundle's entries, keyed by path relative to the revision root.
struct RevisionTree {
    struct Item {
        var kind: BundleEntry.Kind
        var mode: UInt16
    }
    var items: [String: Item] = [:]
    /// The prefix (a single top-level directory holding the appspec) stripped from every path, if any.
    var strippedPrefix: String?

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
            return ValidationReport(findings: [Finding(.error, file: directory, position: nil, keyPath: "", message: "not a directory")])
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
                findings.append(Finding(.error, file: directory, position: nil, keyPath: keyPath, message: problem.description))
            }
        } catch {
            return ValidationReport(findings: [Finding(.error, file: directory, position: nil, keyPath: "", message: error.description)])
        }
        for entry in entries {
            if ignoreHidden, entry.path.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }
            tree.items[entry.path] = RevisionTree.Item(kind: entry.kind, mode: entry.mode)
        }
        return check(tree: tree, source: directory, findings: findings, appSpecFileName: appSpecFileName) { name in
            // Only a regular file of the revision is read: an appspec symlink is never followed.
            tree.items[name]?.kind == .file ? try? String(contentsOfFile: root + "/" + name, encoding: .utf8) : nil
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
            return ValidationReport(findings: [Finding(.error, file: path, position: nil, keyPath: "", message: error.description)])
        }
        var tree = RevisionTree()
        for entry in entries {
            tree.items[entry.path] = RevisionTree.Item(kind: entry.kind, mode: entry.mode)
        }
        let candidates = appSpecCandidates(appSpecFileName)
        tree.stripSingleTopDirectory(appSpecNames: candidates)
        let prefix = tree.strippedPrefix.map { $0 + "/" } ?? ""
        return check(tree: tree, source: path, findings: [], appSpecFileName: appSpecFileName) { name in
            (try? BundleArchive.readFile(path, entry: prefix + name, maxBytes: 1 << 20)).map { String(decoding: $0, as: UTF8.self) }
        }
    }

    static func check(
        tree: RevisionTree, source: String, findings initial: [Finding], appSpecFileName: String?, read: (String) -> String?
    ) -> ValidationReport {
        var findings = initial
        let candidates = appSpecCandidates(appSpecFileName)
        guard let name = candidates.first(where: { tree.items[$0]?.kind == .file || tree.items[$0]?.kind == .symlink }) else {
            findings.append(
                Finding(
                    .error, file: source, position: nil, keyPath: "",
                    message: "no appspec at the root of the revision (looked for \(candidates.joined(separator: ", ")))"))
            return ValidationReport(appSpecPath: nil, findings: findings)
        }
        guard let text = read(name) else {
            findings.append(Finding(.error, file: name, position: nil, keyPath: "", message: "cannot read the appspec"))
            return ValidationReport(appSpecPath: name, findings: findings)
        }
        let report = AppSpecParser.parse(text, fileName: name)
        findings += report.findings
        if let spec = report.partial {
            for (event, scripts) in spec.hooks.sorted(by: { order($0.key) < order($1.key) }) {
                for (index, script) in scripts.enumerated() {
                    let path = normalize(script.location)
                    let keyPath = "hooks.\(event)[\(index)].location"
                    switch tree.items[path]?.kind {
                    case .file?, .symlink?, .hardlink?:
                        if let mode = tree.items[path]?.mode, mode & 0o111 == 0, tree.items[path]?.kind != .symlink {
                            findings.append(
                                Finding(
                                    .warning, file: name, position: script.position, keyPath: keyPath,
                                    message: "'\(script.location)' is not executable; it will be made executable (chmod +x) before it runs"))
                        }
                    case .directory?:
                        findings.append(
                            Finding(
                                .error, file: name, position: script.position, keyPath: keyPath,
                                message: "'\(script.location)' is a directory, not a script"))
                    default:
                        findings.append(
                            Finding(
                                .error, file: name, position: script.position, keyPath: keyPath,
                                message: "the script '\(script.location)' is not in the revision\(suggestion(path, tree))"))
                    }
                }
            }
            for (index, mapping) in spec.files.enumerated() {
                let path = normalize(mapping.source)
                if path.isEmpty || tree.items[path] != nil || tree.contains(directory: path) { continue }
                findings.append(
                    Finding(
                        .error, file: name, position: mapping.position, keyPath: "files[\(index)].source",
                        message: "'\(mapping.source)' is not in the revision\(suggestion(path, tree))"))
            }
        }
        let ordered = findings.enumerated().sorted { a, b in
            let pa = a.element.position.map { ($0.line, $0.column) } ?? (Int.max, 0)
            let pb = b.element.position.map { ($0.line, $0.column) } ?? (Int.max, 0)
            if a.element.file != b.element.file { return a.offset < b.offset }
            return pa != pb ? pa < pb : a.offset < b.offset
        }.map(\.element)
        return ValidationReport(appSpecPath: name, appSpec: report.appSpec, findings: ordered)
    }

    static func order(_ event: String) -> Int { LifecycleEventName.all.firstIndex(of: event) ?? Int.max }

    static func normalize(_ location: String) -> String {
        location.split(separator: "/").filter { $0 != "." }.joined(separator: "/")
    }

    static func suggestion(_ path: String, _ tree: RevisionTree) -> String {
        Suggestion.closest(to: path, in: Array(tree.items.keys), allowContainment: false).map { "; did you mean '\($0)'?" } ?? ""
    }
}
