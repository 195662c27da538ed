import AWSWire
import ArtifactStore
import ControlPlane
import Dashboard
import DeployModel
import DeployStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Prometheus
import Synchronization

/// One HTTP request as the server sees it before routing: the raw path and query (as signed), and the headers
/// including `Host` (HTTPTypes moves it to the authority).
struct WireRequest {
    var method: String
    /// Percent-encoded, as sent.
    var path: String
    var query: String
    var headers: [(name: String, value: String)]

    init(_ request: Request) {
        method = request.method.rawValue
        let target = request.head.path ?? "/"
        if let mark = target.firstIndex(of: "?") {
            path = String(target[..<mark])
            query = String(target[target.index(after: mark)...])
        } else {
            path = target
            query = ""
        }
        // Lowercase names (HTTPTypes keeps them so): header lookups and SigV4 compare without allocating.
        headers = request.headers.map { ($0.name.canonicalName, $0.value) }
        if let authority = request.head.authority, !headers.contains(where: { $0.name.lowercased() == "host" }) {
            headers.append(("host", authority))
        }
    }

    func header(_ name: String) -> String? {
        headers.first { $0.name == name }?.value
    }

    /// The query's parameters, decoded; a name without `=` maps to "".
    var parameters: [String: String] {
        var result: [String: String] = [:]
        for part in query.split(separator: "&", omittingEmptySubsequences: true) {
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(pieces[0]).removingPercentEncoding ?? String(pieces[0])
            let value = pieces.count > 1 ? (String(pieces[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "") : ""
            result[name] = value
        }
        return result
    }
}

/// What a handler answers, with what the access log and metrics record.
struct WireResponse {
    var status: Int
    var headers: [(String, String)]
    var body: ResponseBody
    /// The operation name (`GetDeployment`, `PutObject`, `Metrics`), for logs and metrics.
    var operation: String
    var errorCode: String?
    /// An S3 answer (its request id header is S3's).
    var isS3 = false

    init(status: Int, headers: [(String, String)] = [], body: ResponseBody = ResponseBody(), operation: String, errorCode: String? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.operation = operation
        self.errorCode = errorCode
    }

    /// An AWS JSON 1.1 answer.
    init(_ answer: JSONProtocol.Response, operation: String) {
        self.init(status: answer.status, contentType: JSONProtocol.contentType, text: answer.body, operation: operation, errorCode: answer.errorCode)
    }

    init(status: Int, contentType: String, text: String, operation: String, errorCode: String? = nil) {
        let buffer = ByteBuffer(string: text)
        self.init(
            status: status, headers: [("Content-Type", contentType), ("Content-Length", String(buffer.readableBytes))],
            body: ResponseBody(byteBuffer: buffer), operation: operation, errorCode: errorCode)
    }
}

/// Credentials and instance identities looked up in the store and remembered until access changes
/// (``ControlPlane/accessChanges``: a key created, deactivated or deleted, an instance registered or deregistered, in
/// this process or — seen by the server's clock within a second — in another one). An idle fleet's agents poll once
/// per hold (45 s) plus a second; re-reading each key on every poll was a store read per request. Unknown key ids are remembered
/// briefly and in a bounded table, so strangers cannot grow it.
final class Credentials: Sendable {
    typealias Key = (secret: String, role: AccessRole, userName: String)
    /// A backstop: even with no change counted, an entry is read again after this long.
    static let lifetime: TimeInterval = 600
    /// How long an unknown key id is remembered as unknown, and how many at most.
    static let unknownLifetime: TimeInterval = 2
    static let maxUnknown = 4096
    static let maxEntries = 200_000

    struct Entry<Value> {
        var value: Value
        var changes: UInt64
        var expires: Date
    }

    let plane: ControlPlane
    private let keys = Mutex<[String: Entry<Key>]>([:])
    private let unknown = Mutex<[String: Entry<Void>]>([:])
    private let identities = Mutex<[String: Entry<[String]>]>([:])

    init(plane: ControlPlane) { self.plane = plane }

    /// The active key `accessKeyId`, from memory when nothing changed since it was read, else from the store (on the
    /// caller's thread: request paths call ``prepare(_:on:sessions:)`` first, which reads on the readers).
    func lookup(_ accessKeyId: String) -> Key? {
        switch cached(accessKeyId) {
        case .some(let hit): return hit
        case .none: return load(accessKeyId)
        }
    }

    /// Nil when memory does not know; `.some(nil)` for a key known not to be active.
    private func cached(_ accessKeyId: String) -> Key?? {
        let now = Date()
        let changes = plane.accessChanges
        if let entry = keys.withLock({ $0[accessKeyId] }), entry.changes == changes, entry.expires > now { return .some(entry.value) }
        if let entry = unknown.withLock({ $0[accessKeyId] }), entry.changes == changes, entry.expires > now { return .some(nil) }
        return nil
    }

    /// Reads `accessKeyId` from the store and remembers what it found.
    @discardableResult
    func load(_ accessKeyId: String) -> Key? {
        guard accessKeyId.count <= 128 else { return nil }
        // Taken before the read: a change that commits during it makes this entry stale at once.
        let changes = plane.accessChanges
        let now = Date()
        let found = (try? plane.activeCredentials(accessKeyId: accessKeyId)).flatMap { $0 }
        if let found {
            keys.withLock { entries in
                if entries.count >= Self.maxEntries { entries.removeAll(keepingCapacity: true) }
                entries[accessKeyId] = Entry(value: found, changes: changes, expires: now.addingTimeInterval(Self.lifetime))
            }
            unknown.withLock { _ = $0.removeValue(forKey: accessKeyId) }
        } else {
            keys.withLock { _ = $0.removeValue(forKey: accessKeyId) }
            unknown.withLock { entries in
                if entries.count >= Self.maxUnknown { entries.removeAll(keepingCapacity: true) }
                entries[accessKeyId] = Entry(value: (), changes: changes, expires: now.addingTimeInterval(Self.unknownLifetime))
            }
        }
        return found
    }

    var unknownCount: Int { unknown.withLock { $0.count } }

    /// Makes sure the key a request names (SigV4's `Credential=`, a `Bearer` token, or a dashboard session's) is in
    /// memory, reading it on the store's reader threads when it is not, so that ``verify(_:services:)`` and
    /// ``lookup(_:)`` after it never read the store on the event loops or the cooperative pool.
    func prepare(_ wire: WireRequest, on readers: BlockingExecutor, sessions: DashboardSessions) async {
        guard let id = Self.keyId(wire, sessions: sessions), cached(id) == nil else { return }
        _ = try? await readers.perform { self.load(id) }
    }

    /// The access key id a request names, without checking anything.
    static func keyId(_ wire: WireRequest, sessions: DashboardSessions) -> String? {
        if let authorization = wire.header("authorization") {
            if authorization.hasPrefix("Bearer ") {
                let token = authorization.dropFirst("Bearer ".count)
                return token.firstIndex(of: ":").map { String(token[..<$0]) }
            }
            // `AWS4-HMAC-SHA256 Credential=KEY/date/...`, read by bytes (Foundation's range(of:) was a visible share
            // of an idle poll).
            let bytes = Array(authorization.utf8)
            let marker = Array("Credential=".utf8)
            guard bytes.count > marker.count,
                let start = (0...(bytes.count - marker.count)).first(where: { bytes[$0..<($0 + marker.count)].elementsEqual(marker) })
            else { return nil }
            let from = start + marker.count
            guard let slash = bytes[from...].firstIndex(of: UInt8(ascii: "/")), slash - from <= 128 else { return nil }
            return String(decoding: bytes[from..<slash], as: UTF8.self)
        }
        return DashboardSessions.id(inCookieHeader: wire.header("cookie")).flatMap(sessions.session)?.accessKeyId
    }

    /// The IAM ARNs a registered instance signs as (its HostIdentifier), remembered like keys; empty when it is
    /// not registered. Read on the readers when memory does not know.
    func identities(of instance: String, readers: BlockingExecutor) async throws -> [String] {
        let changes = plane.accessChanges
        if let entry = identities.withLock({ $0[instance] }), entry.changes == changes, entry.expires > Date() { return entry.value }
        let plane = self.plane
        let found = try await readers.perform { try plane.instanceIdentities(instanceName: instance) }
        identities.withLock { entries in
            if entries.count >= Self.maxEntries { entries.removeAll(keepingCapacity: true) }
            entries[instance] = Entry(value: found, changes: changes, expires: Date().addingTimeInterval(Self.lifetime))
        }
        return found
    }

    /// Who signed `request` for one of `services`: the key, its role and its user (an instance's name for its key).
    func verify(_ request: SigV4.Request, services: Set<String>) throws(SigV4.Refusal) -> (
        accessKeyId: String, role: AccessRole, userName: String
    ) {
        var found: (role: AccessRole, userName: String)?
        let signer = try SigV4.verify(request, services: services) { id in
            let entry = lookup(id)
            found = entry.map { ($0.role, $0.userName) }
            return entry?.secret
        }
        // The target chooses the operation: a signature that does not cover it could be replayed as another one.
        if request.headers.contains(where: { $0.name.lowercased() == "x-amz-target" }), !signer.signedHeaders.contains("x-amz-target") {
            throw .invalidSignature("X-Amz-Target must be among the signed headers (SignedHeaders).")
        }
        return (signer.accessKeyId, found?.role ?? .readOnly, found?.userName ?? "")
    }
}

/// The one responder of `deployctl server`: tells the three protocols apart (ARCHITECTURE.md, `DeployServer`), authenticates, runs the
/// operation off the event loops, logs one line and records metrics per request.
struct ServerResponder: HTTPResponder {
    typealias Context = ServerRequestContext
    static let requestIdField = HTTPField.Name("x-amzn-RequestId") ?? .contentType
    static let s3RequestIdField = HTTPField.Name("x-amz-request-id") ?? .contentType

    let plane: ControlPlane
    let artifacts: ArtifactStore
    let maxObjectBytes: Int64
    /// The one thread that writes the store (SQLite has one writer).
    let writer: BlockingExecutor
    /// The agents' writes, committed in groups on ``writer``.
    let groupCommit: GroupCommit
    /// Threads for store reads (WAL: they never wait for the writer).
    let readers: BlockingExecutor
    /// Threads for object files: joining multipart parts, reading objects for GetObject.
    let files: BlockingExecutor
    let connections: ConnectionLimiter
    let logger: Logger
    let credentials: Credentials
    let metrics: ServerMetrics
    let waiters: PollWaiters
    /// A database store's connection figures for `/metrics`.
    let storeStatistics: (@Sendable () -> StoreStatistics)?
    let signer: SpecificationSigner
    let pollHold: Duration
    /// When each instance's agent last polled (for `deployctl agent list` and the `--wait` view).
    let agentContacts = AgentContacts()
    /// The open `GET /events` streams.
    let eventStreams = EventStreams()
    /// The dashboard's signed-in browsers.
    let sessions = DashboardSessions()
    /// The control plane the dashboard's pages read through: the same store, its reads counted per page.
    let dashboardPlane: ControlPlane

    init(
        plane: ControlPlane, artifacts: ArtifactStore, maxObjectBytes: Int64, signer: SpecificationSigner,
        pollHold: Duration, maxConnections: Int, logger: Logger, workChanges: (@Sendable () -> UInt64?)? = nil,
        storeStatistics: (@Sendable () -> StoreStatistics)? = nil
    ) {
        self.storeStatistics = storeStatistics
        let metrics = ServerMetrics()
        func executor(threads: Int, name: String) -> BlockingExecutor {
            let refused = metrics.counter(
                "blocking_refused", "Jobs refused because a blocking executor's queue was full or it was shut down.",
                labels: [("executor", name)])
            return BlockingExecutor(threads: threads, name: name, onRefusal: { refused.increment() })
        }
        let connectionsRefused = metrics.counter("connections_refused", "Connections closed at once because --max-connections were open.")
        self.plane = plane
        self.dashboardPlane = ControlPlane(
            store: CountedReads(plane.store), region: plane.region, account: plane.account, expiresOnRead: false, agentGrace: plane.agentGrace,
            eventRetention: plane.eventRetention)
        self.artifacts = artifacts
        self.maxObjectBytes = maxObjectBytes
        let writer = executor(threads: 1, name: "store-write")
        self.writer = writer
        self.groupCommit = GroupCommit(writer: writer, plane: plane, metrics: metrics)
        self.readers = executor(threads: 4, name: "store-read")
        self.files = executor(threads: 2, name: "files")
        self.connections = ConnectionLimiter(limit: maxConnections, onRefusal: { connectionsRefused.increment() })
        self.logger = logger
        self.credentials = Credentials(plane: plane)
        self.metrics = metrics
        self.signer = signer
        self.pollHold = pollHold
        self.waiters = PollWaiters(workChanges: workChanges)
    }

    /// Runs store work that may write (and so wait for another process's lock) on the one writer thread.
    func onWriter<T: Sendable>(_ body: @escaping @Sendable (ControlPlane) throws -> T) async throws -> T {
        let changes = plane.accessChanges
        defer {
            // The change was counted inside its transaction, which committed with its group just now: count it
            // again, so a key or identity read between the two is not kept (``ControlPlane/accessChanges``).
            if plane.accessChanges != changes { plane.noteAccessChange() }
        }
        return try await groupCommit.perform(body)
    }

    /// Runs a store read on the reader threads (WAL: it never waits for a writer).
    func onReaders<T: Sendable>(_ body: @escaping @Sendable (ControlPlane) throws -> T) async throws -> T {
        let plane = self.plane
        return try await readers.perform { try body(plane) }
    }

    /// Every executor, for shutdown.
    var executors: [BlockingExecutor] { [writer, readers, files] }

    func respond(to request: Request, context: Context) async throws -> Response {
        let started = ContinuousClock.now
        let wire = WireRequest(request)
        await credentials.prepare(wire, on: readers, sessions: sessions)
        let requestId = RequestIDs.next()
        var keyId = "-"
        var answer: WireResponse
        if wire.method == "POST", wire.path == "/", let target = wire.header("x-amz-target"),
            let operation = CommandProtocol.operation(target: target)
        {
            answer = await CommandRoutes(responder: self, requestId: requestId, channel: context.channel).handle(
                request, wire, operation: operation, keyId: &keyId)
        } else if wire.method == "POST", wire.path == "/", let target = wire.header("x-amz-target") {
            answer = await api(request, wire, target: target, requestId: requestId, keyId: &keyId)
        } else if DashboardRoutes.matches(wire) {
            answer = await DashboardRoutes(responder: self).handle(request, wire, keyId: &keyId)
        } else if SNSRoutes.matches(wire) {
            answer = await SNSRoutes(responder: self, requestId: requestId).handle(request, wire, keyId: &keyId)
        } else if wire.method == "GET", wire.path == "/metrics" {
            answer = metricsResponse(wire, keyId: &keyId)
        } else if wire.method == "GET", wire.path == "/events" {
            answer = eventStreamResponse(wire, keyId: &keyId)
        } else {
            // Object work reads and writes files and hashes bodies: it runs on the file threads, never on the
            // cooperative pool the API's requests need (issue 22, item 4).
            let routes = S3Routes(responder: self, requestId: requestId)
            do {
                (answer, keyId) = try await files.perform {
                    var signer = "-"
                    let answer = await routes.handle(request, wire, keyId: &signer)
                    return (answer, signer)
                }
            } catch {
                answer = WireResponse(
                    status: 503, contentType: "application/xml",
                    text: S3XML.error(code: "SlowDown", message: "\(error)", resource: "/", requestId: requestId), operation: "Unknown",
                    errorCode: "SlowDown")
            }
            answer.isS3 = true
        }
        let elapsed = ContinuousClock.now - started
        metrics.record(operation: answer.operation, status: answer.status, duration: elapsed)
        let millis = Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000
        logger.info(
            "request",
            metadata: [
                "request_id": .string(requestId), "method": .string(LogText.clean(wire.method, limit: 20)), "operation": .string(answer.operation),
                "key_id": .string(keyId), "status": .stringConvertible(answer.status),
                "error": .string(answer.errorCode ?? "-"), "duration_ms": .string(String(format: "%.2f", millis)),
            ])
        var fields = HTTPFields()
        for (name, value) in answer.headers {
            if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
        }
        // JSON services name it x-amzn-RequestId, S3 x-amz-request-id.
        fields.append(HTTPField(name: answer.isS3 ? Self.s3RequestIdField : Self.requestIdField, value: requestId))
        return Response(status: HTTPResponse.Status(code: answer.status), headers: fields, body: answer.body)
    }

    // MARK: The CodeDeploy API

    func api(_ request: Request, _ wire: WireRequest, target: String, requestId: String, keyId: inout String) async -> WireResponse {
        // Looked up once: its name labels the log, the metrics and every error below.
        let operation = ServerOperation.lookup(target: target)
        let operationName = operation?.name ?? "Unknown"
        func fail(_ status: Int, _ code: String, _ message: String) -> WireResponse {
            WireResponse(JSONProtocol.Response.error(code, message, status: status), operation: operationName)
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: JSONProtocol.maxBodyBytes)
        } catch {
            return fail(413, "SerializationException", "The request body is larger than \(JSONProtocol.maxBodyBytes) bytes.")
        }
        let bytes = Data(body.readableBytesView)
        let signed = SigV4.Request(method: wire.method, path: wire.path, query: wire.query, headers: wire.headers, body: bytes)
        let role: AccessRole
        do {
            let signer = try credentials.verify(signed, services: ["codedeploy"])
            keyId = signer.accessKeyId
            role = signer.role
        } catch {
            return fail(error == .missing ? 403 : 400, error.code, error.description)
        }
        guard let operation else {
            return fail(400, "UnknownOperationException", ServerOperation.unknownMessage(target: target))
        }
        guard role.allows(operation.name) else {
            return fail(
                400, "AccessDeniedException",
                "The access key \(keyId) (role \(role.rawValue)) is not allowed to call \(operation.name).")
        }
        let answer: JSONProtocol.Response
        switch operation {
        case .codeDeploy(let operation):
            // Reads of a plane that does not expire on read never write and never wait for a writer (WAL): they run
            // on the reader threads. Writes can wait for another process's lock: they queue for the one writer thread.
            let executor = !plane.expiresOnRead && AccessRole.readOnly.allows(operation.name) ? readers : writer
            let plane = self.plane
            do {
                answer = try await executor.perform { await JSONProtocol.handle(operation, body: bytes, api: plane) }
            } catch {
                return fail(503, "ThrottlingException", "\(error)")
            }
        case .deployctl(let operation):
            answer = await operation.handle(self, body: bytes)
        }
        if answer.status == 200, ["CreateDeployment", "ContinueDeployment"].contains(operation.name) {
            // New work for some instances: their agents' held polls look again.
            waiters.wakeAll()
        }
        return WireResponse(answer, operation: operation.name)
    }

    // MARK: /metrics

    /// Prometheus text, for a `metrics` or `admin` key only (SECURITY.md): the scraper authenticates with
    /// `Authorization: Bearer <access key id>:<secret>` (Prometheus' `authorization` setting), or signs the request
    /// like any other.
    func metricsResponse(_ wire: WireRequest, keyId: inout String) -> WireResponse {
        guard let role = authenticateGET(wire, keyId: &keyId) else {
            return WireResponse(
                status: 401, headers: [("WWW-Authenticate", "Bearer realm=\"deployctl\"")], operation: "Metrics", errorCode: "Unauthorized")
        }
        guard role.allows("Metrics") else {
            return WireResponse(
                status: 403, contentType: "text/plain; charset=utf-8",
                text: "The access key \(keyId) (role \(role.rawValue)) may not read /metrics: use a key of role metrics or admin.\n",
                operation: "Metrics", errorCode: "AccessDenied")
        }
        return WireResponse(
            status: 200, contentType: "text/plain; version=0.0.4",
            text: metrics.text(sampling: executors, connections: connections, store: storeStatistics?()),
            operation: "Metrics")
    }

    /// The role of a GET's caller: `Authorization: Bearer <access key id>:<secret>` (what Prometheus and curl send),
    /// or a SigV4 signature like any other request's. Nil when neither holds.
    func authenticateGET(_ wire: WireRequest, keyId: inout String) -> AccessRole? {
        let authorization = wire.header("authorization") ?? ""
        var role: AccessRole?
        if authorization.hasPrefix("Bearer ") {
            let token = authorization.dropFirst("Bearer ".count)
            if let colon = token.firstIndex(of: ":") {
                let id = String(token[..<colon])
                if let entry = credentials.lookup(id), SigV4.constantTimeEqual(entry.secret, String(token[token.index(after: colon)...])) {
                    role = entry.role
                    keyId = id
                }
            }
        } else if authorization.isEmpty, let session = DashboardSessions.id(inCookieHeader: wire.header("cookie")).flatMap(sessions.session),
            let entry = credentials.lookup(session.accessKeyId)
        {
            // The dashboard's page following its deployment (the session cookie, SameSite=Strict).
            role = entry.role
            keyId = session.accessKeyId
        } else {
            let signed = SigV4.Request(method: wire.method, path: wire.path, query: wire.query, headers: wire.headers, body: Data())
            if let signer = try? credentials.verify(signed, services: ["codedeploy", "s3"]) {
                role = signer.role
                keyId = signer.accessKeyId
            }
        }
        return role
    }
}

/// Request counts and latency histograms per operation, in Prometheus text format. The collectors of each
/// operation and status are looked up once and kept.
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let counters = Mutex<[String: Counter]>([:])
    let histograms = Mutex<[String: DurationHistogram]>([:])
    static let buckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5), .seconds(30),
    ]

    func record(operation: String, status: Int, duration: Duration) {
        let counterKey = operation + " " + String(status)
        let counter =
            counters.withLock { $0[counterKey] }
            ?? {
                let made = registry.makeCounter(
                    descriptor: MetricNameDescriptor(
                        namespace: "deployctl", metricName: "requests", unitName: "total", helpText: "Requests served, by operation and HTTP status."),
                    labels: [("operation", operation), ("status", String(status))])
                counters.withLock { $0[counterKey] = made }
                return made
            }()
        counter.increment()
        let histogram =
            histograms.withLock { $0[operation] }
            ?? {
                let made = registry.makeDurationHistogram(
                    descriptor: MetricNameDescriptor(
                        namespace: "deployctl", metricName: "request_duration", unitName: "seconds",
                        helpText: "Time to answer a request, by operation."),
                    labels: [("operation", operation)], buckets: Self.buckets)
                histograms.withLock { $0[operation] = made }
                return made
            }()
        histogram.record(duration)
    }

    /// A counter `deployctl_<name>_total`.
    func counter(_ name: String, _ help: String, labels: [(String, String)] = []) -> Counter {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(namespace: "deployctl", metricName: name, unitName: "total", helpText: help), labels: labels)
    }

    func gauge(_ name: String, _ help: String, labels: [(String, String)] = []) -> Gauge {
        registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "deployctl", metricName: name, unitName: "", helpText: help), labels: labels)
    }

    /// The text to serve, with the gauges read now: the blocking executors' queues and the open connections.
    func text(sampling executors: [BlockingExecutor], connections: ConnectionLimiter, store: StoreStatistics? = nil) -> String {
        if let store {
            gauge("store_up", "1 when the database answered the last connection attempt, 0 while it is unreachable.").set(
                Int64(store.available ? 1 : 0))
            gauge("store_connections", "Open connections to the database.").set(Int64(store.connectionsOpen))
            gauge("store_connection_failures", "Failed attempts to connect to the database since start.").set(Int64(store.connectionFailures))
            gauge("store_reconnects", "Connections made again after the database was unreachable.").set(Int64(store.reconnects))
            gauge("store_retries", "Transactions run again after a serialization failure, deadlock or lost connection.").set(Int64(store.retries))
            gauge("store_listener_reconnects", "Times the LISTEN connection for other replicas' changes was made again.")
                .set(Int64(store.listenerReconnects))
        }
        for executor in executors {
            gauge("blocking_queue_length", "Jobs waiting for a thread of a blocking executor.", labels: [("executor", executor.name)])
                .set(Int64(executor.queueLength))
        }
        gauge("connections", "Open client connections.").set(Int64(connections.openCount))
        return registry.emitToString()
    }
}

