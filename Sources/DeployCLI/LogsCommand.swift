import Agent
import ArgumentParser
import DeployModel
import Foundation

/// `deployctl logs`: what happened on each instance of a deployment, event by event, and the scripts' whole output
/// where it is on this host.
struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        _superCommandName: "deployctl",
        abstract:
            "Show a deployment's events on each instance, their diagnostics and, where the agent ran on this host, the scripts' whole output (deployctl extension).",
        discussion: """
            For each instance (or --instance-id), each lifecycle event with its status, duration, error code, script and \
            message, and the end of its output as the agent reported it. When the deployment's scripts.log is on this host \
            (an agent on the state file, under --agent-root), all of it follows, or only --event's part. --follow prints \
            events as they end, until the deployment does.
            """)

    @Option(name: .customLong("deployment-id"), help: ArgumentHelp("The deployment. (required)", valueName: "id"))
    var deploymentId: String

    @Option(name: .customLong("instance-id"), help: ArgumentHelp("Only this instance.", valueName: "name"))
    var instanceId: String?

    @Option(name: .customLong("event"), help: ArgumentHelp("Only this lifecycle event (e.g. ValidateService).", valueName: "name"))
    var event: String?

    @Flag(name: .customLong("follow"), help: "Print events as they end, until the deployment ends.")
    var follow = false

    @Option(
        name: .customLong("agent-root"),
        help: ArgumentHelp("Where agents on this host keep deployments (default: as `deployctl agent run`).", valueName: "dir"))
    var agentRoot: String?

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let api = try global.openAPI(readOnly: true)
        var printed = Set<String>()
        var first = true
        while true {
            let info: DeploymentInfo
            let targets: [InstanceTarget]
            do {
                guard let found = try await DeploymentWaiter.load(api, deploymentId, only: instanceId) else { return }
                if let instanceId, !found.targetIds.contains(instanceId) {
                    throw CLIFailure.service(
                        operation: "GetDeploymentTarget", code: "DeploymentTargetDoesNotExistException",
                        message:
                            "The deployment \(deploymentId) has no instance \(instanceId.prefix(100)); its instances: \(found.targetIds.prefix(20).joined(separator: ", "))"
                    )
                }
                (info, targets) = (found.info, found.targets)
            } catch {
                throw CLIFailure.mapping(error, calling: "GetDeployment")
            }
            if first {
                try StandardStreams.out(
                    "\(info.deploymentId ?? "") \(info.status?.rawValue ?? "") (\(info.applicationName ?? "") / \(info.deploymentGroupName ?? ""))"
                        + "\n")
                first = false
            }
            for target in targets {
                let name = target.targetId ?? "?"
                for event in target.lifecycleEvents ?? [] where self.event == nil || event.lifecycleEventName == self.event {
                    guard [.succeeded, .failed, .skipped].contains(event.status) else { continue }
                    let key = name + "/" + (event.lifecycleEventName ?? "")
                    guard printed.insert(key).inserted else { continue }
                    try StandardStreams.out(Self.describe(name, event).joined(separator: "\n") + "\n")
                }
            }
            let ended = [.succeeded, .failed, .stopped].contains(info.status)
            let running = targets.contains { ($0.lifecycleEvents ?? []).contains { $0.status == .inProgress } }
            if !follow || (ended && !running) {
                try await printLocalLogs(info, targets)
                return
            }
            try await Task.sleep(nanoseconds: 500_000_000)
        }
    }

    /// An event in lines: status and duration, then its diagnostics and the end of its output.
    static func describe(_ instance: String, _ event: LifecycleEvent) -> [String] {
        var head = "\(instance)  \(event.lifecycleEventName ?? "")  \(event.status?.rawValue ?? "")"
        if let start = event.startTime, let end = event.endTime { head += String(format: "  %.1f s", end.timeIntervalSince(start)) }
        var lines = [head]
        guard let d = event.diagnostics, event.status == .failed || !(d.logTail ?? "").isEmpty else { return lines }
        if event.status == .failed {
            lines.append("  \(d.errorCode?.rawValue ?? "")\(d.scriptName.map { $0.isEmpty ? "" : " in \($0)" } ?? ""): \(d.message ?? "")")
        }
        for line in (d.logTail ?? "").split(separator: "\n") { lines.append("  | " + line) }
        return lines.map { TerminalText.safe($0) }
    }

    /// The scripts.log of the deployment, when an agent on this host wrote it.
    func printLocalLogs(_ info: DeploymentInfo, _ targets: [InstanceTarget]) async throws {
        guard let application = info.applicationName, let group = info.deploymentGroupName,
            let groupId = try? await global.openAPI(readOnly: true).getDeploymentGroup(
                GetDeploymentGroupInput(applicationName: application, deploymentGroupName: group)
            ).deploymentGroupInfo?.deploymentGroupId
        else { return }
        let root = DeploymentRoot(path: agentRoot ?? DeploymentRoot.defaultPath())
        let path = root.scriptLog(group: groupId, deployment: deploymentId)
        guard FileManager.default.fileExists(atPath: path) else {
            if agentRoot != nil { try StandardStreams.out("(no scripts.log of \(deploymentId) under \(root.path))\n") }
            return
        }
        let text: String
        do {
            text = try ParameterFile.read(path, maxBytes: 64 << 20)
        } catch {
            throw CLIFailure.other("cannot read \(path): \(error.reason)")
        }
        var selected: [Substring] = []
        var inEvent = event == nil
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if let marker = line.range(of: "LifecycleEvent - ") { inEvent = event == nil || line[marker.upperBound...] == event ?? "" }
            if inEvent { selected.append(line) }
        }
        try StandardStreams.out("--- \(path)\(event.map { " (\($0))" } ?? "")" + "\n")
        try StandardStreams.out(selected.map { TerminalText.safe(String($0), keepingTabs: true) }.joined(separator: "\n") + "\n")
    }
}
