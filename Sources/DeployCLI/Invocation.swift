import ArgumentParser
import ArtifactStore
import ControlPlane
import DeployClient
import DeployModel
import DeployStore
import DeployStorePostgres
import DeployStoreSQLite
import Foundation
import JMESPath

/// Output formats of `--output`.
public enum OutputFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case json, text, table
}

/// `--color`: whether the live view may use color.
public enum ColorChoice: String, ExpressibleByArgument, CaseIterable, Sendable {
    case on, off, auto
}

/// Flags every subcommand shares.
public struct GlobalOptions: ParsableArguments {
    @Option(
        name: .customLong("state"),
        help: ArgumentHelp(
            "The SQLite state file (default: $DEPLOYCTL_STATE, else $XDG_STATE_HOME/deployctl/state.db, ~/.local/state/deployctl/state.db, or /var/lib/deployctl/state.db for root).",
            valueName: "path"))
    var state: String?

    @Option(
        name: .customLong("database"),
        help: ArgumentHelp(
            "A PostgreSQL database instead of the state file, for several servers: postgres://USER@HOST:PORT/DATABASE?sslmode=... (default: $DEPLOYCTL_DATABASE_URL). The password comes from PGPASSWORD or ~/.pgpass, never from this flag.",
            valueName: "url"))
    var database: String?

    @Option(
        name: .customLong("output"),
        help: ArgumentHelp(
            "The output format: json (default: $DEPLOYCTL_OUTPUT, else $AWS_DEFAULT_OUTPUT, else json), text or table.", valueName: "format"))
    var outputOption: OutputFormat?

    /// The first of $DEPLOYCTL_OUTPUT and $AWS_DEFAULT_OUTPUT that is set: its name and value.
    static func outputFromEnvironment() -> (name: String, value: String)? {
        let environment = ProcessInfo.processInfo.environment
        for name in ["DEPLOYCTL_OUTPUT", "AWS_DEFAULT_OUTPUT"] {
            if let value = environment[name], !value.isEmpty { return (name, value) }
        }
        return nil
    }

    /// The format asked for by --output or the environment (checked in `validate()`), nil when none was (commands
    /// whose default is text).
    var explicitOutput: OutputFormat? {
        outputOption ?? Self.outputFromEnvironment().flatMap { OutputFormat(rawValue: $0.value) }
    }

    /// --output, else $DEPLOYCTL_OUTPUT, else $AWS_DEFAULT_OUTPUT, else json.
    var output: OutputFormat { explicitOutput ?? .json }

    @Option(
        name: .customLong("query"),
        help: ArgumentHelp(
            "A JMESPath query applied to the output before --output formats it, as the aws CLI does (e.g. --query deploymentId --output text).",
            valueName: "expression"))
    var query: String?

    @Option(
        name: .customLong("region"),
        help: ArgumentHelp(
            "Locally: the region written into ARNs (default: $DEPLOYCTL_REGION, else 'local'). With --endpoint-url: the region requests are signed for (default: $AWS_REGION, the profile's, else us-east-1).",
            valueName: "name")
    )
    var region: String?

    @Flag(name: .customLong("no-paginate"), help: "Print only the first page of a list instead of following nextToken.")
    var noPaginate = false

    @Option(
        name: .customLong("endpoint-url"),
        help: ArgumentHelp(
            "Talk to a deployctl server (or AWS) instead of the state file (default: $DEPLOYCTL_ENDPOINT_URL, $AWS_ENDPOINT_URL_CODEDEPLOY, $AWS_ENDPOINT_URL). Credentials come from the AWS chain.",
            valueName: "url"))
    var endpointURL: String?

    @Option(
        name: .customLong("profile"), help: ArgumentHelp("The AWS profile for --endpoint-url credentials (default: $AWS_PROFILE).", valueName: "name")
    )
    var profile: String?

    @Option(
        name: .customLong("ca-bundle"),
        help: ArgumentHelp("The CA certificates (PEM) that sign the server's certificate (default: $AWS_CA_BUNDLE).", valueName: "file"))
    var caBundle: String?

    @Flag(
        name: .customLong("no-verify-ssl"),
        help: "Do not check the server's certificate (tests only: anyone in the path can read the keys' requests).")
    var noVerifySSL = false