/// When each instance's agent last called the command service, from where and as what; kept in memory on every call
/// and written to the state file every few seconds (``take(all:)``), so a fleet's polls cost no writes of their own.
/// An agent heard from again within ``rewriteAfter`` of what the file holds (same address and User-Agent) is not
/// written again: an idle fleet of 10,000 agents calls about 400 times a second, and the file stays well inside
/// ``AgentPresence/onlineWindow`` without a row for each call. Answers from this process see the newest contact.
final class AgentContacts: Sendable {
    static let rewriteAfter: TimeInterval = 30

    private struct Entries {
        var latest: [String: AgentContactRecord] = [:]
        /// What the file holds (or will, once the write in flight commits) for each instance.
        var written: [String: AgentContactRecord] = [:]
        var due: Set<String> = []
    }
    private let entries = Mutex(Entries())

    func record(_ instance: String, address: String, agent: String) {
        let contact = AgentContactRecord(
            instanceName: instance, lastSeen: Date().timeIntervalSince1970, address: address, agent: String(agent.prefix(200)))
        entries.withLock { e in
            e.latest[instance] = contact
            if let stored = e.written[instance], stored.address == contact.address, stored.agent == contact.agent,
                contact.lastSeen - stored.lastSeen < Self.rewriteAfter
            {
                return
            }
            e.due.insert(instance)
        }
    }

