import AlarmProbes
import ArtifactStore
import ControlPlane
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import Synchronization
import TopicDelivery
import TrafficControl

/// Why the server cannot start.
public struct ServerStartError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Where the server listens: `HOST:PORT`, `[IPv6]:PORT`.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init(parsing text: String) throws(ServerStartError) {
        var host: Substring
        var port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw ServerStartError("--listen '\(text)': expected [IPv6]:PORT")
            }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw ServerStartError("--listen '\(text)': expected HOST:PORT, e.g. 127.0.0.1:8443") }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let number = Int(port), (0...65535).contains(number) else {
            throw ServerStartError("--listen '\(text)': expected HOST:PORT with a port from 0 to 65535")
        }
        self.host = String(host)
        self.port = number
    }

    /// Loopback: 127.0.0.0/8, ::1 or localhost.
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// How `deployctl server` runs.
public struct ServerConfiguration: Sendable {
    public var listen: ListenAddress
    /// nil serves plain HTTP (loopback only, checked by ``DeployServer/init(plane:artifacts:configuration:logger:)``).
    public var tls: TLSMaterial?
    /// The largest S3 object (or part) accepted.
    public var maxObjectBytes: Int64
    /// Connections idle this long are closed (slow or vanished clients).
    public var idleTimeout: Duration
    /// Where the deployment-specification signing key lives (the TLS folder, or beside the state file).
    public var signingDirectory: String
    /// How long a `PollHostCommand` with nothing to do is held (default 45 s: AWS's agent reads for 80 s; the longer
    /// the hold, the fewer polls an idle fleet makes: 10,000 agents poll 217 times a second at 45 s, 476 at 20 s).
    public var pollHold: Duration
    /// A number that changes when another process (a local `deployctl`) commits to the state file; polled every
    /// second so agents' held polls see deployments created behind the server's back. Nil: not watched.
    public var externalChanges: (@Sendable () -> Int?)?
    /// A number that changes when this process commits a change to deployments, targets or host commands (the
    /// state file's ``StateFile/workChanges``). With it, an idle agent's poll that finds nothing is not looked up
    /// again until something changed. Nil: every poll looks.
    public var workChanges: (@Sendable () -> UInt64?)?
    /// Client connections open at once; the next one is closed as it opens. Default: ``OpenFileLimit/connectionBudget``.
    public var maxConnections: Int
    /// A new connection must send its first request head within this (TLS handshake included).
    public var headerTimeout: Duration = .seconds(10)
    /// The load balancers deployments with traffic control name (`--load-balancer`), driven by this server.
    public var balancers = Balancers()
    /// How often the Prometheus and HTTP alarms that deployments watch are evaluated (`--alarm-interval`).
    public var alarmInterval: Duration = .seconds(5)
    /// How trigger and Publish deliveries are timed out and retried (`--delivery-timeout`, `--delivery-retry-window`).
    public var deliveryPolicy = DeliveryPolicy()
    /// The URL receivers reach this server at, for a `SubscriptionConfirmation`'s `SubscribeURL` (`--public-url`);
    /// nil: the URL served, with a wildcard address replaced by this host's name.
    public var publicURL: String?
    /// What a database store says of its connections, for `/metrics` (nil on a state file).
    public var storeStatistics: (@Sendable () -> StoreStatistics)?
    /// What other servers on the same database changed since the last call (asked once a second): the server forgets
    /// cached keys when they changed, and wakes the held polls of the instances named (all of them for
    /// `allInstances`) instead of every held poll. Nil on a state file (``externalChanges`` covers it).
    public var externalWork: (@Sendable () -> ExternalWork)?

    public init(
        listen: ListenAddress, tls: TLSMaterial?, signingDirectory: String, maxObjectBytes: Int64 = 5 << 30, idleTimeout: Duration = .seconds(60),
        pollHold: Duration = .seconds(45), maxConnections: Int = OpenFileLimit.current.connectionBudget,
        externalChanges: (@Sendable () -> Int?)? = nil, workChanges: (@Sendable () -> UInt64?)? = nil
    ) {
        self.maxConnections = maxConnections
        self.listen = listen
        self.tls = tls
        self.signingDirectory = signingDirectory
        self.maxObjectBytes = maxObjectBytes
        self.idleTimeout = idleTimeout
        self.pollHold = pollHold
        self.externalChanges = externalChanges
        self.workChanges = workChanges
    }
}

