import AlarmProbes
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
        // Read-only first: a state file named by mistake is refused before anything could make it up.
        let api = try global.openAPI(readOnly: true)
        let alarms = try evaluateAlarmsOnStateFile()
        let deliveries = LocalDeliveries(global: global)
        let delivering = deliveries?.start()
        defer { alarms?.cancel() }
        do {
            try await follow(deploymentId, api: api)
        } catch {
            delivering?.cancel()
            await deliveries?.finish()
            throw error
        }
        delivering?.cancel()
        await deliveries?.finish()
    }

    func follow(_ deploymentId: String, api: any CodeDeployAPI) async throws {
        let live = isatty(STDERR_FILENO) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb"
        let colored = global.color == .on || (global.color == .auto && live && ProcessInfo.processInfo.environment["NO_COLOR"] == nil)
        let start = Date()
        var previousLines: [String] = []
        let directory = try? global.openAgentDirectory()
        var presence: [String: AgentPresence] = [:]
        var askedAgents = Date.distantPast
        var drawn = 0
        var following = deploymentId
        var failure: String?
        while true {
            let info: DeploymentInfo
            let targets: [InstanceTarget]
            do {
                guard let found = try await Self.load(api, following) else { return }
                (info, _, targets) = found
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
            // On a terminal, long instance names give way to their status.
            var lines = Self.view(
                info, targets, agents: presence, now: Date(), maxNameWidth: live ? max(12, TerminalSize.current().columns / 3) : nil)
            let running = targets.reduce(0) { $0 + ($1.lifecycleEvents ?? []).filter { $0.status == .inProgress }.count }
            let ended = [.succeeded, .failed, .stopped].contains(info.status)
            if ended, running > 0 {
                // Stopped (or failed) with events still running on their hosts: follow them to their end.
                lines.insert("Stopping: \(running) event\(running == 1 ? "" : "s") still running", at: 1)
            }
            if live {
                let screen = TerminalSize.current()
                let shown = Self.fit(lines, rows: screen.rows, columns: screen.columns).map { TerminalText.safe($0) }
                var out = drawn > 0 ? "\u{1B}[\(drawn)F" : ""
                for line in shown { out += "\u{1B}[2K" + (colored ? Self.colored(line) : line) + "\n" }
                out += "\u{1B}[J"
                StandardStreams.err(out)
                drawn = shown.count
            } else {
                for line in lines.map({ TerminalText.safe($0) }) where !previousLines.contains(line) {
                    StandardStreams.err("\(Timestamp.format(Date())) \(line)\n")
                }
            }
            previousLines = lines.map { TerminalText.safe($0) }
            if info.status == .ready {
                // A blue/green deployment waiting to reroute traffic: nothing moves until someone continues it (AWS's
                // waiter times out here).
                throw CLIFailure.other(
                    "Waiter DeploymentSuccessful stopped: the deployment \(following) is Ready: its replacement instances are installed and wait for traffic. To reroute it now: deployctl continue-deployment --deployment-id \(following) --deployment-wait-type READY_WAIT (or stop-deployment --deployment-id \(following))"
                )
            }
            if ended, running == 0 {
                if info.status == .succeeded, failure == nil { return }
                if failure == nil {
                    var message =
                        "Waiter DeploymentSuccessful failed: Waiter encountered a terminal failure state: For expression \"deploymentInfo.status\" we matched expected path: \"\(info.status?.rawValue ?? "")\""
                    if let error = info.errorInformation { message += " (\(error.code?.rawValue ?? ""): \(TerminalText.safe(error.message ?? "")))" }
                    failure = message
                    var details = Self.failureDetails(info, targets).map { TerminalText.safe($0) }
                    if live { details = details.flatMap { TerminalSize.wrap($0, columns: TerminalSize.current().columns) } }
                    if !details.isEmpty {
                        drawn = 0
                        StandardStreams.err(details.map { $0 + "\n" }.joined())
                    }
                }
                // An automatic rollback started: follow it to its end (the original still failed).
                if let rollback = info.rollbackInfo?.rollbackDeploymentId, rollback != following {
                    StandardStreams.err("rolling back as \(rollback)\n")
                    following = rollback
                    drawn = 0
                    previousLines = []
                    continue
                }
                if following != deploymentId {
                    StandardStreams.err("rollback \(following) \(info.status?.rawValue ?? "")\n")
                }
                throw CLIFailure.other(failure ?? "")
            }
            if let timeout, Date().timeIntervalSince(start) > timeout {
                throw CLIFailure.other(
                    "Waiter DeploymentSuccessful failed: the deployment \(following) did not finish within \(Int(timeout)) s (status \(info.status?.rawValue ?? ""))"
                )
            }
            try await Task.sleep(nanoseconds: UInt64(interval * 1_000_000_000))
        }
    }

    /// On a state file nothing else evaluates Prometheus and HTTP alarms: the process following the deployment does,
    /// every two seconds, while it waits (deployctl server does it itself). Nil with a server, or a read-only file.
    func evaluateAlarmsOnStateFile() throws -> Task<Void, Never>? {
        guard case .stateFile = try global.destination(for: .api), let plane = try? global.openStore() else { return nil }
        let evaluator = AlarmEvaluator(plane: plane, interval: .seconds(2))
        return Task { await evaluator.run() }
    }

    /// A deployment, the ids of its targets and those targets (`only`: just that one), in batches of 25; nil when
    /// the deployment has no info.
    static func load(_ api: any CodeDeployAPI, _ deploymentId: String, only: String? = nil) async throws -> (
        info: DeploymentInfo, targetIds: [String], targets: [InstanceTarget]
    )? {
        guard let info = try await api.getDeployment(GetDeploymentInput(deploymentId: deploymentId)).deploymentInfo else { return nil }
        let ids = try await api.listDeploymentTargets(ListDeploymentTargetsInput(deploymentId: deploymentId)).targetIds ?? []
        var targets: [InstanceTarget] = []
        for chunk in ids.filter({ only == nil || $0 == only }).chunked(25) {
            targets +=
                try await api.batchGetDeploymentTargets(BatchGetDeploymentTargetsInput(deploymentId: deploymentId, targetIds: chunk))
                .deploymentTargets?.compactMap(\.instanceTarget) ?? []
        }
        return (info, ids, targets)
    }

    /// At most `rows - 1` lines of at most `columns - 1` characters, so nothing wraps and the cursor can go back over
    /// every drawn line: the deployment line first, then the instances that matter most (failed, running, then the
    /// rest), and a count of those left out.
    static func fit(_ lines: [String], rows: Int, columns: Int) -> [String] {
        let width = max(20, columns - 1)
        func cut(_ line: String) -> String {
            line.count <= width ? line : String(line.prefix(width - 1)) + "…"
        }
        let room = max(2, rows - 1)
        guard lines.count > room else { return lines.map(cut) }
        let header = lines.prefix { !$0.hasPrefix("  ") }
        let instances = lines.dropFirst(header.count)
        func rank(_ line: String) -> Int {
            if line.contains("Failed") { return 0 }
            if line.contains("InProgress") { return 1 }
            return 2
        }
        let keep = max(0, room - header.count - 1)
        let chosen = instances.enumerated().sorted { (rank($0.element), $0.offset) < (rank($1.element), $1.offset) }.prefix(keep)
            .sorted { $0.offset < $1.offset }.map(\.element)
        return (Array(header) + chosen + ["  … and \(instances.count - chosen.count) more instances"]).map(cut)
    }

    /// For each failed instance: its failed event, error code, script, message and the end of the script's output.
    static func failureDetails(_ info: DeploymentInfo, _ targets: [InstanceTarget]) -> [String] {
        var lines: [String] = []
        for target in targets where target.status == .failed {
            guard let event = target.lifecycleEvents?.first(where: { $0.status == .failed }), let d = event.diagnostics else { continue }
            let name = target.targetId ?? "?"
            lines.append(
                "\(name): \(event.lifecycleEventName ?? "") failed: \(d.errorCode?.rawValue ?? "")\(d.scriptName.map { $0.isEmpty ? "" : " in \($0)" } ?? "")"
            )
            if let message = d.message, !message.isEmpty { lines.append("  " + message) }
            let tail = (d.logTail ?? "").split(separator: "\n", omittingEmptySubsequences: false).suffix(10)
            if tail.contains(where: { !$0.isEmpty }) {
                lines.append("  last lines of its output:")
                lines += tail.filter { !$0.isEmpty }.map { "    " + $0 }
            }
            lines.append("  all of it: deployctl logs --deployment-id \(info.deploymentId ?? "") --instance-id \(name)")
        }
        return lines
    }

    /// Status words in color (a terminal only).
    static func colored(_ line: String) -> String {
        var out = line
        for (word, code) in [("Succeeded", "32"), ("Failed", "31"), ("InProgress", "33"), ("Stopped", "35"), ("Ready", "36")] {
            out = out.replacingOccurrences(of: word, with: "\u{1B}[\(code)m\(word)\u{1B}[0m")
        }
        return out
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
    static func view(
        _ info: DeploymentInfo, _ targets: [InstanceTarget], agents: [String: AgentPresence] = [:], now: Date = Date(), maxNameWidth: Int? = nil
    ) -> [String] {
        let waiting = Set(waitingForAgent(targets, now: now))
        let o = info.deploymentOverview
        var lines = [
            "\(info.deploymentId ?? "") \(info.status?.rawValue ?? "")  pending \(o?.pending ?? 0), in progress \(o?.inProgress ?? 0), succeeded \(o?.succeeded ?? 0), failed \(o?.failed ?? 0), skipped \(o?.skipped ?? 0)"
        ]
        let width = min(max(8, targets.map { ($0.targetId ?? "").count }.max() ?? 0), maxNameWidth ?? .max)
        for target in targets {
            let events = target.lifecycleEvents ?? []
            let current =
                events.first { $0.status == .inProgress || $0.status == .failed }
                ?? events.last { $0.status == .succeeded }
            var name = target.targetId ?? ""
            if name.count > width { name = String(name.prefix(width - 1)) + "…" }
            var line =
                "  " + name.padded(to: width + 2)
                + (target.status?.rawValue ?? "").padded(to: 11)
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
        commandName: "wait", _superCommandName: "deployctl", abstract: "Wait until a condition is met (as `aws deploy wait`).",
        subcommands: [DeploymentSuccessful.self])

    struct DeploymentSuccessful: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "deployment-successful",
            _superCommandName: "deployctl wait",
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

/// The terminal's size (rows, columns), 24 x 80 when it cannot be read.
enum TerminalSize {
    static func current() -> (rows: Int, columns: Int) {
        var size = winsize()
        if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0, size.ws_row > 0 {
            return (Int(size.ws_row), Int(size.ws_col))
        }
        return (24, 80)
    }

    /// `line` in lines of at most `columns - 1` characters, broken at spaces where it can be; the lines after the
    /// first keep the first one's indentation plus two spaces.
    static func wrap(_ line: String, columns: Int) -> [String] {
        let width = max(20, columns - 1)
        guard line.count > width else { return [line] }
        let indent = String(repeating: " ", count: min(line.prefix { $0 == " " }.count + 2, width / 2))
        var lines: [String] = []
        var rest = Substring(line)
        var first = true
        while !rest.isEmpty {
            let room = first ? width : width - indent.count
            if rest.count <= room {
                lines.append((first ? "" : indent) + rest)
                break
            }
            let window = rest.prefix(room + 1)
            let cut = window.lastIndex(of: " ").flatMap { $0 > rest.startIndex ? $0 : nil } ?? rest.index(rest.startIndex, offsetBy: room)
            lines.append((first ? "" : indent) + rest[..<cut])
            rest = rest[cut...].drop { $0 == " " }
            first = false
        }
        return lines
    }
}
