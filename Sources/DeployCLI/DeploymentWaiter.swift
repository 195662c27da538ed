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
        let api = try global.openAPI()
        let live = isatty(STDERR_FILENO) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb"
        let start = Date()
        var previousLines: [String] = []
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
            let lines = Self.view(info, targets).map { TerminalText.safe($0) }
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

    /// One line for the deployment, one per instance: its status and the event it is at (or failed in).
    static func view(_ info: DeploymentInfo, _ targets: [InstanceTarget]) -> [String] {
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
        var deploymentId: String

        @Option(name: .customLong("timeout"), help: ArgumentHelp("Give up after this many seconds (default: no limit).", valueName: "seconds"))
        var timeout: Double?

        @OptionGroup var global: GlobalOptions

        func validate() throws {
            if let timeout { try NumberRange.check("--timeout", timeout, NumberRange.waitSeconds) }
        }

        func run() async throws {
            try await DeploymentWaiter(global: global, timeout: timeout).wait(for: deploymentId)
        }
    }
}
