import AppSpec
import Bundles
import DeployModel
import Foundation
import HostCommandModel

/// Where a deployment's revision comes from on this host.
public enum BundleSource: Sendable, Equatable {
    case archive(path: String, type: ArchiveFormat?)
    case directory(String)
}

/// Everything the engine needs to run one deployment on this host.
public struct DeploymentSpec: Sendable {
    public var deploymentId: String
    public var applicationName: String
    public var deploymentGroupName: String
    public var deploymentGroupId: String
    public var bundle: BundleSource
    /// From the deployment; the appspec's own value wins, then this, then DISALLOW.
    public var fileExistsBehavior: FileExistsBehavior?
    public var ignoreApplicationStopFailures: Bool
    public var appSpecFileName: String?
    /// Prefixed to every destination; hooks see it as `DEPLOYCTL_INSTALL_ROOT`.
    public var installRoot: String?
    /// Only these events (run in lifecycle order); nil for all.
    public var events: [String]?
    /// Extra variables for hooks (`BUNDLE_BUCKET`, `BUNDLE_COMMIT`, …).
    public var revisionEnvironment: [String: String]

    public init(
        deploymentId: String, applicationName: String, deploymentGroupName: String, deploymentGroupId: String, bundle: BundleSource,
        fileExistsBehavior: FileExistsBehavior? = nil, ignoreApplicationStopFailures: Bool = false, appSpecFileName: String? = nil,
        installRoot: String? = nil, events: [String]? = nil, revisionEnvironment: [String: String] = [:]
    ) {
        self.deploymentId = deploymentId
        self.applicationName = applicationName
        self.deploymentGroupName = deploymentGroupName
        self.deploymentGroupId = deploymentGroupId
        self.bundle = bundle
        self.fileExistsBehavior = fileExistsBehavior
        self.ignoreApplicationStopFailures = ignoreApplicationStopFailures
        self.appSpecFileName = appSpecFileName
        self.installRoot = installRoot
        self.events = events
        self.revisionEnvironment = revisionEnvironment
    }
}

/// The status a lifecycle event reports.
public enum EventStatus: String, Sendable, Codable {
    case pending = "Pending"
    case inProgress = "InProgress"
    case succeeded = "Succeeded"
    case failed = "Failed"
    case skipped = "Skipped"
}

/// One lifecycle event's result, as the control plane's `LifecycleEvent` carries it.
public struct EventResult: Sendable, Equatable {
    public var name: String
    public var status: EventStatus
    public var startTime: Date?
    public var endTime: Date?
    public var diagnostics: ScriptOutcome?
    /// A failure that `ignoreApplicationStopFailures` let the deployment go past.
    public var ignoredFailure: Bool = false
    /// Which revision's scripts ran (the deployment directory), for the old-revision events.
    public var revisionDirectory: String?
}

/// Receives each event as it starts and ends (the `deployctl local` printer; later the agent's reporter).
public protocol LifecycleReporter {
    func eventStarted(_ name: String)
    func eventFinished(_ result: EventResult)
    /// Something worth showing while the event runs (a background process holding a hook's output).
    func eventNote(_ name: String, _ note: String)
}

extension LifecycleReporter {
    public func eventNote(_ name: String, _ note: String) {}
}

/// Runs the lifecycle of one deployment on this host (ARCHITECTURE.md, "A deployment, end to end").
public struct LifecycleEngine: Sendable {
    public var root: DeploymentRoot
    public var runner: HookRunner
    public var maxRevisions: Int
    /// The cap of each deployment's scripts.log (head and tail kept; see ``ScriptLog``).
    public var maxLogBytes: Int64
    /// Variables of the agent's own environment that hooks also receive (the operator's `--hook-env`); hooks
    /// start from a clean environment otherwise (``hookEnvironment(event:spec:)``).
    public var passedEnvironment: [String] = []

    public init(root: DeploymentRoot, runner: HookRunner = HookRunner(), maxRevisions: Int = 5, maxLogBytes: Int64 = ScriptLog.defaultMaxBytes) {
        self.root = root
        self.runner = runner
        self.maxRevisions = maxRevisions
        self.maxLogBytes = maxLogBytes
    }

    /// The events a run performs, in lifecycle order.
    public static func plannedEvents(_ requested: [String]?) -> [String] {
        guard let requested, !requested.isEmpty else { return LifecycleEventName.all }
        return LifecycleEventName.all.filter { requested.contains($0) }
    }