/// What another server's commits changed, as its notifications said.
public struct ExternalWork: Sendable {
    public var access: Bool
    public var allInstances: Bool
    public var instances: Set<String>

    public init(access: Bool, allInstances: Bool, instances: Set<String>) {
        self.access = access
        self.allInstances = allInstances
        self.instances = instances
    }
}

/// A database store's connections as `/metrics` shows them (`deployctl_store_*`): whether it is reachable now, and
/// how often it was not.
public struct StoreStatistics: Sendable {
    public var available: Bool
    public var connectionsOpen: Int
    public var connectionFailures: Int
    public var reconnects: Int
    public var retries: Int
    public var listenerReconnects: Int

    public init(available: Bool, connectionsOpen: Int, connectionFailures: Int, reconnects: Int, retries: Int, listenerReconnects: Int) {
        self.available = available
        self.connectionsOpen = connectionsOpen
        self.connectionFailures = connectionFailures
        self.reconnects = reconnects
        self.retries = retries
        self.listenerReconnects = listenerReconnects
    }
}

/// `deployctl server`: the CodeDeploy API (AWS JSON 1.1), the artifact store over S3's REST protocol, and
/// `/metrics`, on one port, every request SigV4-verified against the access keys in the state file. A transport
/// only: every operation runs in the same ``ControlPlane`` the CLI uses (ARCHITECTURE.md).
public struct DeployServer: Sendable {
    let responder: ServerResponder
    let configuration: ServerConfiguration
    let logger: Logger

    public init(plane: ControlPlane, artifacts: ArtifactStore, configuration: ServerConfiguration, logger: Logger) throws(ServerStartError) {
        if configuration.tls == nil, !configuration.listen.isLoopback {
            throw ServerStartError(
                "--plain-http is allowed on a loopback address only (127.0.0.1, ::1, localhost), not \(configuration.listen.host): anyone on the network could read keys' requests. Use TLS (the default) or put a TLS proxy in front."
            )
        }
        self.configuration = configuration
        self.logger = logger
        let signer: SpecificationSigner
        do {
            signer = try SpecificationSigner(directory: configuration.signingDirectory)
        } catch {
            throw ServerStartError("\(error)")
        }
        self.responder = ServerResponder(
            plane: plane, artifacts: artifacts, maxObjectBytes: configuration.maxObjectBytes, signer: signer, pollHold: configuration.pollHold,
            maxConnections: configuration.maxConnections, logger: logger, workChanges: configuration.workChanges,
            storeStatistics: configuration.storeStatistics)
    }

    /// Serves until SIGTERM or SIGINT, then drains in-flight requests and returns. `onRunning` gets the URL served
    /// (with the real port when the configuration asked for port 0).
    public func run(onRunning: @escaping @Sendable (String) async -> Void) async throws {
        let scheme = configuration.tls == nil ? "http" : "https"
        let listen = configuration.listen
        let limiter = responder.connections
        let deadlines = ConnectionDeadlines(firstHeader: .nanoseconds(Int64(configuration.headerTimeout.components.seconds) * 1_000_000_000))
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [ConnectionGuard(limiter: limiter, deadlines: deadlines), ExpectContinueHandler()],
            idleTimeout: .nanoseconds(Int64(configuration.idleTimeout.components.seconds) * 1_000_000_000),
            httpDecoderConfiguration: .init(maxHeaderFieldSize: 16 << 10, maxHeaderListSize: 64 << 10, maxHeaderFieldCount: 200))
        let server: HTTPServerBuilder
        if let tls = configuration.tls {
            do {
                server = try .tls(.http1(configuration: http1), tlsConfiguration: tls.serverConfiguration())
            } catch {
                throw ServerStartError("\(error)")
            }
        } else {
            server = .http1(configuration: http1)
        }
        let served = Mutex<String?>(nil)
        let app = Application(
            responder: responder, server: server,
            configuration: ApplicationConfiguration(address: .hostname(listen.host, port: listen.port), serverName: nil, reuseAddress: true),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? listen.port
                let reachable = ["0.0.0.0", "::"].contains(listen.host) ? ProcessInfo.processInfo.hostName : listen.host
                served.withLock { $0 = "\(scheme)://\(ListenAddress(host: reachable, port: port))" }
                await onRunning("\(scheme)://\(ListenAddress(host: listen.host, port: port))")
            },
            logger: logger)
        let waiters = responder.waiters
        let failures = RepeatedFailures(logger: logger)
        let clock = keepTime(failures: failures)
        let traffic = driveTraffic(failures: failures)
        let alarms = evaluateAlarms()
        let publicURL = configuration.publicURL
        let deliveries = deliverNotifications(failures: failures, confirmationBase: { publicURL ?? served.withLock { $0 } })
        defer {
            clock.cancel()
            traffic.cancel()
            alarms.cancel()
            deliveries.cancel()
            for executor in responder.executors { executor.shutdown() }
        }
        // SIGTERM/SIGINT: held polls answer at once, so draining in-flight requests does not wait out their hold.
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: app),
                    .init(
                        service: ShutdownNotice {
                            waiters.close()
                            responder.eventStreams.close()
                        }, successTerminationBehavior: .ignore),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        clock.cancel()
        await clock.value
        await writeContacts(all: true, failures: failures)
    }
}

