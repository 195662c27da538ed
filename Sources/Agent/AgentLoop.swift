import AppSpec
import DeployModel
import Foundation
import Logging
import Synchronization

/// One host command as the agent runs it: an event of a deployment, with everything the engine needs.
public struct AgentCommand: Sendable {
    public var id: String
    public var event: String
    public var spec: DeploymentSpec
    /// Set when the bundle cannot be fetched; DownloadBundle then fails with this message.
    public var bundleProblem: String?

    public init(id: String, event: String, spec: DeploymentSpec, bundleProblem: String? = nil) {
        self.id = id
        self.event = event
        self.spec = spec
        self.bundleProblem = bundleProblem
    }
}

/// The control plane as the engine's loop sees it: commands ready to run, results to report. ``HostCommandAdapter``
/// implements it over any ``HostCommandService`` (the local control plane, later a remote one). Nothing in the agent
/// touches SQLite.
public protocol AgentControlPlane: Sendable {
    func poll(instanceName: String) async throws -> AgentCommand?
    func acknowledge(_ id: String, expectedSeconds: Int) async throws
    /// Something to show while the command runs (the process holding a hook's output).
    func note(_ id: String, _ message: String) async throws
    func complete(_ id: String, result: EventResult) async throws
}

/// Passes what the engine wants shown while an event runs on to the control plane, without waiting for it.
struct CommandNotes: LifecycleReporter {
    let id: String
    let controlPlane: any AgentControlPlane

    func eventStarted(_ name: String) {}
    func eventFinished(_ result: EventResult) {}
    func eventNote(_ name: String, _ note: String) {
        let controlPlane = self.controlPlane
        let id = self.id
        Task { try? await controlPlane.note(id, note) }
    }
}

/// The agent's loop: poll, acknowledge, run with the engine, complete. A command in progress is remembered in
/// `<agent-root>/ongoing-deployment/<command-id>` so that an agent killed mid-event reports it failed on restart
/// instead of silently running it again.
public struct AgentLoop: Sendable {
    public var engine: LifecycleEngine
    public var controlPlane: any AgentControlPlane
    public var instanceName: String
    /// One line per event (deployment, event, status, duration, and why it failed).
    public var logger: Logger
    /// When the loop last started or finished an event (the idle-memory watch waits for a quiet stretch).
    public let activity = AgentActivity()

    public init(
        engine: LifecycleEngine, controlPlane: any AgentControlPlane, instanceName: String,
        logger: Logger = Logger(label: "deployctl.agent", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.engine = engine
        self.controlPlane = controlPlane
        self.instanceName = instanceName
        self.logger = logger
    }

    var ongoingDirectory: String { engine.root.path + "/ongoing-deployment" }

    /// Reports commands a previous run of this agent was killed in the middle of. Returns how many.
    @discardableResult
    public func recoverInterrupted() async -> Int {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: ongoingDirectory)) ?? []
        var count = 0
        for file in files {
            // The marker holds the event, then the command's id (a remote id may hold '/', so it is not the name).
            let lines = ((try? String(contentsOfFile: ongoingDirectory + "/" + file, encoding: .utf8)) ?? "").split(separator: "\n")
            let event = lines.first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            let id = lines.count > 1 ? String(lines[1]) : file
            // The event had finished and only its report was lost with the agent: report what happened.
            if lines.count > 2, let recorded = try? JSONDecoder().decode(RecordedResult.self, from: Data(lines[2].utf8)) {
                do {
                    try await controlPlane.complete(id, result: recorded.result(event: event))
                    try? FileManager.default.removeItem(atPath: ongoingDirectory + "/" + file)
                    count += 1
                } catch is ServiceError {
                    try? FileManager.default.removeItem(atPath: ongoingDirectory + "/" + file)
                } catch {
                    // Kept for the next start: the result is never dropped because the server was unreachable.
                }
                continue
            }
            let outcome = ScriptOutcome(
                code: .unknownError, scriptName: "",
                message: "The agent restarted while \(event.isEmpty ? "this event" : event) was running; it was not run again.",
                logTail: "")
            try? await controlPlane.complete(id, result: EventResult(name: event, status: .failed, endTime: Date(), diagnostics: outcome))
            try? FileManager.default.removeItem(atPath: ongoingDirectory + "/" + file)
            count += 1
        }
        return count
    }

    /// Runs every command the control plane has for this instance now; returns how many ran.
    /// Runs every command the control plane has for this instance now, one after another; `shouldStop` is asked
    /// between commands (a stopping agent finishes the current event, bounded by its timeout). Returns how many ran.
    public func runPending(shouldStop: @Sendable () -> Bool = { false }) async throws -> Int {
        var count = 0
        while !shouldStop(), let command = try await controlPlane.poll(instanceName: instanceName) {
            try await run(command)
            count += 1
        }
        return count
    }

    func run(_ command: AgentCommand) async throws {
        activity.touch()
        defer { activity.touch() }
        try FileManager.default.createDirectory(atPath: ongoingDirectory, withIntermediateDirectories: true)
        let marker = ongoingDirectory + "/" + Self.markerName(command.id)
        try Data((command.event + "\n" + command.id + "\n").utf8).write(to: URL(fileURLWithPath: marker))
        do {
            try await controlPlane.acknowledge(command.id, expectedSeconds: engine.expectedSeconds(command.spec, event: command.event))
        } catch {
            // Not started: nothing to report later.
            try? FileManager.default.removeItem(atPath: marker)
            throw error
        }
        let result: EventResult
        if command.event == "DownloadBundle", let problem = command.bundleProblem {
            result = EventResult(
                name: command.event, status: .failed, startTime: Date(), endTime: Date(),
                diagnostics: ScriptOutcome(code: .unknownError, scriptName: "", message: problem, logTail: ""))
        } else {
            var spec = command.spec
            spec.events = [command.event]
            result =
                engine.run(spec, reporter: CommandNotes(id: command.id, controlPlane: controlPlane)).first { $0.name == command.event }
                ?? EventResult(name: command.event, status: .skipped, endTime: Date())
        }
        var metadata: Logger.Metadata = [
            "deployment_id": .string(command.spec.deploymentId), "event": .string(command.event), "status": .string(result.status.rawValue),
        ]
        if let start = result.startTime, let end = result.endTime {
            metadata["duration_s"] = .string(String(format: "%.2f", end.timeIntervalSince(start)))
        }
        if result.status == .failed, let d = result.diagnostics {
            metadata["error_code"] = .string(d.code.apiCode.rawValue)
            if !d.scriptName.isEmpty { metadata["script"] = .string(d.scriptName) }
            logger.error("\(command.event) failed: \(d.message)", metadata: metadata)
        } else {
            logger.info("\(command.event) \(result.status.rawValue)", metadata: metadata)
        }
        // Before reporting, the result is on disk: an agent killed while the server is unreachable reports it on start.
        if let recorded = try? JSONEncoder().encode(RecordedResult(result)) {
            try? Data((command.event + "\n" + command.id + "\n" + String(decoding: recorded, as: UTF8.self) + "\n").utf8)
                .write(to: URL(fileURLWithPath: marker))
        }
        // A report that cannot be delivered (the server unreachable) stays in the marker, for the next start; one the
        // control plane refused (the command expired meanwhile) is done with.
        do {
            try await controlPlane.complete(command.id, result: result)
        } catch let error as ServiceError {
            try? FileManager.default.removeItem(atPath: marker)
            throw error
        }
        try? FileManager.default.removeItem(atPath: marker)
    }
}