    /// Runs the deployment and returns every event's result; after a failure the remaining events are Skipped.
    public func run(_ spec: DeploymentSpec, reporter: (any LifecycleReporter)? = nil) -> [EventResult] {
        let group = spec.deploymentGroupId
        let deploymentDirectory = root.deploymentDirectory(group: group, deployment: spec.deploymentId)
        let archive = root.archiveDirectory(group: group, deployment: spec.deploymentId)
        // The previous revision is fixed before this deployment writes any marker.
        let previous = root.lastSuccessfulInstall(group).flatMap { $0 == deploymentDirectory ? nil : $0 }
        do {
            try FileManager.default.createDirectory(atPath: deploymentDirectory + "/logs", withIntermediateDirectories: true)
        } catch {
            return Self.plannedEvents(spec.events).map {
                EventResult(
                    name: $0, status: .failed, startTime: Date(), endTime: Date(),
                    diagnostics: ScriptOutcome(
                        code: .unknownError, scriptName: "", message: "cannot create \(deploymentDirectory): \(error.localizedDescription)",
                        logTail: ""))
            }
        }
        let log = ScriptLog(path: root.scriptLog(group: group, deployment: spec.deploymentId), maxBytes: maxLogBytes)
        log.deploymentsLog = DeploymentsLog(root: root)
        log.deploymentId = spec.deploymentId
        var appSpec: AppSpec? = currentAppSpec(archive: archive, name: spec.appSpecFileName)
        var results: [EventResult] = []
        var failed = false
        // Named events come from a control plane, which sends the traffic hooks only to a deployment with traffic
        // control (BlockTraffic and AllowTraffic are the balancer's, never the agent's).
        let named = spec.events?.isEmpty == false
        for event in Self.plannedEvents(spec.events) {
            // After a failure nothing else runs; without a load balancer there is no traffic to block or allow.
            if failed || (LifecycleEventName.traffic.contains(event) && (!named || LifecycleEventName.reserved.contains(event))) {
                let result = EventResult(name: event, status: .skipped, endTime: Date())
                reporter?.eventFinished(result)
                results.append(result)
                continue
            }
            var result = EventResult(name: event, status: .inProgress, startTime: Date())
            if LifecycleEventName.fromPreviousRevision.contains(event), previous == nil {
                // First deployment of the group on this host: there is no old revision to stop (or to block traffic).
                result.status = .skipped
                result.startTime = nil
                result.endTime = Date()
                reporter?.eventFinished(result)
                results.append(result)
                continue
            }
            reporter?.eventStarted(event)
            log.event = event
            var outcome: ScriptOutcome?
            switch event {
            case "DownloadBundle":
                outcome = download(spec, directory: deploymentDirectory, archive: archive, log: log)
                appSpec = currentAppSpec(archive: archive, name: spec.appSpecFileName)
            case "Install":
                outcome = install(spec, appSpec: appSpec, archive: archive, directory: deploymentDirectory, log: log)
            case "ApplicationStop", "BeforeBlockTraffic", "AfterBlockTraffic":
                let oldDirectory = previous ?? deploymentDirectory
                result.revisionDirectory = oldDirectory
                let oldArchive = oldDirectory + "/deployment-archive"
                outcome = runHooks(
                    event, appSpec: currentAppSpec(archive: oldArchive, name: spec.appSpecFileName), archive: oldArchive, spec: spec, log: log,
                    reporter: reporter)
            default:
                outcome = runHooks(event, appSpec: appSpec, archive: archive, spec: spec, log: log, reporter: reporter)
            }
            if outcome?.succeeded ?? true, let problem = log.failure {
                outcome = ScriptOutcome(
                    code: .unknownError, scriptName: "", message: "\(event): the deployment log cannot be written: \(problem)", logTail: log.tail)
            }
            result.endTime = Date()
            result.diagnostics = outcome
            if let outcome, !outcome.succeeded {
                if LifecycleEventName.fromPreviousRevision.contains(event) && spec.ignoreApplicationStopFailures {
                    log.write("[deployctl] \(event) failed and ignoreApplicationStopFailures is set: going on (\(outcome.message))")
                    result.status = .succeeded
                    result.ignoredFailure = true
                } else {
                    result.status = .failed
                    failed = true
                    // Its logs outlive pruning until a later deployment of the group fails.
                    try? root.markLastFailed(group, deploymentDirectory)
                }
            } else {
                result.status = .succeeded
            }
            reporter?.eventFinished(result)
            results.append(result)
        }
        return results
    }

    /// The appspec of an unpacked revision: the requested name, else appspec.yaml, else appspec.yml.
    func currentAppSpec(archive: String, name: String?) -> AppSpec? {
        guard let (candidate, text) = Self.readAppSpec(archive: archive, name: name) else { return nil }
        return AppSpecParser.parse(text, fileName: candidate).appSpec
    }