    @Flag(name: .customLong("debug"), help: "Say on stderr what each call sent where, and how long it took.")
    var debug = false

    @Option(
        name: .customLong("color"),
        help: ArgumentHelp("Color in the --wait view: on, off, or auto (default: on a terminal only).", valueName: "on|off|auto"))
    var color: ColorChoice = .auto

    @Flag(name: .customLong("no-cli-pager"), help: "Accepted for the aws CLI's sake: deployctl never pages its output.")
    var noCLIPager = false

    public init() {}

    var statePath: String { StateLocation.resolve(explicit: state, environment: ProcessInfo.processInfo.environment) }

    /// The endpoint of the API: --endpoint-url, then the environment; nil means the local state file.
    func apiEndpoint(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        let candidates = [
            endpointURL, environment["DEPLOYCTL_ENDPOINT_URL"], environment["AWS_ENDPOINT_URL_CODEDEPLOY"], environment["AWS_ENDPOINT_URL"],
        ]
        return candidates.compactMap { $0 }.first { !$0.isEmpty }
    }

    /// The endpoint of the S3 API `push` uploads to: the same server unless S3 is pointed elsewhere.
    func s3Endpoint(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        let candidates = [endpointURL, environment["DEPLOYCTL_ENDPOINT_URL"], environment["AWS_ENDPOINT_URL_S3"], apiEndpoint(environment)]
        return candidates.compactMap { $0 }.first { !$0.isEmpty }
    }

    /// A signed client for `endpoint`, with the chain's credentials and the trust settings.
    func remoteClient(_ endpoint: String) throws -> SignedClient {
        let environment = ProcessInfo.processInfo.environment
        let chain = CredentialChain(environment: environment, profile: profile)
        do {
            let url = try RemoteEndpoint.parseURL(endpoint)
            let credentials = try chain.credentials()
            let bundle = trustedCABundle(chain)
            return try SignedClient(
                endpoint: RemoteEndpoint(
                    url: url, region: region ?? chain.region(), credentials: credentials, caBundle: bundle, verifyTLS: !noVerifySSL))
        } catch let error as CredentialsError {
            throw CLIFailure.other(error.description)
        } catch let error as RemoteError {
            throw CLIFailure.usage(error.description)
        }
    }

    /// The compiled `--query`, if any; a bad expression is a usage error (exit 252), found before anything runs.
    func compiledQuery() throws -> JMESPathExpression? {
        guard let query else { return nil }
        do {
            return try JMESPathExpression(query)
        } catch {
            throw CLIFailure.usage("Bad value for --query \(query): \(error)")
        }
    }

    public func validate() throws {
        if outputOption == nil, let (name, value) = Self.outputFromEnvironment(), OutputFormat(rawValue: value) == nil {
            throw ValidationError("Bad value for $\(name): '\(value.prefix(40))' (expected json, text or table)")
        }
        do {
            _ = try compiledQuery()
        } catch let failure as CLIFailure {
            throw ValidationError(failure.message)
        }
    }

    /// The command's output as the user asked for it: `--query` applied, then `--output`.
    func render(_ value: JSONValue, operation: String) throws -> String {
        guard let expression = try compiledQuery() else { return OutputFormatter.format(value, as: output, operation: operation) }
        let result: JSONValue
        do {
            result = try expression.search(value)
        } catch {
            throw CLIFailure.other("--query \(expression.text) cannot be applied to the output of \(operation): \(error)")
        }
        return OutputFormatter.format(result, as: output, operation: operation)
    }

    /// What a command is about to open.
    enum Purpose: Equatable {
        /// The CodeDeploy API (and deployctl's own operations, such as the agents' presence).
        case api
        /// Where `push` stores bundles.
        case uploads
        /// `register` and `deregister`: a state file named on purpose is used on the server's host; otherwise the
        /// server at the endpoint registers, for an admin key.
        case registration
        /// A command that works on this host's state file only (access keys, a local agent): an explicit
        /// `--endpoint-url` is refused rather than ignored.
        case stateFileOnly(command: String)
    }

