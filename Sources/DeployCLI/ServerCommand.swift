import ArgumentParser
import ArtifactStore
import ControlPlane
import DeployServer
import DeployStore
import DeployStorePostgres
import DeployStoreSQLite
import Foundation
import Logging

/// `deployctl server`: the state file's control plane and artifact store behind AWS's own protocols.
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        _superCommandName: "deployctl",
        abstract: "Serve the CodeDeploy API (aws deploy, boto3) and an S3-compatible artifact store over HTTPS (deployctl extension).",
        discussion: """
            One port speaks these protocols: POST / with X-Amz-Target CodeDeploy_20141006.* (the API, AWS JSON 1.1), path-style \
            S3 (/<bucket>/<key>, the same store as the local artifacts/ folder), SNS's Query API (a form POST to /, signed for \
            sns) and GET /metrics (Prometheus; send 'Authorization: Bearer <access key id>:<secret>'). Every API request is \
            checked with SigV4 against the access keys in the state file (deployctl create-access-key); the dashboard's pages \
            by the session its sign-in opened, a subscription's SubscribeURL by its random token.

            On first start it makes a CA and a server certificate in --tls-dir (default: tls/ beside the state file), with \
            names for the listen address, localhost, this host's name and each --tls-san; clients trust ca.pem \
            (aws --ca-bundle, AWS_CA_BUNDLE). --plain-http is for a loopback address only (tests, a TLS proxy in front). \
            It prints one line, the URL and the CA file, then one access-log line per request on stderr. SIGTERM or SIGINT \
            drain in-flight requests and exit 0.

            Deployment groups WITH_TRAFFIC_CONTROL name HAProxy backends in loadBalancerInfo; --load-balancer says where \
            each balancer's runtime API is, and the server drains and re-admits each instance's server (the backend server \
            named after the instance, or after its haproxy-server tag) in BlockTraffic and AllowTraffic.

            GET /ui/ serves the dashboard (deployments, their live grid, groups, instances, and actions): sign in with an \
            access key ID and secret access key of a read-only, deployer or admin key.

            Triggers notify SNS topics (deployctl sns, or aws sns --endpoint-url against this server): the server delivers \
            each notification to the topic's confirmed HTTP(S) subscriptions, retrying for --delivery-retry-window seconds.

            With --database postgres://... (or $DEPLOYCTL_DATABASE_URL) the state is in PostgreSQL instead of the state \
            file, and any number of servers can serve it at once, each on its own address behind a TCP balancer: give \
            them the same --tls-dir and --artifacts-dir (shared directories). README.md, "Running several servers".

            Example:
              deployctl server --listen 0.0.0.0:8443 --tls-san deploy.example.com
              PGPASSWORD=... deployctl server --database postgres://deployctl@db:5432/deployctl --tls-dir /shared/tls --artifacts-dir /shared/artifacts
              deployctl server --load-balancer web=unix:/run/haproxy/admin.sock
            """)

    @Option(
        name: .customLong("listen"), help: ArgumentHelp("HOST:PORT to listen on (default 127.0.0.1:8443; port 0 picks one).", valueName: "address"))
    var listen = "127.0.0.1:8443"

    @Option(
        name: .customLong("tls-dir"),
        help: ArgumentHelp("Where the CA and server certificate live (default: tls/ beside the state file).", valueName: "dir"))
    var tlsDirectory: String?

    @Option(
        name: .customLong("artifacts-dir"),
        help: ArgumentHelp(
            "Where bundles (the S3 face) are kept (default: artifacts/ beside the state file). Replicas on one --database must all see the same directory (a shared mount).",
            valueName: "dir"))
    var artifactsDirectory: String?

    @Option(
        name: .customLong("tls-cert"), help: ArgumentHelp("Serve this certificate (PEM, chain allowed) instead of making one.", valueName: "file"))
    var tlsCertificate: String?

    @Option(name: .customLong("tls-key"), help: ArgumentHelp("The private key of --tls-cert (PEM).", valueName: "file"))
    var tlsKey: String?

    @Option(
        name: .customLong("tls-san"), parsing: .singleValue,
        help: ArgumentHelp("Another host name or IP address clients use to reach the server (repeatable).", valueName: "name"))
    var tlsNames: [String] = []

    @Flag(name: .customLong("plain-http"), help: "Serve plain HTTP (loopback addresses only).")
    var plainHTTP = false

    @Option(
        name: .customLong("max-object-size"),
        help: ArgumentHelp("The largest S3 object or part accepted, in bytes (default 5368709120, 5 GiB).", valueName: "bytes"))
    var maxObjectSize: Int64 = 5 << 30

    @Option(
        name: .customLong("agent-grace"),
        help: ArgumentHelp(
            "Seconds an agent has to acknowledge a command, and past its hooks' timeouts to complete it, before it is presumed gone and the event fails (default 60).",
            valueName: "seconds"))
    var agentGrace: Double = 60

    @Option(
        name: .customLong("event-retention-days"),
        help: ArgumentHelp(
            "How long the event stream (deployctl events, GET /events) keeps an event; older ones are deleted as deployments are created (default 14).",
            valueName: "days"))
    var eventRetentionDays: Double = 14

    @Option(
        name: .customLong("poll-hold"),
        help: ArgumentHelp(
            "Seconds an agent's poll with nothing to do is held before the empty answer (1-50, default 45: AWS's agent reads for 80 s; a balancer in front must allow more).",
            valueName: "seconds"))
    var pollHold: Double = 45

    @Option(
        name: .customLong("max-connections"),
        help: ArgumentHelp(
            "Client connections open at once; one more is closed as it opens (default: the open-file limit, raised to its hard limit at start, less 512).",
            valueName: "count"))
    var maxConnections: Int?

    @Option(
        name: .customLong("idle-timeout"),
        help: ArgumentHelp("Seconds a connection may sit idle between requests before it is closed (1-3600, default 60).", valueName: "seconds"))
    var idleTimeout: Int = 60

    @Option(
        name: .customLong("header-timeout"),
        help: ArgumentHelp(
            "Seconds a new connection has to finish its TLS handshake and send its first request head (1-300, default 10).", valueName: "seconds"))
    var headerTimeout: Int = 10

    @Flag(name: .customLong("quiet"), help: "No access log (errors only).")
    var quiet = false

    @OptionGroup(title: "Traffic control") var traffic: TrafficOptions

    @Option(
        name: .customLong("alarm-interval"),
        help: ArgumentHelp(
            "Seconds between evaluations of the Prometheus and HTTP alarms deployments watch (1-300, default 5).", valueName: "seconds"))
    var alarmInterval: Double = 5

    @Option(
        name: .customLong("public-url"),
        help: ArgumentHelp(
            "The URL receivers reach this server at, for subscription confirmations' SubscribeURL (default: the URL served).", valueName: "url"))
    var publicURL: String?

    @Option(
        name: .customLong("delivery-timeout"),
        help: ArgumentHelp("Seconds a notification's receiver has to answer (1-120, default 10).", valueName: "seconds"))
    var deliveryTimeout: Double = 10

    @Option(
        name: .customLong("delivery-first-retry"),
        help: ArgumentHelp(
            "Seconds before a failed delivery's first retry; each next wait doubles, up to 600 (1-600, default 5).", valueName: "seconds"))
    var deliveryFirstRetry: Double = 5

    @Option(
        name: .customLong("delivery-retry-window"),
        help: ArgumentHelp("Seconds a failed delivery is retried for before it is given up (10-604800, default 3600).", valueName: "seconds"))
    var deliveryRetryWindow: Double = 3600

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        if (tlsCertificate == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
        if plainHTTP, tlsCertificate != nil || tlsDirectory != nil || !tlsNames.isEmpty {
            throw ValidationError("--plain-http cannot be combined with --tls-cert, --tls-dir or --tls-san")
        }
        guard maxObjectSize > 0 else { throw ValidationError("--max-object-size must be a positive number of bytes") }
        try NumberRange.check("--agent-grace", agentGrace, 1...86_400)
        try NumberRange.check("--event-retention-days", eventRetentionDays, 1...3650)
        try NumberRange.check("--poll-hold", pollHold, 1...50)
        try NumberRange.check("--alarm-interval", alarmInterval, 1...300)
        try NumberRange.check("--delivery-timeout", deliveryTimeout, 1...120)
        try NumberRange.check("--delivery-first-retry", deliveryFirstRetry, 1...600)
        try NumberRange.check("--delivery-retry-window", deliveryRetryWindow, 10...604_800)
        if let publicURL, !(publicURL.hasPrefix("https://") || publicURL.hasPrefix("http://")) || URL(string: publicURL)?.host == nil {
            throw ValidationError("--public-url '\(publicURL.prefix(100))': expected an http:// or https:// URL with a host")
        }
        try NumberRange.check("--idle-timeout", Double(idleTimeout), 1...3600)
        try NumberRange.check("--header-timeout", Double(headerTimeout), 1...300)
        if let maxConnections { try NumberRange.check("--max-connections", Double(maxConnections), 1...1_000_000) }
        for name in tlsNames where name.isEmpty || name.contains(where: { $0.isWhitespace || $0 == "/" }) {
            throw ValidationError("--tls-san '\(name)': expected a host name or an IP address")
        }
    }

    func run() async throws {
        _ = try global.destination(for: .stateFileOnly(command: "deployctl server"))
        let address: ListenAddress
        do {
            address = try ListenAddress(parsing: listen)
        } catch {
            throw CLIFailure.usage(error.description)
        }
        let statePath = global.statePath
        let region = global.region ?? ProcessInfo.processInfo.environment["DEPLOYCTL_REGION"] ?? "local"
        let served = try openServedStore(statePath: statePath)
        let plane = ControlPlane(
            store: served.store, region: region, expiresOnRead: false, agentGrace: agentGrace, eventRetention: eventRetentionDays * 86_400)
        let tls: TLSMaterial?
        let stateDirectory = (statePath as NSString).deletingLastPathComponent
        let chosenTLS = tlsDirectory ?? ((stateDirectory.isEmpty ? "." : stateDirectory) + "/tls")
        let tlsFolder = chosenTLS.hasPrefix("/") ? chosenTLS : FileManager.default.currentDirectoryPath + "/" + chosenTLS
        // The agents' deployment specifications are signed with a key kept with the TLS files.
        let signingDirectory = tlsFolder
        do {
            if plainHTTP {
                tls = nil
            } else if let tlsCertificate, let tlsKey {
                tls = .provided(certificatePath: tlsCertificate, keyPath: tlsKey)
            } else {
                let directory = tlsFolder
                var names = [address.host, "localhost", "127.0.0.1", "::1", ProcessInfo.processInfo.hostName] + tlsNames
                names = names.filter { !["0.0.0.0", "::"].contains($0) && !$0.isEmpty }
                var unique: [String] = []
                for name in names where !unique.contains(name) { unique.append(name) }
                tls = try TLSMaterial.prepare(directory: directory, names: unique)
            }
        } catch {
            throw CLIFailure.other("deployctl server: \(error)")
        }
        if !plane.hasAccessKeys() {
            StandardStreams.err(
                "deployctl server: no access keys yet; every request will be refused until you run: deployctl create-access-key --user-name NAME --role admin\n"
            )
        }
        let quiet = self.quiet
        var logger = Logger(label: "deployctl.server") { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = quiet ? .warning : .info
            return handler
        }
        logger.logLevel = quiet ? .warning : .info
        // Every connection is a descriptor: the soft limit (often 1,024) goes up to the hard one, and the
        // connection cap is sized from it so the store and object files always have room.
        let files = OpenFileLimit.raise()
        let connectionCap = maxConnections ?? files.after.connectionBudget
        if connectionCap + OpenFileLimit.reserve > files.after.soft {
            StandardStreams.err(
                "deployctl server: --max-connections \(connectionCap) leaves fewer than \(OpenFileLimit.reserve) of the \(files.after.soft) open files for the store and objects; connections may fail with 'too many open files'\n"
            )
        }
        let artifacts =
            artifactsDirectory.map { ArtifactStore(root: URL(fileURLWithPath: $0, isDirectory: true)) } ?? ArtifactStore(besideStateFile: statePath)
        // Uploads cut short by a killed server leave their temporary files: nothing can complete them now.
        for removed in artifacts.sweepIncoming() {
            StandardStreams.err("deployctl server: removed \(removed), an upload left unfinished by an earlier run\n")
        }
        var configuration = ServerConfiguration(
            listen: address, tls: tls, signingDirectory: signingDirectory, maxObjectBytes: maxObjectSize, idleTimeout: .seconds(idleTimeout),
            pollHold: .milliseconds(Int64(pollHold * 1000)), maxConnections: connectionCap,
            externalChanges: served.externalChanges, workChanges: served.workChanges)
        served.configure(&configuration)
        configuration.headerTimeout = .seconds(headerTimeout)
        configuration.balancers = try traffic.balancers()
        configuration.alarmInterval = .milliseconds(Int64(alarmInterval * 1000))
        configuration.deliveryPolicy = DeliveryPolicy(
            firstRetry: deliveryFirstRetry, retryWindow: deliveryRetryWindow, attemptTimeout: deliveryTimeout)
        configuration.publicURL = publicURL.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        let server: DeployServer
        do {
            server = try DeployServer(plane: plane, artifacts: artifacts, configuration: configuration, logger: logger)
        } catch {
            throw CLIFailure.usage(error.description)
        }
        let limits =
            "; open files \(files.before.soft)\(files.after.soft != files.before.soft ? " -> \(files.after.soft)" : ""), max connections \(connectionCap)"
        let caNote = (tls.map { " (CA: \($0.caPath))" } ?? " (plain HTTP, loopback only)") + limits
        do {
            try await server.run { url in
                try? StandardStreams.out("deployctl server: serving \(url)\(caNote)\n")
            }
        } catch {
            throw CLIFailure.other("deployctl server: \(error)")
        }
    }

    /// The state file, or (`--database`) this replica's PostgreSQL store with its listener for the other replicas.
    func openServedStore(statePath: String) throws -> ServedStore {
        if let url = try global.databaseURL() {
            // Connections for the readers and the writer, and a listener that hears what the other replicas change.
            let postgres = try global.openDatabase(url, maxConnections: max(4, ProcessInfo.processInfo.activeProcessorCount) + 4)
            postgres.listen()
            // Other replicas' commits arrive as notifications naming the instances they concern (externalWork), not as
            // a bare count that would wake every held poll.
            return ServedStore(store: postgres, externalChanges: nil, workChanges: { postgres.workChanges }, database: postgres)
        }
        let file: StateFile
        do {
            // Reads run on Swift's cooperative pool (one thread per core), so that many reader connections are all
            // that is ever used at once; each holds its own page cache.
            file = try StateFile(path: statePath, concurrentReaders: max(2, ProcessInfo.processInfo.activeProcessorCount))
        } catch {
            throw CLIFailure.other(error.description)
        }
        return ServedStore(
            store: SQLiteStore(file: file), externalChanges: { file.externalChangeCount() }, workChanges: { file.workChanges }, database: nil)
    }
}

/// The store `deployctl server` runs on, and how it hears what other processes (a local `deployctl` on the state
/// file) or other replicas (on the database) changed.
struct ServedStore {
    let store: any DeployStore
    let externalChanges: (@Sendable () -> Int?)?
    let workChanges: @Sendable () -> UInt64?
    let database: PostgresStore?

    /// On a database: other replicas' changes by instance, and the connections' figures for `/metrics`.
    func configure(_ configuration: inout ServerConfiguration) {
        guard let database else { return }
        configuration.externalWork = {
            let changes = database.takeExternalChanges()
            return ExternalWork(access: changes.access, allInstances: changes.allInstances, instances: changes.instances)
        }
        configuration.storeStatistics = {
            let statistics = database.statistics
            return StoreStatistics(
                available: statistics.available, connectionsOpen: statistics.connectionsOpen, connectionFailures: statistics.connectionFailures,
                reconnects: statistics.reconnects, retries: statistics.retries, listenerReconnects: statistics.listenerReconnects)
        }
    }
}
