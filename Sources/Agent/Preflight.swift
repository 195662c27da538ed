import AppSpec
import Bundles
import Foundation
import HostCommandModel

/// What a deployment would do on this host and what would stop it, found without changing anything.
public struct PreflightReport: Sendable, Equatable {
    /// One planned lifecycle event: whether it would run scripts, which ones, and from which revision.
    public struct Event: Sendable, Equatable {
        public var name: String
        /// "run", "skip" (with the reason in `note`), or "agent" for DownloadBundle and Install.
        public var action: String
        public var scripts: [String]
        public var revisionDirectory: String?
        public var note: String?
    }

    public var events: [Event] = []
    /// What would stop the deployment.
    public var problems: [String] = []
    /// Worth knowing, not blocking (RETAINed or OVERWRITTEN files, skipped ACLs …).
    public var notes: [String] = []
    public var filesToInstall = 0
    public var bytesNeeded: Int64 = 0
    public var bytesAvailable: Int64 = 0

    public var ok: Bool { problems.isEmpty }
}

extension LifecycleEngine {
    /// Checks the deployment `spec` would run: the revision and its appspec, the scripts each event would run (and
    /// from which revision), runas users, writable destinations, file conflicts under the effective
    /// file_exists_behavior, and free disk space. Reads the agent root; writes only a temporary copy of an archive
    /// bundle outside it, removed before returning.
    public func preflight(_ spec: DeploymentSpec) -> PreflightReport {
        var report = PreflightReport()
        var temporary: String?
        defer { if let temporary { try? FileManager.default.removeItem(atPath: temporary) } }
        guard let revision = unpackedRevision(spec, into: &report, temporary: &temporary) else { return report }
        let names = AppSpecParser.candidateFileNames(spec.appSpecFileName)
        guard let (name, text) = Self.readAppSpec(archive: revision, name: spec.appSpecFileName) else {
            report.problems.append("the revision has no appspec at its root (looked for \(names.joined(separator: ", ")))")
            return report
        }
        let parsed = AppSpecParser.parse(text, fileName: name)
        report.problems += parsed.errors.map(\.description)
        report.notes += parsed.warnings.map(\.description)
        guard let appSpec = parsed.appSpec else { return report }
        checkEvents(spec, appSpec, revision: revision, into: &report)
        if Self.plannedEvents(spec.events).contains("Install") { checkFiles(spec, appSpec, revision: revision, into: &report) }
        checkDiskSpace(into: &report)
        return report
    }

    /// The revision as a directory to look at: the directory bundle itself, or an archive unpacked into a
    /// temporary directory (named in `temporary`, for the caller to remove). `nil` when it cannot be used.
    private func unpackedRevision(_ spec: DeploymentSpec, into report: inout PreflightReport, temporary: inout String?) -> String? {
        switch spec.bundle {
        case .directory(let path):
            report.bytesNeeded = Self.treeSize(path)
            do {
                _ = try BundleArchive.entries(ofDirectory: path)
            } catch {
                report.problems.append("the revision cannot be used: \(error)")
                return nil
            }
            return path
        case .archive(let path, let type):
            do {
                let entries = try BundleArchive.entries(of: path, declaredType: type)
                report.bytesNeeded = entries.reduce(0) { $0 + max(0, $1.size) }
                let scratch = NSTemporaryDirectory() + "deployctl-preflight-\(UUID().uuidString)"
                temporary = scratch
                try BundleArchive.extract(path, declaredType: type, into: scratch + "/archive")
                stripSingleTopDirectory(scratch + "/archive", appSpecName: spec.appSpecFileName)
                return scratch + "/archive"
            } catch {
                report.problems.append("the bundle cannot be used: \(error)")
                return nil
            }
        }
    }