    /// Contacts newer in memory than in the file (for answers that must not lag the file).
    var unwritten: [AgentContactRecord] {
        entries.withLock { e in
            e.latest.values.filter { contact in (e.written[contact.instanceName]?.lastSeen ?? -1) < contact.lastSeen }
        }
    }

    /// Takes the contacts to write: those due, or (`all`, at shutdown) every one newer than the file's; `restore`
    /// puts them back when the write failed.
    func take(all: Bool = false) -> [AgentContactRecord] {
        entries.withLock { e in
            let names = all ? Set(e.latest.keys) : e.due
            e.due.removeAll()
            var taken: [AgentContactRecord] = []
            for name in names {
                guard let contact = e.latest[name], (e.written[name]?.lastSeen ?? -1) < contact.lastSeen else { continue }
                taken.append(contact)
                e.written[name] = contact
            }
            return taken
        }
    }

    func restore(_ contacts: [AgentContactRecord]) {
        entries.withLock { e in
            for contact in contacts {
                if e.written[contact.instanceName] == contact { e.written[contact.instanceName] = nil }
                if e.latest[contact.instanceName] != nil { e.due.insert(contact.instanceName) }
            }
        }
    }
}

/// The request context: Hummingbird's core storage, and the connection (a held poll checks it is still open before
/// it hands out a command: a vanished agent must not take one with it).
struct ServerRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// Request ids: unique in this server's life, cheap (no random bytes per request): a random prefix made at start and
/// a counter.
enum RequestIDs {
    static let prefix = String(UInt64.random(in: 0...UInt64.max), radix: 16, uppercase: true)
    static let counter = Atomic<UInt64>(0)

    static func next() -> String {
        let n = counter.wrappingAdd(1, ordering: .relaxed).newValue
        return prefix + "-" + String(n, radix: 16, uppercase: true)
    }
}