    /// The largest appspec read (AWS's own limit on an appspec is far below it).
    public static let maxAppSpecBytes = 1 << 20

    /// The appspec file of an unpacked revision and its text, read inside the revision only (a symlink leading
    /// out of it is never read).
    public static func readAppSpec(archive: String, name: String?) -> (String, String)? {
        let revision = ConfinedRoot(path: archive, policy: .beneath)
        for candidate in AppSpecParser.candidateFileNames(name) {
            if let data = try? revision.readFile(candidate, maxBytes: maxAppSpecBytes) {
                return (candidate, String(decoding: data, as: UTF8.self))
            }
        }
        return nil
    }

    func failure(_ message: String) -> ScriptOutcome {
        ScriptOutcome(code: .unknownError, scriptName: "", message: message, logTail: "")
    }

    /// DownloadBundle: unpack (or copy) the revision into `deployment-archive`, prune old revisions, mark it most recent.
    func download(_ spec: DeploymentSpec, directory: String, archive: String, log: ScriptLog) -> ScriptOutcome? {
        let group = spec.deploymentGroupId
        for removed in root.prune(group: group, keeping: directory, maxRevisions: maxRevisions) {
            log.write("[deployctl] removed old revision \(removed) (max_revisions \(maxRevisions))")
        }
        try? FileManager.default.removeItem(atPath: archive)
        do {
            switch spec.bundle {
            case .archive(let path, let type):
                // As codedeploy-local does, the deployment directory links to the bundle it was made from.
                let link = directory + "/bundle." + (type?.rawValue ?? (try? BundleArchive.detectType(of: path).rawValue) ?? "bundle")
                if (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) == nil { symlink(path, link) }
                try BundleArchive.extract(path, declaredType: type, into: archive)
                stripSingleTopDirectory(archive, appSpecName: spec.appSpecFileName)
            case .directory(let path):
                // The same entry rules as an archive; symlinks are copied as symlinks, never followed.
                try BundleArchive.copyDirectory(path, into: archive)
            }
        } catch {
            return failure("DownloadBundle: \(error.description)")
        }
        let names = AppSpecParser.candidateFileNames(spec.appSpecFileName)
        guard let (name, text) = Self.readAppSpec(archive: archive, name: spec.appSpecFileName) else {
            return failure(
                "DownloadBundle: the revision has no appspec at its root (looked for \(names.joined(separator: ", ")))")
        }
        let report = AppSpecParser.parse(text, fileName: name)
        for finding in report.findings { log.write("[appspec] \(finding.description)") }
        guard report.appSpec != nil else {
            return ScriptOutcome(
                code: .unknownError, scriptName: name,
                message: "the appspec is invalid: " + report.errors.map(\.description).joined(separator: "; "), logTail: log.tail)
        }
        do {
            try root.markMostRecent(group, directory)
        } catch {
            return failure("DownloadBundle: \(error)")
        }
        return nil
    }

    /// A bundle whose only top-level entry is a directory holding the appspec is used from inside it.
    func stripSingleTopDirectory(_ archive: String, appSpecName: String?) {
        let fm = FileManager.default
        guard let entries = try? fm.contentsOfDirectory(atPath: archive), entries.count == 1, let only = entries.first else { return }
        let inner = archive + "/" + only
        // lstat: a single top-level *symlink* to a directory is never taken for the revision's root (it may lead
        // anywhere on the host).
        var info = stat()
        guard lstat(inner, &info) == 0, info.st_mode & S_IFMT == S_IFDIR,
            let innerEntries = try? fm.contentsOfDirectory(atPath: inner),
            innerEntries.contains(where: { $0.lowercased().contains("appspec") })
        else { return }
        let temporary = archive + "-temp"
        guard rename(inner, temporary) == 0, rmdir(archive) == 0, rename(temporary, archive) == 0 else { return }
    }

