import Agent
import AppSpec
import ArgumentParser
import Bundles
import DeployModel
import Foundation
import HostCommandModel
import Synchronization

/// The bundle type `deployctl local` takes: an archive type or a plain directory.
enum LocalBundleType: String, ExpressibleByArgument, CaseIterable {
    case zip, tar, tgz, directory
}

extension FileExistsBehavior: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument.uppercased()) }
}

/// The long options of `deployctl local` (with ``EngineOption``), declared once for ArgumentParser and ``PlainArguments``.
enum LocalOption: String, PlainOptions {
    case bundleLocation = "bundle-location"
    case type
    case fileExistsBehavior = "file-exists-behavior"
    case deploymentGroup = "deployment-group"
    case deploymentGroupName = "deployment-group-name"
    case applicationName = "application-name"
    case events
    case appSpecFileName = "appspec-filename"
    case agentRoot = "agent-root"
    case installRoot = "install-root"
    case ignoreApplicationStopFailures = "ignore-application-stop-failures"
    case deploymentId = "deployment-id"
    case output
    case preflight

    var kind: PlainOptionKind { self == .ignoreApplicationStopFailures || self == .preflight ? .flag : .value }
}

/// `deployctl local`: run a revision on this host now, as `codedeploy-local` does, with nothing else installed.
struct LocalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "local",
        _superCommandName: "deployctl",
        abstract: "Deploy a bundle or directory on this host now, as codedeploy-local does (deployctl extension).",
        discussion: """
            Runs the lifecycle events in order (ApplicationStop from the group's last successful revision, DownloadBundle, \
            BeforeInstall, Install, AfterInstall, ApplicationStart, ValidateService; the traffic events are Skipped since \
            there is no load balancer) and prints each with its status and duration; on failure, the event, error code, \
            script and log tail. Running it twice on the same --deployment-group exercises the real redeploy path. Exits 0 \
            only when every event succeeded (or was skipped), 1 otherwise.
            """)

    /// The defaults of the options below, which ``parsedPlainly(_:)`` applies too.
    static let defaultBundleLocation = "."
    static let defaultDeploymentGroup = "default-local-deployment-group"
    static let defaultDeploymentGroupName = "LocalFleet"

    @Option(
        name: LocalOption.bundleLocation.name,
        help: ArgumentHelp("The revision: a zip/tar/tgz file or a directory (default: the current directory).", valueName: "path"))
    var bundleLocation: String = Self.defaultBundleLocation

    @Option(
        name: LocalOption.type.name,
        help: ArgumentHelp("zip, tar, tgz or directory (default: directory for a directory, else detected).", valueName: "type"))
    var type: LocalBundleType?

    @Option(
        name: LocalOption.fileExistsBehavior.name,
        help: ArgumentHelp(
            "What to do with files that exist and are not ours: DISALLOW (default), OVERWRITE or RETAIN. The appspec's own value wins.",
            valueName: "behavior"))
    var fileExistsBehavior: FileExistsBehavior?

    @Option(
        name: LocalOption.deploymentGroup.name,
        help: ArgumentHelp("The deployment group ID: the directory under the agent root that keeps this group's history.", valueName: "id"))
    var deploymentGroup: String = Self.defaultDeploymentGroup

    @Option(name: LocalOption.deploymentGroupName.name, help: ArgumentHelp("DEPLOYMENT_GROUP_NAME for hooks.", valueName: "name"))
    var deploymentGroupName: String = Self.defaultDeploymentGroupName

    @Option(
        name: LocalOption.applicationName.name, help: ArgumentHelp("APPLICATION_NAME for hooks (default: the bundle location).", valueName: "name"))
    var applicationName: String?

    @Option(
        name: LocalOption.events.name, help: ArgumentHelp("Run only these events (comma-separated); they run in lifecycle order.", valueName: "list"))
    var events: String?

    @Option(
        name: LocalOption.appSpecFileName.name,
        help: ArgumentHelp("The appspec's name at the revision root (default appspec.yml, then appspec.yaml).", valueName: "name"))
    var appSpecFileName: String?

    @Option(
        name: LocalOption.agentRoot.name,
        help: ArgumentHelp(
            "The deployment root (default /opt/deployctl/deployment-root for root, else under ~/.local/state/deployctl).", valueName: "dir"))
    var agentRoot: String?

    @Option(
        name: LocalOption.installRoot.name,
        help: ArgumentHelp("Place every destination under this directory (like DESTDIR); hooks see it as DEPLOYCTL_INSTALL_ROOT.", valueName: "dir"))
    var installRoot: String?

    @Flag(name: LocalOption.ignoreApplicationStopFailures.name, help: "Log an ApplicationStop failure and go on with the deployment.")
    var ignoreApplicationStopFailures = false

    @Option(
        name: LocalOption.deploymentId.name,
        help: ArgumentHelp(
            "Use this deployment ID instead of a random d-XXXXXXXXX-local (for reproducible paths in scripts and tests).", valueName: "id"))
    var deploymentId: String?

    @OptionGroup var engineOptions: EngineOptions

    @Option(name: LocalOption.output.name, help: ArgumentHelp("text (default) or json, one document for CI.", valueName: "format"))
    var output: ReportFormat = .text

    @Flag(
        name: LocalOption.preflight.name,
        help: """
            Change nothing; report what the deployment would do and what would stop it: the events and scripts that \
            would run (and from which revision), runas users that do not exist, destinations that are not writable, \
            files that would conflict under the file_exists_behavior, and whether the disk has room.
            """)
    var preflight = false

    func validate() throws {
        if let deploymentId,
            deploymentId.isEmpty || deploymentId.count > 64
                || !deploymentId.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
        {
            throw ValidationError("--deployment-id must be 1-64 letters, digits, '-' or '_'.")
        }
        if deploymentGroup.isEmpty || deploymentGroup.contains("/") || deploymentGroup.hasPrefix(".") {
            throw ValidationError("--deployment-group must be a plain name (no '/', not starting with '.').")
        }
        if let events {
            let names = events.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            for name in names where !LifecycleEventName.all.contains(name) {
                let hint = Suggestion.closest(to: name, in: LifecycleEventName.all).map { "; did you mean '\($0)'?" } ?? ""
                throw ValidationError("--events: unknown lifecycle event '\(name)'\(hint)")
            }
        }
    }

    func run() throws {
        let location = URL(fileURLWithPath: bundleLocation).standardizedFileURL.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: location, isDirectory: &isDirectory) else {
            throw CLIFailure.usage("--bundle-location \(bundleLocation) does not exist")
        }
        let source: BundleSource
        if type == .directory || (type == nil && isDirectory.boolValue) {
            guard isDirectory.boolValue else { throw CLIFailure.usage("--bundle-location \(bundleLocation) is a file, not a directory") }
            source = .directory(location)
        } else {
            guard !isDirectory.boolValue else {
                throw CLIFailure.usage("--bundle-location \(bundleLocation) is a directory; use --type directory or give an archive")
            }
            source = .archive(path: location, type: type.flatMap { ArchiveFormat(rawValue: $0.rawValue) })
        }
        let suffix = String((0..<9).map { _ in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".randomElement() ?? "A" })
        let spec = DeploymentSpec(
            deploymentId: deploymentId ?? "d-\(suffix)-local", applicationName: applicationName ?? bundleLocation,
            deploymentGroupName: deploymentGroupName,
            deploymentGroupId: deploymentGroup, bundle: source, fileExistsBehavior: fileExistsBehavior,
            ignoreApplicationStopFailures: ignoreApplicationStopFailures, appSpecFileName: appSpecFileName, installRoot: installRoot,
            events: events.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } })
        let root = DeploymentRoot(path: agentRoot ?? DeploymentRoot.defaultPath())
        let engine = engineOptions.engine(root: root)
        if preflight {
            let report = engine.preflight(spec)
            print(Self.render(report, format: output), terminator: "")
            if !report.ok { throw CLIFailure.problemsFound }
            return
        }
        let directory = root.deploymentDirectory(group: spec.deploymentGroupId, deployment: spec.deploymentId)
        let printer = output == .text ? EventPrinter() : nil
        if output == .text { print("Deployment \(spec.deploymentId) of \(bundleLocation) in \(directory)") }
        let results = engine.run(spec, reporter: printer)
        let failed = results.first { $0.status == EventStatus.failed }
        let logPath = root.scriptLog(group: spec.deploymentGroupId, deployment: spec.deploymentId)
        switch output {
        case .text:
            if let failed {
                print("Deployment failed at \(failed.name). See the deployment log at \(logPath)")
            } else {
                print("Deployment succeeded. Log: \(logPath)")
            }
        case .json:
            print(Self.json(spec: spec, directory: directory, log: logPath, results: results).rendered())
        }
        if failed != nil { throw CLIFailure.problemsFound }
    }

    static func render(_ report: PreflightReport, format: ReportFormat) -> String {
        switch format {
        case .text:
            var out = "Preflight (nothing was changed):\n"
            for event in report.events {
                var line =
                    "  " + event.name.padded(to: 20)
                    + event.action.padded(to: 6)
                if !event.scripts.isEmpty { line += " " + event.scripts.joined(separator: ", ") }
                if let directory = event.revisionDirectory { line += " (from \(directory))" }
                if let note = event.note { line += " (\(note))" }
                out += line + "\n"
            }
            out += "  files to install: \(report.filesToInstall); disk needed about \(report.bytesNeeded * 2) bytes, \(report.bytesAvailable) free\n"
            for note in report.notes { out += "note: \(note)\n" }
            for problem in report.problems { out += "problem: \(problem)\n" }
            out += report.ok ? "Preflight passed: nothing would stop this deployment.\n" : "Preflight found \(report.problems.count) problem(s).\n"
            return out
        case .json:
            let events = report.events.map { event -> JSONValue in
                var members: [(String, JSONValue)] = [
                    ("lifecycleEventName", .string(event.name)), ("action", .string(event.action)),
                    ("scripts", .array(event.scripts.map { .string($0) })),
                ]
                if let directory = event.revisionDirectory { members.append(("revisionDirectory", .string(directory))) }
                if let note = event.note { members.append(("note", .string(note))) }
                return .members(members)
            }
            return JSONValue.members([
                ("ok", .bool(report.ok)), ("events", .array(events)), ("problems", .array(report.problems.map { .string($0) })),
                ("notes", .array(report.notes.map { .string($0) })), ("filesToInstall", .int(report.filesToInstall)),
                ("bytesNeeded", .int(Int(report.bytesNeeded * 2))), ("bytesAvailable", .int(Int(report.bytesAvailable))),
            ]).rendered() + "\n"
        }
    }

    static func json(spec: DeploymentSpec, directory: String, log: String, results: [EventResult]) -> JSONValue {
        let events = results.map { result -> JSONValue in
            var members: [(String, JSONValue)] = [("lifecycleEventName", .string(result.name)), ("status", .string(result.status.rawValue))]
            if let start = result.startTime { members.append(("startTime", .string(Timestamp.format(start)))) }
            if let end = result.endTime { members.append(("endTime", .string(Timestamp.format(end)))) }
            if let start = result.startTime, let end = result.endTime {
                members.append(("durationSeconds", .double((end.timeIntervalSince(start) * 1000).rounded() / 1000)))
            }
            if let d = result.diagnostics, !d.succeeded || result.ignoredFailure {
                members.append(
                    (
                        "diagnostics",
                        .members([
                            ("errorCode", .string(d.code.rawValue)), ("scriptName", .string(d.scriptName)), ("message", .string(d.message)),
                            ("logTail", .string(d.logTail)),
                        ])
                    ))
            }
            if result.ignoredFailure { members.append(("ignoredFailure", .bool(true))) }
            return .members(members)
        }
        let failed = results.contains { $0.status == .failed }
        return .members([
            ("deploymentId", .string(spec.deploymentId)), ("deploymentGroupId", .string(spec.deploymentGroupId)),
            ("status", .string(failed ? "Failed" : "Succeeded")), ("deploymentDirectory", .string(directory)), ("log", .string(log)),
            ("events", .array(events)),
        ])
    }
}