    /// Where a command's work goes.
    enum Destination: Equatable {
        case server(endpoint: String)
        case stateFile
    }

    /// The one place that decides whether a command talks to a server or opens the state file of this host.
    func destination(for purpose: Purpose, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Destination {
        switch purpose {
        case .api:
            return apiEndpoint(environment).map { .server(endpoint: $0) } ?? .stateFile
        case .uploads:
            return s3Endpoint(environment).map { .server(endpoint: $0) } ?? .stateFile
        case .registration:
            if namesStateFile { return .stateFile }
            return apiEndpoint(environment).map { .server(endpoint: $0) } ?? .stateFile
        case .stateFileOnly(let command):
            if endpointURL != nil {
                throw CLIFailure.usage(
                    "\(command) works on the state file of this host; --endpoint-url is not accepted (run it where the server's state file is).")
            }
            return .stateFile
        }
    }

    /// Everything a command asks of the API's destination: CodeDeploy's operations and deployctl's own (the agents'
    /// presence, the event stream, alarms). A server's client and the control plane over the state file both serve it.
    typealias DeployService = CodeDeployAPI & AgentDirectory & EventStreamSource & AlarmRegistry & TopicRegistry

    /// The API's destination: a server, or the control plane over the state file (`readOnly`: a command that only
    /// reads never makes up a state file it was told to use).
    func openService(readOnly: Bool = false) throws -> any DeployService {
        switch try destination(for: .api) {
        case .server(let endpoint): return RemoteCodeDeploy(client: try remoteClient(endpoint))
        case .stateFile: return try openStore(readOnly: readOnly)
        }
    }

    /// The control plane over the named database, else over this host's state file.
    func openStore(readOnly: Bool = false) throws -> ControlPlane {
        if let url = try databaseURL() {
            let region = region ?? ProcessInfo.processInfo.environment["DEPLOYCTL_REGION"] ?? "local"
            return ControlPlane(store: try openDatabase(url), region: region)
        }
        return try openLocal(readOnly: readOnly).plane
    }

    /// The API the commands talk to.
    func openAPI(readOnly: Bool = false) throws -> any CodeDeployAPI { try openService(readOnly: readOnly) }

    /// Where agents' presence is known.
    func openAgentDirectory() throws -> any AgentDirectory { try openService(readOnly: true) }

    /// Where the event stream is read.
    func openEventSource() throws -> any EventStreamSource { try openService(readOnly: true) }

    /// Where alarms are defined and set.
    func openAlarmRegistry() throws -> any AlarmRegistry { try openService() }

    /// Where topics and subscriptions are made and deliveries listed.
    func openTopicRegistry(readOnly: Bool = false) throws -> any TopicRegistry { try openService(readOnly: readOnly) }

    /// Where `push` stores bundles: the server's S3 API, or the store beside the state file.
    func openUploader() throws -> any ObjectUploading {
        switch try destination(for: .uploads) {
        case .server(let endpoint): return RemoteArtifacts(client: try remoteClient(endpoint))
        case .stateFile: return ArtifactStore(besideStateFile: statePath)
        }
    }

    /// The artifact store beside the state file (local agents read bundles from it).
    func openArtifacts() -> any ArtifactStorage { ArtifactStore(besideStateFile: statePath) }

    /// Commands that work on the state file only refuse an explicit --endpoint-url instead of ignoring it.
    /// Whether the state file was named on purpose (`--state`, `$DEPLOYCTL_STATE`) rather than defaulted.
    var namesStateFile: Bool {
        state != nil || !(ProcessInfo.processInfo.environment["DEPLOYCTL_STATE"] ?? "").isEmpty || namesDatabase
    }

    /// Whether a PostgreSQL database was named (`--database`, `$DEPLOYCTL_DATABASE_URL`): it stands where the state
    /// file would.
    var namesDatabase: Bool { database != nil || !(ProcessInfo.processInfo.environment["DEPLOYCTL_DATABASE_URL"] ?? "").isEmpty }

    /// The database named, checked: a password in `--database` is refused (a command line is visible to every user
    /// of the host); `$DEPLOYCTL_DATABASE_URL` may carry one.
    func databaseURL() throws -> DatabaseURL? {
        do {
            if let database { return try DatabaseURL(database, allowPassword: false) }
            if let text = ProcessInfo.processInfo.environment["DEPLOYCTL_DATABASE_URL"], !text.isEmpty {
                return try DatabaseURL(text, allowPassword: true)
            }
            return nil
        } catch {
            throw CLIFailure.usage("--database: \(error.description)")
        }
    }

    /// The PostgreSQL store of the named database (connected, its schema brought up to date).
    func openDatabase(_ url: DatabaseURL, maxConnections: Int = 4) throws -> PostgresStore {
        do {
            return try PostgresStore(url: url, maxConnections: maxConnections)
        } catch {
            throw CLIFailure.other("database \(url.redacted): \(error.description)")
        }
    }

    /// The CA bundle a remote client trusts: --ca-bundle, else $AWS_CA_BUNDLE, else the profile's `ca_bundle`.
    func trustedCABundle(_ chain: CredentialChain? = nil) -> String? {
        let chain = chain ?? CredentialChain(environment: ProcessInfo.processInfo.environment, profile: profile)
        return caBundle ?? ProcessInfo.processInfo.environment["AWS_CA_BUNDLE"].flatMap { $0.isEmpty ? nil : $0 } ?? chain.setting("ca_bundle")
    }

    /// The control plane over this host's state file, for a command whose ``destination(for:)`` is the state file.
    func openControlPlane(for purpose: Purpose) throws -> ControlPlane {
        guard try destination(for: purpose) == .stateFile else { throw CLIFailure.usage("this command works on the state file of this host") }
        return try openStore()
    }

    /// The local control plane over the state file, and the store under it (an agent watches the file). Called by
    /// the `open…` functions above once the destination is the state file, and by a local agent.
    func openLocal(readOnly: Bool = false) throws -> (plane: ControlPlane, store: SQLiteStore) {
        let region = region ?? ProcessInfo.processInfo.environment["DEPLOYCTL_REGION"] ?? "local"
        // A state file named on purpose (--state, $DEPLOYCTL_STATE) is never made up by a command that only reads: a
        // typo must not answer "no deployments" from a new, empty file.
        if readOnly, namesStateFile, access(statePath, F_OK) != 0 {
            throw CLIFailure.other(
                "no state file at \(statePath) (named by \(state != nil ? "--state" : "$DEPLOYCTL_STATE")); a command that only reads does not create one"
            )
        }
        let file: StateFile
        do {
            file = try StateFile(path: statePath)
        } catch {
            throw CLIFailure.other(error.description)
        }
        let store = SQLiteStore(file: file)
        return (ControlPlane(store: store, region: region), store)
    }
}

/// `--cli-input-json`, `--cli-input-yaml` and `--generate-cli-skeleton`, which every API subcommand takes.
public struct CLIInputOptions: ParsableArguments {
    /// What `--generate-cli-skeleton` prints.
    enum Skeleton: String, ExpressibleByArgument, CaseIterable {
        case input, output
        case yamlInput = "yaml-input"
    }

