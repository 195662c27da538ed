import ArgumentParser
import DeployModel
import Foundation

/// Follows a deployment until it ends: a per-instance, per-event view redrawn in place on a terminal, one line per
/// change otherwise. Succeeded returns; Failed or Stopped fail as the aws CLI's waiter does (exit 255).
struct DeploymentWaiter {
    let global: GlobalOptions
    let timeout: Double?
    var interval: Double = 0.2

    func wait(for deploymentId: String) async throws {
        let api = try global.openAPI(readOnly: true)
        let live = isatty(STDERR_FILENO) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb"
        let start = Date()
        var previousLines: [String] = []
        let directory = try? global.openAgentDirectory()
        var presence: [String: AgentPresence] = [:]
        var askedAgents = Date.distantPast
        var drawn = 0
        while true {
            let info: DeploymentInfo
            let targets: [InstanceTarget]
            do {
                guard let found = try await api.getDeployment(GetDeploymentInput(deploymentId: deploymentId)).deploymentInfo else { return }
                info = found
                let ids = try await api.listDeploymentTargets(ListDeploymentTargetsInput(deploymentId: deploymentId)).targetIds ?? []
                var collected: [InstanceTarget] = []
                for chunk in ids.chunked(25) {
                    collected +=
                        try await api.batchGetDeploymentTargets(BatchGetDeploymentTargetsInput(deploymentId: deploymentId, targetIds: chunk))
                        .deploymentTargets?.compactMap(\.instanceTarget) ?? []
                }
                targets = collected
            } catch let error as ServiceError {
                throw CLIFailure.other("Waiter DeploymentSuccessful failed: An error occurred (\(error.code)): \(error.message)")
            }
            // Instances whose next event nobody has picked up for a while: say whether any agent is there.
            let stalled = Self.waitingForAgent(targets, now: Date()).filter { presence[$0] == nil || Date().timeIntervalSince(askedAgents) > 2 }
            if !stalled.isEmpty, Date().timeIntervalSince(askedAgents) > 2 {
                askedAgents = Date()
                if let found = try? await directory?.listAgents(instanceNames: stalled) {
                    for agent in found { presence[agent.instanceName] = agent }
                }
            }
            let lines = Self.view(info, targets, agents: presence, now: Date()).map { TerminalText.safe($0) }
            if live {
                var out = drawn > 0 ? "\u{1B}[\(drawn)F" : ""
                for line in lines { out += "\u{1B}[2K" + line + "\n" }
                StandardStreams.err(out)
                drawn = lines.count
            } else {
                for line in lines where !previousLines.contains(line) {
                    StandardStreams.err("\(Timestamp.format(Date())) \(line)\n")
                }
            }
            previousLines = lines
            switch info.status {
            case .succeeded?: return
            case .failed?, .stopped?:
                var message =
                    "Waiter DeploymentSuccessful failed: Waiter encountered a terminal failure state: For expression \"deploymentInfo.status\" we matched expected path: \"\(info.status?.rawValue ?? "")\""
                if let error = info.errorInformation { message += " (\(error.code?.rawValue ?? ""): \(TerminalText.safe(error.message ?? "")))" }
                throw CLIFailure.other(message)
            default: break
            }
            if let timeout, Date().timeIntervalSince(start) > timeout {
                throw CLIFailure.other(
                    "Waiter DeploymentSuccessful failed: the deployment \(deploymentId) did not finish within \(Int(timeout)) s (status \(info.status?.rawValue ?? ""))"
                )
            }
            try await Task.sleep(nanoseconds: UInt64(interval * 1_000_000_000))
        }
    }

    /// How long an instance's next event may wait to be picked up before the view says whether its agent is there:
    /// a live agent's held poll takes it within milliseconds, a local agent's within its poll interval.
    static let agentWaitNotice: TimeInterval = 5

    /// Instances whose target is in progress with no event running, for longer than ``agentWaitNotice``.
    static func waitingForAgent(_ targets: [InstanceTarget], now: Date) -> [String] {
        targets.compactMap { target in
            guard target.status == .inProgress, let name = target.targetId else { return nil }
            let events = target.lifecycleEvents ?? []
            if events.contains(where: { $0.status == .inProgress }) { return nil }
            let since = ([target.lastUpdatedAt] + events.map(\.endTime)).compactMap { $0 }.max() ?? now
            return now.timeIntervalSince(since) > agentWaitNotice ? name : nil
        }
    }

