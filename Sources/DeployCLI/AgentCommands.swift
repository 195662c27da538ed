import Agent
import AppSpec
import ArgumentParser
import Bundles
import ControlPlane
import DeployModel
import Foundation
import HostCommandModel
import Logging
import ServiceLifecycle

/// `deployctl agent …`: the on-host agent.
struct AgentGroupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent", abstract: "Run the deployment agent of an on-premises instance (deployctl's codedeploy-agent).",
        subcommands: [Run.self])

    struct Run: AsyncParsableCommand {
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

        func run() async throws {
            try global.requireLocal("deployctl agent run")
            let (plane, store) = try global.openLocal()
            do {
                let info = try plane.getOnPremisesInstance(GetOnPremisesInstanceInput(instanceName: instanceName)).instanceInfo
                if info?.deregisterTime != nil {
                    throw ServiceError("InstanceNotRegisteredException", "The instance \(instanceName) is deregistered.")
                }
            } catch let error as ServiceError {
                throw CLIFailure.service(operation: "GetOnPremisesInstance", code: error.code, message: error.message)
            }
            let engine = engineOptions.engine(root: DeploymentRoot(path: agentRoot ?? DeploymentRoot.defaultPath()))
            let adapter = HostCommandAdapter(service: plane, artifacts: global.openArtifacts(), installRoot: installRoot)
            let loop = AgentLoop(engine: engine, controlPlane: adapter, instanceName: instanceName)
            var logger = Logger(label: "deployctl.agent")
            logger[metadataKey: "instance"] = "\(instanceName)"
            let identity = AgentIdentity(holder: UUID().uuidString.lowercased(), hostName: ProcessInfo.processInfo.hostName, pid: getpid())
            let state = store.file
            let agent = AgentService(
                loop: loop, service: plane, identity: identity, pollInterval: .milliseconds(Int64(pollInterval * 1000)), once: once,
                health: { state.replacement().map { "\($0); stopping (restart the agent to use the file now at that path)" } }, logger: logger)
            let group = ServiceGroup(
                configuration: .init(
                    services: [.init(service: agent, successTerminationBehavior: .gracefullyShutdownGroup)],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: Logger(label: "deployctl.agent.lifecycle", factory: { _ in SwiftLogNoOpLogHandler() })))
            do {
                try await group.run()
            } catch let error as ServiceError {
                throw CLIFailure.other("deployctl agent \(instanceName): \(error.message)")
            } catch let error as AgentService.Stopped {
                throw CLIFailure.other("deployctl agent \(instanceName): \(error.description)")
            } catch let error as ServiceGroupError {
                throw CLIFailure.other("deployctl agent \(instanceName): \(error)")
            }
        }
    }
}
