import Agent
import AppSpec
import ArgumentParser
import Bundles
import ControlPlane
import DeployModel
import Foundation

/// The agent's view of a control plane in a local state file (the seam a remote one will fill later).
struct LocalAgentControlPlane: AgentControlPlane {
    let plane: ControlPlane
    let installRoot: String?

    func poll(instanceName: String) throws -> AgentCommand? {
        guard let command = try plane.pollHostCommand(instanceName: instanceName) else { return nil }
        var environment = ["DEPLOYCTL_INSTANCE_NAME": instanceName]
        if let s3 = command.revision.s3Location {
            environment["BUNDLE_BUCKET"] = s3.bucket
            environment["BUNDLE_KEY"] = s3.key
            environment["BUNDLE_VERSION"] = s3.version
            environment["BUNDLE_ETAG"] = s3.eTag
        }
        if let commit = command.revision.gitHubLocation?.commitId { environment["BUNDLE_COMMIT"] = commit }
        let type = command.revision.s3Location?.bundleType.flatMap { ArchiveFormat(rawValue: $0.rawValue) }
        let spec = DeploymentSpec(
            deploymentId: command.deploymentId, applicationName: command.applicationName, deploymentGroupName: command.deploymentGroupName,
            deploymentGroupId: command.deploymentGroupId, bundle: .archive(path: command.bundlePath ?? "/nonexistent", type: type),
            fileExistsBehavior: command.fileExistsBehavior.flatMap { FileExistsBehavior(rawValue: $0) },
            ignoreApplicationStopFailures: command.ignoreApplicationStopFailures, installRoot: installRoot,
            revisionEnvironment: environment.compactMapValues { $0 })
        return AgentCommand(id: command.id, event: command.lifecycleEvent, spec: spec, bundleProblem: command.bundleProblem)
    }

    func acknowledge(_ id: String, expectedSeconds: Int) throws {
        try plane.acknowledgeHostCommand(id: id, expectedSeconds: expectedSeconds)
    }

    func complete(_ id: String, result: EventResult) throws {
        let status: LifecycleEventStatus =
            switch result.status {
            case .failed: .failed
            case .skipped: .skipped
            default: .succeeded
            }
        let d = result.diagnostics
        let code = d.map { $0.code.apiCode.rawValue }
        let message = d.map { result.ignoredFailure ? "Ignored (ignoreApplicationStopFailures): \($0.message)" : $0.message }
        try plane.completeHostCommand(
            id: id,
            report: HostCommandReport(
                status: status, errorCode: result.ignoredFailure ? "Success" : code, scriptName: d?.scriptName, message: message,
                logTail: d?.logTail))
    }
}

/// `deployctl agent …`: the on-host agent.
struct AgentGroupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent", abstract: "Run the deployment agent of an on-premises instance (deployctl's codedeploy-agent).",
        subcommands: [Run.self])

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Poll the control plane for this instance's lifecycle events and run them.",
            discussion: """
                Polls for host commands of --instance-name, acknowledges each, runs it with the same engine as `deployctl local`, and \
                reports its status and diagnostics. --once processes what is pending and exits (for cron, tests and CI). SIGTERM or \
                SIGINT lets the current event finish (bounded by its scripts' timeouts) and then exits. An event a killed agent was \
                running is reported failed when the agent starts again, not run a second time.
                """)

        @Option(
            name: .customLong("instance-name"), help: ArgumentHelp("The registered on-premises instance this agent deploys to.", valueName: "name"))
        var instanceName: String

        @Option(
            name: .customLong("agent-root"),
            help: ArgumentHelp("The deployment root (default /opt/deployctl/deployment-root for root).", valueName: "dir"))
        var agentRoot: String?

        @Option(
            name: .customLong("install-root"),
            help: ArgumentHelp("Place every destination under this directory (several simulated instances on one host).", valueName: "dir"))
        var installRoot: String?

        @Option(name: .customLong("poll-interval"), help: ArgumentHelp("Seconds between polls when idle (default 2).", valueName: "seconds"))
        var pollInterval: Double = 2

        @OptionGroup var engineOptions: EngineOptions

        @Flag(name: .customLong("once"), help: "Process what is pending now, then exit.")
        var once = false

        @OptionGroup var global: GlobalOptions

        func validate() throws {
            try NumberRange.check("--poll-interval", pollInterval, 0.1...3600)
        }

        func run() throws {
            let plane = try global.openControlPlane()
            do {
                let info = try plane.getOnPremisesInstance(GetOnPremisesInstanceInput(instanceName: instanceName)).instanceInfo
                if info?.deregisterTime != nil {
                    throw ServiceError("InstanceNotRegisteredException", "The instance \(instanceName) is deregistered.")
                }
            } catch let error as ServiceError {
                throw CLIFailure.service(operation: "GetOnPremisesInstance", code: error.code, message: error.message)
            }
            let engine = engineOptions.engine(root: DeploymentRoot(path: agentRoot ?? DeploymentRoot.defaultPath()))
            let loop = AgentLoop(
                engine: engine, controlPlane: LocalAgentControlPlane(plane: plane, installRoot: installRoot), instanceName: instanceName)
            // One agent per instance: before anything else, so a second one never reports the first one's events.
            let identity = AgentIdentity()
            do {
                try plane.acquireAgentLease(instanceName: instanceName, agent: identity)
            } catch let error as ServiceError {
                throw CLIFailure.other("deployctl agent \(instanceName): \(error.message)")
            }
            defer { try? plane.releaseAgentLease(instanceName: instanceName, agent: identity) }
            var renewed = Date()
            AgentLoop.handleStopSignals()
            let recovered = loop.recoverInterrupted()
            if recovered > 0 { log("reported \(recovered) interrupted event(s) as failed") }
            while !AgentLoop.stopRequested {
                if let problem = plane.state.replacement() {
                    throw CLIFailure.other(
                        "deployctl agent \(instanceName): \(problem); stopping (restart the agent to use the file now at that path)")
                }
                if Date().timeIntervalSince(renewed) > ControlPlane.agentLeaseSeconds / 3 {
                    do {
                        try plane.acquireAgentLease(instanceName: instanceName, agent: identity)
                        renewed = Date()
                    } catch let error as ServiceError {
                        throw CLIFailure.other("deployctl agent \(instanceName): \(error.message)")
                    } catch {
                        log("cannot renew the agent lease: \(error)")
                    }
                }
                do {
                    let ran = try loop.runPending()
                    if ran > 0 { log("ran \(ran) lifecycle event(s)") }
                } catch let error as ServiceError {
                    log("control plane refused: \(error.code): \(error.message)")
                } catch {
                    log("error: \(error)")
                }
                if once { break }
                var waited = 0.0
                while waited < pollInterval, !AgentLoop.stopRequested {
                    usleep(100_000)
                    waited += 0.1
                }
            }
        }

        func log(_ message: String) {
            StandardStreams.err("\(Timestamp.format(Date())) deployctl agent \(instanceName): \(message)\n")
        }
    }
}
