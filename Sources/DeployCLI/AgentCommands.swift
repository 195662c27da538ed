import Agent
import AppSpec
import ArgumentParser
import Bundles
import ControlPlane
import DeployClient
import DeployModel
import Foundation
import HostCommandModel
import Logging
import ServiceLifecycle
import TrafficControl

/// `deployctl agent …`: the on-host agent.
struct AgentGroupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent", _superCommandName: "deployctl",
        abstract: "Run the deployment agent of an on-premises instance (deployctl's codedeploy-agent).",
        subcommands: [Run.self, List.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            _superCommandName: "deployctl agent",
            abstract: "Show each registered instance's agent: when it was last heard from, from where, and what it runs (deployctl extension).",
            discussion: """
                Status is Running (it acknowledged an event, named in lifecycleEventName), Online (heard from in the last 90 s), \
                Quiet (heard from before that: its agent stopped or cannot reach the control plane) or Never. A remote agent \
                is heard from on every call to deployctl server (lastSeen, its address and User-Agent); an agent on the state \
                file when it renews its lease (every 10 s; address "local"). Against a server (--endpoint-url) any key but an \
                instance's may ask.
                """)

        @Option(
            name: .customLong("instance-names"), parsing: .upToNextOption,
            help: ArgumentHelp("Only these instances (each must be registered).", valueName: "name"))
        var instanceNames: [String] = []

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let directory = try global.openAgentDirectory()
            let agents = try await CLIFailure.calling("ListAgents") {
                try await directory.listAgents(instanceNames: instanceNames.isEmpty ? nil : instanceNames)
            }
            let output = try JSONValueEncoder(dateEncoding: .display).encode(ListAgentsOutput(agents: agents))
            try StandardStreams.out(try global.render(output, operation: "ListAgents"))
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            _superCommandName: "deployctl agent",
            abstract: "Poll the control plane for this instance's lifecycle events and run them.",
            discussion: """
                Polls for host commands of --instance-name, acknowledges each, runs it with the same engine as `deployctl local`, and \
                reports its status and diagnostics. --once processes what is pending and exits (for cron, tests and CI). SIGTERM or \
                SIGINT lets the current event finish (bounded by its scripts' timeouts) and then exits. An event a killed agent was \
                running is reported failed when the agent starts again, not run a second time.
                """)

        @Option(
            name: .customLong("instance-name"),
            help: ArgumentHelp(
                "The registered on-premises instance this agent deploys to (with --config: taken from its iam_user_arn).", valueName: "name"))
        var instanceName: String?

        @Option(
            name: .customLong("config"),
            help: ArgumentHelp(
                "Run against deployctl server with AWS's agent configuration (codedeployagent.yml and the codedeploy.onpremises.yml it names) instead of a state file.",
                valueName: "file"))
        var config: String?

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

        @OptionGroup(title: "Traffic control (on a state file)") var traffic: TrafficOptions

        @Flag(name: .customLong("once"), help: "Process what is pending now, then exit.")
        var once = false

        @Option(
            name: .customLong("log-format"),
            help: ArgumentHelp(
                "How the agent logs on stderr: text (default) or json (one object per line, for journald and log shippers).", valueName: "text|json"))
        var logFormat: AgentLogFormat = .text

        @Option(
            name: .customLong("log-level"),
            help: ArgumentHelp(
                "The least severe messages logged: trace, debug, info (default), notice, warning, error or critical.", valueName: "level"))
        var logLevel: String = "info"

        @OptionGroup var global: GlobalOptions

        func validate() throws {
            try NumberRange.check("--poll-interval", pollInterval, 0.1...3600)
            if config == nil, instanceName == nil { throw ValidationError("Missing expected argument '--instance-name <name>' (or give --config)") }
        }

        func run() async throws {
            if let config {
                guard traffic.loadBalancers.isEmpty else {
                    throw CLIFailure.usage(
                        "--load-balancer is for agents on a state file; with --config, deployctl server drives the balancers (give it --load-balancer)"
                    )
                }
                try await runRemote(configPath: config)
                return
            }
            _ = try global.destination(for: .stateFileOnly(command: "deployctl agent run"))
            if global.namesDatabase {
                throw CLIFailure.usage(
                    "deployctl agent run works on a state file or through a server (--config); with a database, run deployctl server --database and point the agent at it"
                )
            }
            let instanceName = self.instanceName ?? ""
            let (plane, store) = try global.openLocal()
            try CLIFailure.calling("GetOnPremisesInstance") {
                let info = try plane.getOnPremisesInstance(GetOnPremisesInstanceInput(instanceName: instanceName)).instanceInfo
                if info?.deregisterTime != nil {
                    throw ServiceError("InstanceNotRegisteredException", "The instance \(instanceName) is deregistered.")
                }
            }
            let engine = engineOptions.engine(root: DeploymentRoot(path: agentRoot ?? DeploymentRoot.defaultPath()))
            let adapter = HostCommandAdapter(service: plane, artifacts: global.openArtifacts(), installRoot: installRoot)
            let logger = try makeLogger(instance: instanceName)
            let loop = AgentLoop(engine: engine, controlPlane: adapter, instanceName: instanceName, logger: logger)
            let identity = AgentIdentity(holder: UUID().uuidString.lowercased(), hostName: ProcessInfo.processInfo.hostName, pid: getpid())
            let state = store.file
            var agent = AgentService(
                loop: loop, service: plane, identity: identity, pollInterval: .milliseconds(Int64(pollInterval * 1000)), once: once,
                health: { state.replacement().map { "\($0); stopping (restart the agent to use the file now at that path)" } }, logger: logger,
                startDetails: ["control_plane": .string("state file \(state.path)"), "install_root": .string(installRoot ?? "/")])
            // On a state file this process is the one that advances the instance's deployment: it drives the
            // balancer for the instance's traffic steps (without --load-balancer they fail, saying so).
            let driver = TrafficDriver(plane: plane, balancers: try traffic.balancers())
            agent.betweenPolls = { try await driver.runOutstanding(instanceName: instanceName) }
            // And it delivers trigger notifications (LocalDeliveries), beside its polls so a slow receiver never holds them.
            let deliveries = LocalDeliveries(plane: plane)
            let delivering = deliveries.start()
            do {
                try await Self.serve(agent, instance: instanceName)
            } catch {
                delivering.cancel()
                await deliveries.finish()
                throw error
            }
            delivering.cancel()
            await deliveries.finish()
        }

        /// The agent's logger on stderr, in `--log-format` at `--log-level`, every line naming the instance.
        func makeLogger(instance: String) throws -> Logger {
            guard let level = Logger.Level(rawValue: logLevel) else {
                throw CLIFailure.usage("--log-level \(logLevel.prefix(20)): expected trace, debug, info, notice, warning, error or critical")
            }
            let format = logFormat
            var logger = Logger(label: "deployctl.agent") { label in
                switch format {
                case .text: StreamLogHandler.standardError(label: label)
                case .json: JSONLogHandler(label: label)
                }
            }
            logger.logLevel = level
            logger[metadataKey: "instance"] = "\(instance)"
            return logger
        }

        /// Runs the agent until SIGTERM/SIGINT (or `--once`), its failures as one CLI line.
        static func serve(_ agent: AgentService, instance: String) async throws {
            let group = ServiceGroup(
                configuration: .init(
                    services: [.init(service: agent, successTerminationBehavior: .gracefullyShutdownGroup)],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: Logger(label: "deployctl.agent.lifecycle", factory: { _ in SwiftLogNoOpLogHandler() })))
            do {
                try await group.run()
            } catch let error as ServiceError {
                throw CLIFailure.other("deployctl agent \(instance): \(error.message)")
            } catch let error as AgentService.Stopped {
                throw CLIFailure.other("deployctl agent \(instance): \(error.description)")
            } catch let error as ServiceGroupError {
                throw CLIFailure.other("deployctl agent \(instance): \(error)")
            }
        }

        /// The agent of a host set up with `deployctl register` / `install`: AWS's command protocol over HTTPS.
        func runRemote(configPath: String) async throws {
            let configuration: AgentConfiguration
            let identity: OnPremisesConfiguration
            do {
                configuration = try AgentConfiguration.load(path: configPath)
                identity = try OnPremisesConfiguration.load(path: configuration.onPremisesConfigFile)
            } catch {
                throw CLIFailure.usage(error.description)
            }
            guard let endpoint = configuration.deployControlEndpoint else {
                throw CLIFailure.usage("\(configPath): :deploy_control_endpoint: is required (the https://IP:PORT of deployctl server)")
            }
            let instance = instanceName ?? identity.instanceName
            let environment = ProcessInfo.processInfo.environment
            let caBundle = global.caBundle ?? configuration.caFile ?? environment["AWS_CA_BUNDLE"] ?? environment["SSL_CERT_FILE"]
            let credentials = AWSCredentials(
                accessKeyId: identity.accessKeyId, secretAccessKey: identity.secretAccessKey, sessionToken: identity.sessionToken,
                source: configuration.onPremisesConfigFile)
            let commands: SignedClient
            let bundles: SignedClient
            do {
                commands = try SignedClient(
                    endpoint: RemoteEndpoint(
                        url: try RemoteEndpoint.parseURL(endpoint), region: identity.region, credentials: credentials, caBundle: caBundle,
                        verifyTLS: !global.noVerifySSL))
                bundles = try SignedClient(
                    endpoint: RemoteEndpoint(
                        url: try RemoteEndpoint.parseURL(configuration.s3EndpointOverride ?? endpoint), region: identity.region,
                        credentials: credentials, caBundle: caBundle, verifyTLS: !global.noVerifySSL))
            } catch let error as RemoteError {
                throw CLIFailure.usage(error.description)
            }
            let root = agentRoot ?? configuration.rootDirectory ?? DeploymentRoot.defaultPath()
            let engine = engineOptions.engine(root: DeploymentRoot(path: root))
            // Stopping, a result the server cannot take waits on disk for the next start rather than holding the stop.
            let service = RemoteHostCommands(
                client: commands, hostIdentifier: identity.hostIdentifier, stopping: { Task.isShuttingDownGracefully })
            let adapter = HostCommandAdapter(
                service: service, artifacts: nil, fetcher: RemoteBundles(client: bundles, directory: root + "/downloads"), installRoot: installRoot)
            let logger = try makeLogger(instance: instance)
            let loop = AgentLoop(engine: engine, controlPlane: adapter, instanceName: instance, logger: logger)
            // The server holds polls until there is work: no need to wait between them.
            let agent = AgentService(
                loop: loop, service: service,
                identity: AgentIdentity(holder: UUID().uuidString.lowercased(), hostName: ProcessInfo.processInfo.hostName, pid: getpid()),
                pollInterval: .milliseconds(Int64(min(pollInterval, 0.2) * 1000)), once: once, logger: logger,
                startDetails: ["control_plane": .string(endpoint), "install_root": .string(installRoot ?? "/")])
            try await Self.serve(agent, instance: instance)
        }
    }
}