    /// Install: remove what the previous install of the group created, copy the files, apply permissions.
    func install(_ spec: DeploymentSpec, appSpec: AppSpec?, archive: String, directory: String, log: ScriptLog) -> ScriptOutcome? {
        guard let appSpec else { return failure("Install: the revision has no valid appspec") }
        let group = spec.deploymentGroupId
        let installer = Installer(installRoot: spec.installRoot, placedSymlinks: Installer.placedSymlinks(in: root.instructionsDirectory))
        let cleanup = root.cleanupList(group)
        let behavior = appSpec.fileExistsBehavior ?? spec.fileExistsBehavior ?? .disallow
        // A redeploy keeps the files that would be installed again byte for byte, and removes the rest of what the
        // previous revision installed before copying.
        let listed = Installer.listed(in: cleanup)
        let previous = Set(listed)
        let unchanged =
            previous.isEmpty
            ? []
            : ((try? installer.plan(appSpec, archive: archive, behavior: behavior, owned: previous)).map {
                installer.unchanged($0, previous: previous)
            } ?? [])
        let removed = installer.removePrevious(cleanupList: cleanup, keeping: unchanged)
        if !removed.isEmpty { log.write("[deployctl] removed \(removed.count) path(s) installed by the previous revision") }
        if !unchanged.isEmpty { log.write("[deployctl] \(unchanged.count) file(s) are unchanged since the previous revision: left in place") }
        // Directories of the previous install that still hold kept files stay ours: recorded again, first.
        let keptDirectories =
            unchanged.isEmpty
            ? []
            : listed.filter { path in
                var info = stat()
                return !unchanged.contains(path) && lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
            }
        do {
            let plan = try installer.plan(appSpec, archive: archive, behavior: behavior, owned: unchanged)
            for retained in plan.retained { log.write("[deployctl] kept existing \(retained) (RETAIN)") }
            let installed = try installer.execute(plan, cleanupList: cleanup, unchanged: unchanged, keptDirectories: keptDirectories)
            for note in try installer.applyPermissions(appSpec, installed: installed) { log.write("[deployctl] \(note)") }
            log.write("[deployctl] installed \(plan.copies.count) file(s) and \(plan.directories.count) directorie(s)")
            try root.markLastSuccessful(group, directory)
        } catch let error as AgentError {
            log.write("[deployctl] Install failed: \(error.description)")
            return ScriptOutcome(code: .unknownError, scriptName: "", message: "Install: \(error.description)", logTail: log.tail)
        } catch {
            return failure("Install: \(error)")
        }
        return nil
    }

    /// The hooks of one event, one script after another, stopping at the first failure.
    func runHooks(
        _ event: String, appSpec: AppSpec?, archive: String, spec: DeploymentSpec, log: ScriptLog, reporter: (any LifecycleReporter)? = nil
    ) -> ScriptOutcome? {
        guard let scripts = appSpec?.hooks[event], !scripts.isEmpty else { return nil }
        log.write("LifecycleEvent - \(event)")
        let environment = hookEnvironment(event: event, spec: spec)
        var last: ScriptOutcome?
        for script in scripts {
            let outcome = runner.run(script, archiveRoot: archive, environment: environment, log: log) { note in
                reporter?.eventNote(event, note)
            }
            if !outcome.succeeded { return outcome }
            last = outcome
        }
        return last
    }

    /// The safe `PATH` hooks get (the agent's own is not passed: it may name writable or odd directories).
    public static let hookPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// What a hook's environment holds (SECURITY.md): nothing of the agent's secrets. `PATH` (a safe default),
    /// `LANG`/`LC_ALL` as the agent has them, the CodeDeploy variables, the revision's `BUNDLE_*` ones,
    /// `DEPLOYCTL_INSTALL_ROOT` when an install root is set, the operator's allow-list (`passedEnvironment`), and
    /// `HOME`/`USER`/`LOGNAME`/`SHELL` of the agent's user (the hook runner replaces them with the runas user's).
    public func hookEnvironment(event: String, spec: DeploymentSpec, agentEnvironment: [String: String] = ProcessInfo.processInfo.environment)
        -> [String: String]
    {
        var environment = ["PATH": Self.hookPath]
        for name in ["LANG", "LC_ALL"] + passedEnvironment {
            if let value = agentEnvironment[name] { environment[name] = value }
        }
        if let user = RunAsUser.lookup(uid: geteuid()) {
            environment["HOME"] = user.home
            environment["USER"] = user.name
            environment["LOGNAME"] = user.name
            environment["SHELL"] = user.shell
        }
        for (key, value) in spec.revisionEnvironment { environment[key] = value }
        environment["LIFECYCLE_EVENT"] = event
        environment["DEPLOYMENT_ID"] = spec.deploymentId
        environment["APPLICATION_NAME"] = spec.applicationName
        environment["DEPLOYMENT_GROUP_NAME"] = spec.deploymentGroupName
        environment["DEPLOYMENT_GROUP_ID"] = spec.deploymentGroupId
        let installRoot = Installer(installRoot: spec.installRoot).installRoot
        if !installRoot.isEmpty { environment["DEPLOYCTL_INSTALL_ROOT"] = installRoot }
        return environment
    }
}