    /// What the view says of an instance waiting for its agent.
    static func agentNotice(_ instance: String, _ agent: AgentPresence?, now: Date) -> String {
        guard let agent else { return "waiting for its agent" }
        switch agent.status {
        case .never: return "waiting for its agent: no agent has ever polled for \(instance)"
        case .quiet:
            let age = agent.lastSeen.map { AgentPresence.age(now.timeIntervalSince($0)) } ?? "a while"
            return "waiting for its agent: no agent has polled for \(instance) for \(age)"
        case .online, .running:
            let age = agent.lastSeen.map { " \(AgentPresence.age(now.timeIntervalSince($0))) ago" } ?? ""
            return "waiting for its agent (heard from\(age))"
        }
    }

    /// One line for the deployment, one per instance: its status and the event it is at (or failed in); an instance
    /// whose next event waits for an agent says whether one is there (`agents`).
    static func view(_ info: DeploymentInfo, _ targets: [InstanceTarget], agents: [String: AgentPresence] = [:], now: Date = Date()) -> [String] {
        let waiting = Set(waitingForAgent(targets, now: now))
        let o = info.deploymentOverview
        var lines = [
            "\(info.deploymentId ?? "") \(info.status?.rawValue ?? "")  pending \(o?.pending ?? 0), in progress \(o?.inProgress ?? 0), succeeded \(o?.succeeded ?? 0), failed \(o?.failed ?? 0), skipped \(o?.skipped ?? 0)"
        ]
        let width = max(8, targets.map { ($0.targetId ?? "").count }.max() ?? 0)
        for target in targets {
            let events = target.lifecycleEvents ?? []
            let current =
                events.first { $0.status == .inProgress || $0.status == .failed }
                ?? events.last { $0.status == .succeeded }
            var line =
                "  " + (target.targetId ?? "").padding(toLength: width + 2, withPad: " ", startingAt: 0)
                + (target.status?.rawValue ?? "").padding(toLength: 11, withPad: " ", startingAt: 0)
            if let current {
                line += "\(current.lifecycleEventName ?? "") \(current.status?.rawValue ?? "")"
                if current.status == .failed, let d = current.diagnostics {
                    line += ": \(d.errorCode?.rawValue ?? "") \(d.scriptName ?? "") \(d.message ?? "")"
                } else if current.status == .inProgress, let note = current.diagnostics?.message {
                    // What the agent posted while the event runs (a process holding a hook's output).
                    line += ": \(note)"
                }
            }
            if let name = target.targetId, waiting.contains(name) {
                line += (current == nil ? "" : "; ") + agentNotice(name, agents[name], now: now)
            }
            lines.append(line)
        }
        return lines
    }
}

extension Array {
    fileprivate func chunked(_ size: Int) -> [[Element]] {
        stride(from: 0, to: count, by: size).map { Array(self[$0..<Swift.min($0 + size, count)]) }
    }
}

/// `deployctl wait deployment-successful`: the aws CLI's waiter, without its 30-minute cap.
struct WaitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wait", abstract: "Wait until a condition is met (as `aws deploy wait`).", subcommands: [DeploymentSuccessful.self])

    struct DeploymentSuccessful: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "deployment-successful",
            abstract: "Wait until the deployment succeeds; exit 255 when it fails or is stopped.",
            discussion: "Shows each instance's status and current event, redrawn in place on a terminal and one line per change otherwise.")

        @Option(name: .customLong("deployment-id"), help: ArgumentHelp("The deployment to follow. (required)", valueName: "id"))
        var deploymentId: String?

        @OptionGroup var cliInput: CLIInputOptions

        @Option(name: .customLong("timeout"), help: ArgumentHelp("Give up after this many seconds (default: no limit).", valueName: "seconds"))
        var timeout: Double?

        @OptionGroup var global: GlobalOptions

        func validate() throws {
            if let timeout { try NumberRange.check("--timeout", timeout, NumberRange.waitSeconds) }
        }

        func run() async throws {
            // As `aws deploy wait deployment-successful`: the GetDeployment request, from flags or --cli-input-json/yaml.
            switch cliInput.generateCLISkeleton {
            case .input?: return try StandardStreams.out(GetDeploymentCommand.inputSkeleton)
            case .yamlInput?: return try StandardStreams.out(GetDeploymentCommand.yamlInputSkeleton)
            case .output?: return try StandardStreams.out("{}\n")
            case nil: break
            }
            var request = try cliInput.request()
            if let deploymentId { request = request.merging(.members([("deploymentId", .string(deploymentId))])) }
            guard let id = request["deploymentId"]?.stringValue, !id.isEmpty else {
                throw CLIFailure.usage("the following arguments are required: --deployment-id (or deploymentId in --cli-input-json)")
            }
            try await DeploymentWaiter(global: global, timeout: timeout).wait(for: id)
        }
    }
}