    @Option(
        name: .customLong("cli-input-json"),
        help: ArgumentHelp(
            "Read the request from JSON (text, or file://PATH), with the operation's member names; flags given too take precedence.",
            valueName: "json"))
    var cliInputJSON: String?

    @Option(
        name: .customLong("cli-input-yaml"),
        help: ArgumentHelp("Read the request from YAML (text, or file://PATH), as --cli-input-json does from JSON.", valueName: "yaml"))
    var cliInputYAML: String?

    @Option(
        name: .customLong("generate-cli-skeleton"),
        help: ArgumentHelp(
            "Print a request skeleton to fill in for --cli-input-json (input, the default), --cli-input-yaml (yaml-input), or the output's shape (output); nothing is sent.",
            valueName: "input|output|yaml-input"))
    var generateCLISkeleton: Skeleton?

    public init() {}

    public func validate() throws {
        if cliInputJSON != nil, cliInputYAML != nil { throw ValidationError("Give only one of --cli-input-json and --cli-input-yaml.") }
    }

    /// The request the input options give (an empty object when none is given).
    func request() throws -> JSONValue {
        var request = JSONValue.object([])
        if let text = cliInputJSON {
            let body = try ArgumentValue.contents(text, flag: "--cli-input-json")
            request = try ArgumentValue.json(body, flag: "--cli-input-json")
            guard case .object = request else { throw CLIFailure.usage("--cli-input-json must be a JSON object.") }
        } else if let text = cliInputYAML {
            let body = try ArgumentValue.contents(text, flag: "--cli-input-yaml")
            request = try ArgumentValue.yaml(body, flag: "--cli-input-yaml")
            guard case .object = request else { throw CLIFailure.usage("--cli-input-yaml must be a YAML mapping.") }
        }
        return request
    }
}

/// A generated API subcommand: its flags become the request, the control plane answers, the answer is printed.
protocol OperationCommand {
    static var operationName: String { get }
    /// `--generate-cli-skeleton` (input, output, yaml-input): botocore's skeletons, generated from the model.
    static var inputSkeleton: String { get }
    static var outputSkeleton: String { get }
    static var yamlInputSkeleton: String { get }
    /// How the operation pages, when botocore paginates it.
    static var paginator: Paginator? { get }
    var paginationOptions: PaginationOptions? { get }
    static var inputMembers: [String] { get }
    var cliInput: CLIInputOptions { get }
    var global: GlobalOptions { get }
    func flagMembers() throws -> [(String, JSONValue)]
}

extension OperationCommand {
    static var paginator: Paginator? { nil }
    var paginationOptions: PaginationOptions? { nil }