extension DeployServer {
    /// The server's clock, once a second: host commands whose agent went quiet are failed (its reads do not do it),
    /// and so are blue/green waits and bakes that ran out; agent contacts are written every five seconds. An expiry,
    /// or a commit by another process, may mean work for held polls; another process's commit may also have changed
    /// keys and identities the server remembers.
    func keepTime(failures: RepeatedFailures) -> Task<Void, Never> {
        let plane = responder.plane
        let writer = responder.writer
        let waiters = responder.waiters
        let externalChanges = configuration.externalChanges
        let externalWork = configuration.externalWork
        return Task {
            var seen = externalChanges?()
            var tick = 0
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: .seconds(1))
                } catch {
                    break
                }
                tick += 1
                if tick % 5 == 0 { await writeContacts(failures: failures) }
                var expired = 0
                do {
                    expired = try await writer.perform { try plane.expireOverdueCommands() + plane.expireBlueGreenWaits() + plane.expireBakes() }
                    failures.recovered("command expiry")
                } catch {
                    failures.failed("command expiry", error)
                }
                let now = try? await writer.perform { externalChanges?() }
                if now != seen {
                    // Another process wrote the store (`deployctl register --state`, a key deactivated): what the
                    // server remembers of keys and identities may be stale.
                    plane.noteAccessChange()
                    waiters.noteExternalChange()
                }
                if expired > 0 || now != seen { waiters.wakeAll() }
                seen = now ?? seen
                if let work = externalWork?() {
                    // Another replica committed: only the polls it concerns look again.
                    if work.access { plane.noteAccessChange() }
                    if work.allInstances || !work.instances.isEmpty { waiters.noteExternalChange() }
                    if work.allInstances, expired == 0 {
                        waiters.wakeAll()
                    } else if !work.instances.isEmpty {
                        waiters.wake(work.instances)
                    }
                }
            }
        }
    }

    /// Writes the agent contacts that are due (``AgentContacts/take(all:)``; at shutdown, every newer one); a failed
    /// write puts them back for the next round.
    func writeContacts(all: Bool = false, failures: RepeatedFailures) async {
        let contacts = responder.agentContacts
        let taken = contacts.take(all: all)
        if taken.isEmpty { return }
        let plane = responder.plane
        do {
            try await responder.writer.perform { try plane.recordAgentContacts(taken) }
            failures.recovered("agent contacts")
        } catch {
            contacts.restore(taken)
            failures.failed("agent contacts", error)
        }
    }

    /// BlockTraffic, AllowTraffic and traffic shifts are the server's to run (TrafficDriver): looked for four times a
    /// second, each run on a thread of its own, the instance's held poll woken when it ends.
    func driveTraffic(failures: RepeatedFailures) -> Task<Void, Never> {
        let driver = TrafficDriver(plane: responder.plane, balancers: configuration.balancers)
        let writer = responder.writer
        let waiters = responder.waiters
        return Task {
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: .milliseconds(250))
                } catch {
                    break
                }
                do {
                    _ = try await writer.perform { try driver.startOutstanding { waiters.wake($0) } }
                    failures.recovered("traffic steps")
                } catch {
                    failures.failed("traffic steps", error)
                }
            }
        }
    }

    /// Prometheus and HTTP alarms, every `--alarm-interval`: probed off the store's threads, read and recorded on them.
    func evaluateAlarms() -> Task<Void, Never> {
        let plane = responder.plane
        let writer = responder.writer
        let readers = responder.readers
        let waiters = responder.waiters
        let evaluator = AlarmEvaluator(
            interval: configuration.alarmInterval,
            watched: { try await readers.perform { try plane.evaluatedAlarms() } },
            record: { alarm, observation in
                try await writer.perform {
                    try plane.recordAlarmEvaluation(name: alarm.name, definition: alarm.definition, observation: observation)
                }
            })
        return Task { await evaluator.run { _ in waiters.wakeAll() } }
    }
}