/// Prints each lifecycle event as it starts and as it finishes; on failure the error code, the script and the log
/// tail. On a terminal the running event shows its elapsed time, replaced by its result; elsewhere an event still
/// running after a few seconds says so once (a log shows what a deployment is waiting for).
final class EventPrinter: LifecycleReporter {
    let running = RunningEvent()
    let terminal = isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb"

    static func label(_ name: String) -> String { RunningEvent.label(name) }

    func eventStarted(_ name: String) {
        if terminal {
            print(Self.label(name) + "running", terminator: "")
            fflush(nil)
        }
        running.start(name, terminal: terminal)
    }

    func eventNote(_ name: String, _ note: String) {
        print((terminal ? "\r\u{1B}[2K" : "") + TerminalText.safe(Self.label(name) + "waiting: \(note)"))
        fflush(nil)
    }

    /// `%8.3fs` without `String(format:)`, whose first use sets up Foundation's locale machinery (0.5 ms).
    static func seconds(_ interval: TimeInterval) -> String {
        let millis = Int((max(interval, 0) * 1000).rounded())
        let fraction = String(millis % 1000)
        let text = "\(millis / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
        return String(repeating: " ", count: max(0, 8 - text.count)) + text + "s"
    }

    func eventFinished(_ result: EventResult) {
        let wasRunning = running.finish(result.name)
        if terminal, wasRunning { print("\r\u{1B}[2K", terminator: "") }
        var line =
            "  " + result.name.padded(to: 20)
            + result.status.rawValue.padded(to: 10)
        if let start = result.startTime, let end = result.endTime {
            line += Self.seconds(end.timeIntervalSince(start))
        }
        if result.ignoredFailure { line += "  (failure ignored: ignoreApplicationStopFailures)" }
        print(line)
        if let d = result.diagnostics, !d.succeeded {
            print(TerminalText.safe("    \(d.code.rawValue)\(d.scriptName.isEmpty ? "" : " in \(d.scriptName)"): \(d.message)"))
            if !d.logTail.isEmpty {
                for tailLine in d.logTail.split(separator: "\n", omittingEmptySubsequences: false).suffix(20) {
                    print("    | " + TerminalText.safe(String(tailLine), keepingTabs: true))
                }
            }
        }
        fflush(nil)
    }
}