/// An event's result as the agent keeps it on disk until the control plane has it.
struct RecordedResult: Codable {
    var status: EventStatus
    var code: ScriptErrorCode?
    var scriptName: String?
    var message: String?
    var logTail: String?
    var ignoredFailure: Bool

    init(_ result: EventResult) {
        status = result.status
        code = result.diagnostics?.code
        scriptName = result.diagnostics?.scriptName
        message = result.diagnostics?.message
        logTail = result.diagnostics?.logTail
        ignoredFailure = result.ignoredFailure
    }

    func result(event: String) -> EventResult {
        var result = EventResult(name: event, status: status, endTime: Date())
        if let code {
            result.diagnostics = ScriptOutcome(code: code, scriptName: scriptName ?? "", message: message ?? "", logTail: logTail ?? "")
        }
        result.ignoredFailure = ignoredFailure
        return result
    }
}

extension AgentLoop {
    /// A file name for a command id: '/' and other awkward characters replaced, bounded in length.
    static func markerName(_ id: String) -> String {
        let safe = String(id.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" }.prefix(200))
        return safe.hasPrefix(".") ? "_" + safe : safe
    }
}

extension LifecycleEngine {
    /// How long an event may take: the sum of its scripts' timeouts (one hour for the agent's own events).
    public func expectedSeconds(_ spec: DeploymentSpec, event: String) -> Int {
        if event == "DownloadBundle" || event == "Install" { return HookScript.defaultTimeout }
        let group = spec.deploymentGroupId
        let archive: String
        if event == "ApplicationStop", let previous = root.lastSuccessfulInstall(group) {
            archive = previous + "/deployment-archive"
        } else {
            archive = root.archiveDirectory(group: group, deployment: spec.deploymentId)
        }
        let scripts = currentAppSpec(archive: archive, name: spec.appSpecFileName)?.hooks[event] ?? []
        // Saturating: timeouts are bounded by the parser, but a sum must never be able to trap.
        let total = scripts.reduce(0) { sum, script in
            let (next, overflow) = sum.addingReportingOverflow(max(0, script.timeout))
            return overflow ? Int.max : next
        }
        // The control plane adds its own grace (60 s by default) for start-up and reporting.
        return max(1, total)
    }
}

/// A count of the agent's event starts and ends, when the last one was (monotonic clock), and a stream that yields on
/// each, so a watcher can sleep until there is something to watch.
public final class AgentActivity: Sendable {
    private let generation = Atomic<Int>(0)
    private let lastNanoseconds = Atomic<UInt64>(DispatchTime.now().uptimeNanoseconds)
    let changes: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    public init() {
        (changes, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        continuation.yield()
    }

    func touch() {
        generation.wrappingAdd(1, ordering: .relaxed)
        lastNanoseconds.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
        continuation.yield()
    }

    /// The current generation and how many seconds have passed since the last start or end.
    func state() -> (generation: Int, quietSeconds: Double) {
        let elapsed = DispatchTime.now().uptimeNanoseconds &- lastNanoseconds.load(ordering: .relaxed)
        return (generation.load(ordering: .relaxed), Double(elapsed) / 1e9)
    }
}