extension DeployServer {
    /// Trigger and Publish deliveries: looked for twice a second (a read), claimed and recorded on the writer
    /// thread, sent off the store's threads; each attempt is counted in `/metrics` by outcome, and the deliveries by
    /// state.
    func deliverNotifications(failures: RepeatedFailures, confirmationBase: @escaping @Sendable () -> String?) -> Task<Void, Never> {
        let plane = responder.plane
        let writer = responder.writer
        let readers = responder.readers
        let policy = configuration.deliveryPolicy
        let metrics = responder.metrics
        let help = "Attempts at delivering trigger and Publish notifications, by outcome (delivered, retry, gave_up)."
        let delivered = metrics.counter("notification_attempts", help, labels: [("outcome", "delivered")])
        let retried = metrics.counter("notification_attempts", help, labels: [("outcome", "retry")])
        let gaveUp = metrics.counter("notification_attempts", help, labels: [("outcome", "gave_up")])
        let deliverer = NotificationDeliverer(
            policy: policy, confirmationBase: confirmationBase, hasDue: { try await readers.perform { try plane.hasDueDeliveries() } },
            claim: { limit in try await writer.perform { try plane.claimDeliveries(limit: limit, policy: policy) } },
            record: { outcomes in
                let given = try await writer.perform { try plane.recordDeliveryAttempts(outcomes, policy: policy) }
                gaveUp.increment(by: Int64(given))
                let good = outcomes.filter { $0.1.delivered }.count
                delivered.increment(by: Int64(good))
                retried.increment(by: Int64(outcomes.filter { $0.1.attempted }.count - good - given))
            })
        return Task {
            let counts = Task {
                while !Task.isCancelled {
                    if let states = try? await readers.perform({ try plane.deliveryStateCounts() }) {
                        for state in ["pending", "delivered", "failed"] {
                            metrics.gauge("notification_deliveries", "Trigger and Publish deliveries by state.", labels: [("state", state)])
                                .set(Int64(states[state] ?? 0))
                        }
                    }
                    try? await Task.sleep(for: .seconds(5))
                }
            }
            await deliverer.run { _ in failures.recovered("deliveries") }
            counts.cancel()
            await deliverer.shutdown()
        }
    }
}

/// A background step that fails (the store locked by another process, a full disk) is logged once with its cause
/// when it starts failing and once when it works again, not once a second.
final class RepeatedFailures: Sendable {
    let logger: Logger
    let failing = Mutex<Set<String>>([])

    init(logger: Logger) { self.logger = logger }

    func failed(_ step: String, _ error: any Error) {
        let first = failing.withLock { $0.insert(step).inserted }
        if first { logger.error("\(step) failed; retrying every second", metadata: ["error": .string("\(error)")]) }
    }

    func recovered(_ step: String) {
        let was = failing.withLock { $0.remove(step) != nil }
        if was { logger.notice("\(step) works again") }
    }
}

/// Runs `action` when graceful shutdown begins.
struct ShutdownNotice: Service {
    let action: @Sendable () -> Void

    func run() async throws {
        try? await gracefulShutdown()
        action()
    }
}