    @discardableResult
    func invoke<Input: Decodable, Output: Encodable>(
        _ type: Input.Type, _ call: (any CodeDeployAPI, Input) async throws -> Output
    ) async throws -> Output? {
        if let skeleton = cliInput.generateCLISkeleton {
            switch skeleton {
            case .input: try StandardStreams.out(Self.inputSkeleton)
            case .output: try StandardStreams.out(Self.outputSkeleton)
            case .yamlInput: try StandardStreams.out(Self.yamlInputSkeleton)
            }
            return nil
        }
        var request = try cliInput.request()
        request = request.merging(.members(try flagMembers()))

        let api = try global.openAPI(readOnly: AccessRole.readOnly.allows(Self.operationName))
        func page(_ pageRequest: JSONValue) async throws -> (Output, JSONValue) {
            let input: Input
            do {
                input = try JSONValueDecoder().decode(Input.self, from: pageRequest)
            } catch {
                // An enum value is the service's to refuse (botocore sends it): the operation's exception, exit 254.
                if let refusal = error.serviceError(operation: Self.operationName) {
                    throw CLIFailure.mapping(refusal, calling: Self.operationName, message: Self.withFlags)
                }
                throw CLIFailure.usage(Self.usageMessage(for: error))
            }
            let output: Output
            let started = ContinuousClock.now
            defer {
                if global.debug {
                    let elapsed = ContinuousClock.now - started
                    let millis = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
                    let target =
                        global.apiEndpoint().map { "POST \($0)/ (X-Amz-Target CodeDeploy_20141006.\(Self.operationName), SigV4)" }
                        ?? "the state file \(global.statePath)"
                    let body = pageRequest.compact()
                    StandardStreams.err(
                        "debug: \(Self.operationName) \(body.prefix(500))\(body.count > 500 ? "…" : "") -> \(target): \(String(format: "%.1f", millis)) ms\n"
                    )
                }
            }
            do {
                output = try await call(api, input)
            } catch {
                throw CLIFailure.mapping(error, calling: Self.operationName, message: Self.withFlags)
            }
            // What a person reads: timestamps as aws CLI v2 prints them (the wire and the state file use epoch seconds).
            return (output, try JSONValueEncoder(dateEncoding: .display).encode(output))
        }

        // As the aws CLI: an operation botocore paginates follows its token and prints one list, unless --no-paginate
        // or the token member itself (--next-token) was given; anything else is one call printed as it is.
        guard let paginator = Self.paginator, !global.noPaginate, request[paginator.inputToken] == nil else {
            let (output, value) = try await page(request)
            let text = try global.render(value, operation: Self.operationName)
            // Written unbuffered, so it comes before anything printed after it (a waiter's progress on stderr).
            if !text.isEmpty { try StandardStreams.out(text) }
            return output
        }
        return try await printPages(paginator, request, page: page)
    }