/// The event `deployctl local` is running, and the ticker that shows its elapsed time.
final class RunningEvent: Sendable {
    private struct Current {
        var name: String
        var started: Date
        var generation: Int
    }
    private let current = Mutex<Current?>(nil)
    private let generations = Atomic<Int>(0)

    static func label(_ name: String) -> String { "  " + name.padded(to: 20) }

    func start(_ name: String, terminal: Bool) {
        let mine = generations.wrappingAdd(1, ordering: .relaxed).newValue
        current.withLock { $0 = Current(name: name, started: Date(), generation: mine) }
        Task.detached { [self] in await tick(mine, terminal: terminal) }
    }

    /// Ends the event; whether it was the one running.
    func finish(_ name: String) -> Bool {
        current.withLock { state in
            defer { state = nil }
            return state?.name == name
        }
    }

    private func tick(_ mine: Int, terminal: Bool) async {
        var said = false
        while true {
            try? await Task.sleep(for: .milliseconds(terminal ? 250 : 2000))
            // Printed under the lock: once the event has finished (and its result line is printed), nothing is.
            let stillRunning = current.withLock { state -> Bool in
                guard let now = state, now.generation == mine else { return false }
                let elapsed = Int(Date().timeIntervalSince(now.started))
                if terminal {
                    print("\r\u{1B}[2K" + Self.label(now.name) + "running \(elapsed)s", terminator: "")
                    fflush(nil)
                } else if !said {
                    said = true
                    print(Self.label(now.name) + "still running after \(elapsed)s")
                    fflush(nil)
                }
                return true
            }
            if !stillRunning { return }
        }
    }
}