    /// Events, their scripts, and the revision each runs from; missing scripts and runas users that cannot be used.
    private func checkEvents(_ spec: DeploymentSpec, _ appSpec: AppSpec, revision: String, into report: inout PreflightReport) {
        let fm = FileManager.default
        let previous = root.lastSuccessfulInstall(spec.deploymentGroupId)
        let previousSpec = previous.flatMap { currentAppSpec(archive: $0 + "/deployment-archive", name: spec.appSpecFileName) }
        var runasUsers: [(String, String)] = []
        for event in Self.plannedEvents(spec.events) {
            if LifecycleEventName.traffic.contains(event) {
                report.events.append(.init(name: event, action: "skip", scripts: [], note: "no load balancer"))
            } else if event == "DownloadBundle" || event == "Install" {
                report.events.append(.init(name: event, action: "agent", scripts: []))
            } else if event == "ApplicationStop" {
                guard let previous else {
                    report.events.append(.init(name: event, action: "skip", scripts: [], note: "no earlier revision of this group on this host"))
                    continue
                }
                let scripts = previousSpec?.hooks[event] ?? []
                report.events.append(
                    .init(
                        name: event, action: scripts.isEmpty ? "skip" : "run", scripts: scripts.map(\.location), revisionDirectory: previous,
                        note: scripts.isEmpty ? "the previous revision has no ApplicationStop scripts" : nil))
                runasUsers += scripts.compactMap { script in script.runas.map { ($0, "\(event): \(script.location)") } }
                for script in scripts where !fm.fileExists(atPath: previous + "/deployment-archive/" + script.location) {
                    report.problems.append("\(event): the previous revision's script \(script.location) is missing")
                }
            } else {
                let scripts = appSpec.hooks[event] ?? []
                report.events.append(
                    .init(
                        name: event, action: scripts.isEmpty ? "skip" : "run", scripts: scripts.map(\.location),
                        note: scripts.isEmpty ? "no scripts" : nil))
                runasUsers += scripts.compactMap { script in script.runas.map { ($0, "\(event): \(script.location)") } }
                for script in scripts where !fm.fileExists(atPath: revision + "/" + script.location) {
                    report.problems.append("\(event): the script \(script.location) is not in the revision")
                }
            }
        }
        for (user, use) in runasUsers {
            if RunAsUser.lookup(user) == nil {
                report.problems.append("\(use) runs as '\(user)', which does not exist on this host")
            } else if RunAsUser.lookup(user)?.uid != geteuid(), geteuid() != 0 {
                report.problems.append("\(use) runs as '\(user)', which needs deployctl to run as root")
            }
        }
    }

    /// Files: conflicts and writable destinations, as Install would see them after its cleanup.
    private func checkFiles(_ spec: DeploymentSpec, _ appSpec: AppSpec, revision: String, into report: inout PreflightReport) {
        let installer = Installer(installRoot: spec.installRoot, placedSymlinks: Installer.placedSymlinks(in: root.instructionsDirectory))
        let owned = Set(Installer.listed(in: root.cleanupList(spec.deploymentGroupId)))
        let behavior = appSpec.fileExistsBehavior ?? spec.fileExistsBehavior ?? .disallow
        do {
            let plan = try installer.plan(appSpec, archive: revision, behavior: .retain, owned: owned)
            report.filesToInstall = plan.copies.count + plan.retained.count
            for conflict in plan.retained {
                switch behavior {
                case .disallow: report.problems.append("\(conflict) exists and is not ours (file_exists_behavior DISALLOW)")
                case .overwrite: report.notes.append("\(conflict) exists and would be overwritten (OVERWRITE)")
                case .retain: report.notes.append("\(conflict) exists and would be kept (RETAIN)")
                }
            }
        } catch {
            report.problems.append("Install: \(error.description)")
        }
        for mapping in appSpec.files {
            var directory = installer.destination(mapping.destination)
            while !FileManager.default.fileExists(atPath: directory), directory != "/" {
                directory = (directory as NSString).deletingLastPathComponent
            }
            if access(directory, W_OK) != 0 {
                let destination = installer.destination(mapping.destination)
                report.problems.append("\(destination) is not writable (\(directory) is the nearest existing directory)")
            }
        }
    }

    /// Disk: room for the unpacked revision in the agent root and for the installed copy.
    private func checkDiskSpace(into report: inout PreflightReport) {
        var existing = root.path
        while !FileManager.default.fileExists(atPath: existing), existing != "/" { existing = (existing as NSString).deletingLastPathComponent }
        var stats = statvfs()
        guard statvfs(existing, &stats) == 0 else { return }
        report.bytesAvailable = Int64(stats.f_bavail) * Int64(stats.f_frsize)
        if report.bytesNeeded * 2 > report.bytesAvailable {
            report.problems.append(
                "not enough disk space: the revision needs about \(report.bytesNeeded * 2) bytes (unpacked and installed), \(report.bytesAvailable) are free on \(existing)"
            )
        }
    }

    static func treeSize(_ path: String) -> Int64 {
        var total: Int64 = 0
        for relative in FileManager.default.enumerator(atPath: path)?.allObjects as? [String] ?? [] {
            var info = stat()
            if lstat(path + "/" + relative, &info) == 0, info.st_mode & S_IFMT == S_IFREG { total += Int64(info.st_size) }
        }
        return total
    }
}