    /// Follows the paginator's token from `request` on, within `--starting-token` and `--max-items`, and prints
    /// the pages as one list (with the token to resume from, if any), as the aws CLI does.
    private func printPages<Output>(
        _ paginator: Paginator, _ request: JSONValue, page: (JSONValue) async throws -> (Output, JSONValue)
    ) async throws -> Output? {
        let options = paginationOptions ?? PaginationOptions()
        var requestToken: String?
        var skip = 0
        if let start = options.startingToken {
            (requestToken, skip) = try ResumeToken.decode(start, inputToken: paginator.inputToken)
        }
        var items: [JSONValue] = []
        var sawResultKey = false
        var firstOutput: Output?
        var resume: String?
        var total = 0
        while true {
            let pageRequest = requestToken.map { request.merging(.members([(paginator.inputToken, .string($0))])) } ?? request
            let (output, value) = try await page(pageRequest)
            var pageItems = value[paginator.resultKey]?.arrayValue ?? []
            if value[paginator.resultKey] != nil { sawResultKey = true }
            // botocore's PageIterator: the starting token's truncation applies to the first page only.
            var startingTruncation = 0
            if firstOutput == nil {
                firstOutput = output
                if options.startingToken != nil {
                    pageItems = Array(pageItems.dropFirst(skip))
                    startingTruncation = skip
                }
            }
            if let max = options.maxItems, total + pageItems.count > max {
                let keep = max - total
                items += pageItems.prefix(keep)
                resume = ResumeToken.encode(serviceToken: requestToken, inputToken: paginator.inputToken, truncate: keep + startingTruncation)
                break
            }
            items += pageItems
            total += pageItems.count
            guard let next = value[paginator.outputToken]?.stringValue, !next.isEmpty else { break }
            if let max = options.maxItems, total == max {
                resume = ResumeToken.encode(serviceToken: next, inputToken: paginator.inputToken, truncate: nil)
                break
            }
            guard next != requestToken else { throw CLIFailure.other("The same next token was received twice: \(next)") }
            requestToken = next
        }
        var members: [(String, JSONValue)] = sawResultKey ? [(paginator.resultKey, .array(items))] : []
        if let resume { members.append(("NextToken", .string(resume))) }
        var text: String
        if let resume, global.output == .text, global.query == nil {
            // The aws CLI prints the pages, then the token on a line of its own.
            text = try global.render(.members(members.filter { $0.0 != "NextToken" }), operation: Self.operationName)
            text += "NEXTTOKEN\t\(resume)\n"
        } else {
            text = try global.render(.members(members), operation: Self.operationName)
        }
        if !text.isEmpty { try StandardStreams.out(text) }
        return firstOutput
    }

    static func usageMessage(for error: ParameterValidationError) -> String {
        if case .missing = error.problem, error.path.count == 1 {
            return "the following arguments are required: --\(flagName(error.path[0]))"
        }
        if error.path.count >= 1 {
            return "Parameter validation failed (--\(flagName(error.path[0]))): \(error.description)"
        }
        return "Parameter validation failed: \(error.description)"
    }

    /// The aws CLI's flag for a member name: `ec2TagFilters` → `ec2-tag-filters`, `ResourceArn` → `resource-arn`.
    /// A service message names API members (`s3KeyPrefix`); on the command line the user typed flags: members of
    /// this operation's input written in camelCase are shown as their flag (`--s3-key-prefix`).
    static func withFlags(_ message: String) -> String {
        var text = message
        for member in inputMembers where member.contains(where: \.isUppercase) {
            text = text.replacingOccurrences(of: "\\b\(member)\\b", with: "--" + flagName(member), options: .regularExpression)
        }
        return text
    }

    static func flagName(_ member: String) -> String {
        var out = ""
        let chars = Array(member)
        for (i, c) in chars.enumerated() {
            if c.isUppercase, i > 0, chars[i - 1].isLowercase || chars[i - 1].isNumber {
                out.append("-")
            }
            out.append(Character(c.lowercased()))
        }
        return out
    }
}
