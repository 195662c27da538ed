import Agent
import ArgumentParser
import ControlPlane
import DeployClient
import DeployModel
import Foundation

/// `deployctl register`: the aws CLI's `deploy register` for deployctl server. Registers the instance, makes its own
/// access key (role `instance`: the command service for that instance and bundle downloads only) and writes the
/// files a host needs, for deployctl's agent or AWS's.
struct RegisterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "register",
        _superCommandName: "deployctl",
        abstract: "Register an on-premises instance and write its agent configuration (as aws deploy register does).",
        discussion: """
            With --state (or DEPLOYCTL_STATE) it registers on that state file, on the server's host; otherwise the server \
            at the endpoint registers for an admin key (the usual AWS credentials chain), from any machine, and the CA \
            written for the agent is --ca-bundle (or AWS_CA_BUNDLE). Either way the instance, its tags and its key are one \
            transaction. Writes into --output-dir: codedeploy.onpremises.yml \
            (iam_user_arn, aws_access_key_id, aws_secret_access_key, region; mode 0600), codedeployagent.yml \
            (:deploy_control_endpoint: and :s3_endpoint_override: set to --endpoint-url, the agent's directories) and \
            deployctl-ca.pem (the server's CA). Copy them to the host and run `deployctl install` there; AWS's \
            codedeploy-agent reads the same two files (trust the CA in the system store for it). \
            --endpoint-url is the address agents reach the server at; use an IP address (https://10.0.0.5:8443): \
            AWS's agent fetches bundles path-style only from an IP-literal endpoint.

            Example:
              deployctl register --instance-name web-1 --tags Key=env,Value=prod --endpoint-url https://10.0.0.5:8443
            """)

    @Option(name: .customLong("instance-name"), help: ArgumentHelp("The instance to register.", valueName: "name"))
    var instanceName: String

    @Option(
        name: .customLong("tags"), parsing: .upToNextOption,
        help: ArgumentHelp("Tags for the instance: Key=string,Value=string …", valueName: "tags"))
    var tags: [String] = []

    @Option(name: .customLong("output-dir"), help: ArgumentHelp("Where to write the files (default: the current directory).", valueName: "dir"))
    var outputDirectory: String = "."

    @Option(
        name: .customLong("tls-dir"),
        help: ArgumentHelp("The server's TLS folder, for its CA (default: tls/ beside the state file).", valueName: "dir"))
    var tlsDirectory: String?

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        guard let endpoint = global.apiEndpoint() else {
            throw CLIFailure.usage(
                "register needs --endpoint-url (or DEPLOYCTL_ENDPOINT_URL, AWS_ENDPOINT_URL): the https://IP:PORT address agents reach deployctl server at"
            )
        }
        guard let url = URL(string: endpoint), url.scheme == "https" || url.scheme == "http", let host = url.host, !host.isEmpty else {
            throw CLIFailure.usage("--endpoint-url '\(endpoint.prefix(200))': expected https://IP:PORT")
        }
        let tagList = try parsedTags()
        // A state file named on purpose (--state, DEPLOYCTL_STATE): register on it, on the server's host. Otherwise the
        // server at the endpoint does it, for an admin key, over its API.
        let (registered, ca) =
            try global.destination(for: .registration) == .stateFile
            ? try registerOnStateFile(tags: tagList, https: url.scheme == "https")
            : try await registerOnServer(endpoint, tags: tagList, https: url.scheme == "https")
        let files = try writeConfiguration(registered, ca: ca, endpoint: endpoint)
        if !host.allSatisfy({ $0.isNumber || $0 == "." || $0 == ":" }) {
            StandardStreams.err(
                "warning: \(host) is a host name: AWS's agent fetches bundles from it virtual-hosted (<bucket>.\(host)), which deployctl server does not serve; use the server's IP address for AWS's agent\n"
            )
        }
        try StandardStreams.out(
            try global.render(
                .members([
                    ("InstanceName", .string(instanceName)), ("IamUserArn", .string(registered.iamUserArn)),
                    ("AccessKeyId", .string(registered.accessKeyId)), ("Files", .array(files.map { .string($0) })),
                ]), operation: "Register"))
    }

    func parsedTags() throws -> [Tag] {
        try tags.map { text in
            let fields: JSONValue
            do {
                fields = try ShorthandParser.parseStructure(text)
            } catch {
                throw CLIFailure.usage("--tags '\(text.prefix(100))': \(error)")
            }
            guard let key = fields["Key"]?.stringValue else {
                throw CLIFailure.usage("--tags '\(text.prefix(100))': expected Key=string,Value=string")
            }
            return Tag(key: key, value: fields["Value"]?.stringValue)
        }
    }

    /// On the server's host: one transaction on its state file; the CA is the server's, from its TLS folder.
    func registerOnStateFile(tags: [Tag], https: Bool) throws -> (RemoteRegistration, ca: String?) {
        let statePath = global.statePath
        let stateDirectory = (statePath as NSString).deletingLastPathComponent
        let caSource = (tlsDirectory ?? ((stateDirectory.isEmpty ? "." : stateDirectory) + "/tls")) + "/ca.pem"
        let ca = try? String(contentsOfFile: caSource, encoding: .utf8)
        if ca == nil, https {
            throw CLIFailure.other("cannot read the server's CA \(caSource): start deployctl server once (it makes it), or give --tls-dir")
        }
        let plane = try global.openControlPlane(for: .registration)
        // One transaction: the instance, its tags and its key, or nothing (a rerun starts afresh).
        let key = try CLIFailure.calling("RegisterOnPremisesInstance") { try plane.registerInstanceWithKey(instanceName: instanceName, tags: tags) }
        let registered = RemoteRegistration(
            accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey ?? "", iamUserArn: plane.instanceUserArn(instanceName),
            region: plane.region)
        return (registered, ca)
    }

    /// From an operator's machine: the server registers (one transaction there) for an admin key; the CA the agent
    /// trusts is the one this command trusts (--ca-bundle, AWS_CA_BUNDLE).
    func registerOnServer(_ endpoint: String, tags: [Tag], https: Bool) async throws -> (RemoteRegistration, ca: String?) {
        var ca: String?
        if let bundle = global.trustedCABundle() {
            guard let text = try? String(contentsOfFile: bundle, encoding: .utf8) else {
                throw CLIFailure.other("cannot read the CA bundle \(bundle) (--ca-bundle or AWS_CA_BUNDLE)")
            }
            ca = text
        }
        let server = RemoteCodeDeploy(client: try global.remoteClient(endpoint))
        let registered: RemoteRegistration
        do {
            registered = try await server.registerInstance(instanceName: instanceName, tags: tags)
        } catch let error as ServiceError {
            let (step, message) = RemoteRegistration.step(of: error.message, default: "RegisterInstance")
            throw CLIFailure.mapping(error, calling: step, message: { _ in message })
        } catch {
            throw CLIFailure.other("deployctl register: \(error)")
        }
        if ca == nil, https {
            StandardStreams.err(
                "deployctl register: no --ca-bundle or AWS_CA_BUNDLE, so no deployctl-ca.pem is written: the agent must trust the server's certificate through the system's store\n"
            )
        }
        return (registered, ca)
    }

    /// Writes the host's files into --output-dir; answers their paths.
    func writeConfiguration(_ registered: RemoteRegistration, ca: String?, endpoint: String) throws -> [String] {
        let directory = outputDirectory
        if mkdir(directory, 0o700) != 0, errno != EEXIST {
            throw CLIFailure.other("cannot create \(directory): \(String(cString: strerror(errno)))")
        }
        let onPremises = """
            ---
            aws_access_key_id: \(registered.accessKeyId)
            aws_secret_access_key: \(registered.secretAccessKey)
            iam_user_arn: \(registered.iamUserArn)
            region: \(registered.region)

            """
        let agentConfig = """
            ---
            :log_aws_wire: false
            :log_dir: '/var/log/aws/codedeploy-agent/'
            :pid_dir: '/opt/codedeploy-agent/state/.pid/'
            :program_name: codedeploy-agent
            :root_dir: '/opt/codedeploy-agent/deployment-root'
            :verbose: false
            :wait_between_runs: 1
            :proxy_uri:
            :max_revisions: 5
            :deploy_control_endpoint: \(endpoint)
            :s3_endpoint_override: \(endpoint)
            :on_premises_config_file: '\(AgentConfiguration.defaultOnPremisesPath)'
            :deployctl_ca_file: '/etc/codedeploy-agent/conf/deployctl-ca.pem'

            """
        var files = [directory + "/codedeploy.onpremises.yml", directory + "/codedeployagent.yml"]
        do {
            try write(onPremises, to: files[0], mode: 0o600)
            try write(agentConfig, to: files[1], mode: 0o644)
            if let ca {
                files.append(directory + "/deployctl-ca.pem")
                try write(ca, to: files[2], mode: 0o644)
            }
        } catch {
            throw CLIFailure.other("cannot write the configuration into \(directory): \(error)")
        }
        return files
    }

    func write(_ text: String, to path: String, mode: mode_t) throws {
        try AtomicFile.write(Data(text.utf8), to: path, mode: mode)
    }
}

/// `deployctl deregister`: the reverse of `register` (the aws CLI's `deploy deregister`).
struct DeregisterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deregister",
        _superCommandName: "deployctl",
        abstract: "Deregister an on-premises instance and delete its access keys (as aws deploy deregister does).")

    @Option(name: .customLong("instance-name"), help: ArgumentHelp("The instance to deregister.", valueName: "name"))
    var instanceName: String

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        if case .server(let endpoint) = try global.destination(for: .registration) {
            let server = RemoteCodeDeploy(client: try global.remoteClient(endpoint))
            do {
                try await server.deregisterInstance(instanceName: instanceName)
            } catch let error as ServiceError {
                let (step, message) = RemoteRegistration.step(of: error.message, default: "DeregisterInstance")
                throw CLIFailure.mapping(error, calling: step, message: { _ in message })
            } catch {
                throw CLIFailure.other("deployctl deregister: \(error)")
            }
            return
        }
        let plane = try global.openControlPlane(for: .registration)
        try CLIFailure.calling("DeregisterOnPremisesInstance") { try plane.deregisterInstanceWithKeys(instanceName: instanceName) }
    }
}
