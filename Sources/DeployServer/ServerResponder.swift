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

/// Credentials looked up in the state file, remembered for a moment so a busy server does not read the key table on
/// every request: a deactivated or deleted key stops working within ``Credentials/lifetime``.
final class Credentials: Sendable {
    static let lifetime: TimeInterval = 2
    let plane: ControlPlane
    let cache = Mutex<[String: (secret: String, role: AccessRole, userName: String, expires: Date)?]>([:])
    let misses = Mutex<[String: Date]>([:])

    init(plane: ControlPlane) { self.plane = plane }

    func lookup(_ accessKeyId: String) -> (secret: String, role: AccessRole, userName: String)? {
        let now = Date()
        if let cached = cache.withLock({ $0[accessKeyId] }), let entry = cached, entry.expires > now {
            return (entry.secret, entry.role, entry.userName)
        }
        guard accessKeyId.count <= 128 else { return nil }
        let found = try? plane.activeCredentials(accessKeyId: accessKeyId)
        cache.withLock { entries in
            if entries.count > 10_000 { entries.removeAll() }
            entries[accessKeyId] = found.map { ($0.secret, $0.role, $0.userName, now.addingTimeInterval(Self.lifetime)) }
        }
        return found.flatMap { $0 }
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
    let waiters = PollWaiters()
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
        pollHold: Duration, maxConnections: Int, logger: Logger
    ) {
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
    }

    /// Runs store work that may write (and so wait for another process's lock) on the one writer thread.
    func onWriter<T: Sendable>(_ body: @escaping @Sendable (ControlPlane) throws -> T) async throws -> T {
        try await groupCommit.perform(body)
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
            status: 200, contentType: "text/plain; version=0.0.4", text: metrics.text(sampling: executors, connections: connections),
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
    func text(sampling executors: [BlockingExecutor], connections: ConnectionLimiter) -> String {
        for executor in executors {
            gauge("blocking_queue_length", "Jobs waiting for a thread of a blocking executor.", labels: [("executor", executor.name)])
                .set(Int64(executor.queueLength))
        }
        gauge("connections", "Open client connections.").set(Int64(connections.openCount))
        return registry.emitToString()
    }
}

/// When each instance's agent last called the command service, from where and as what; kept in memory on every call
/// and written to the state file every few seconds (``flush()``), so a fleet's polls cost no writes of their own.
final class AgentContacts: Sendable {
    private struct Entries {
        var latest: [String: AgentContactRecord] = [:]
        var unwritten: Set<String> = []
    }
    private let entries = Mutex(Entries())

    func record(_ instance: String, address: String, agent: String) {
        let contact = AgentContactRecord(
            instanceName: instance, lastSeen: Date().timeIntervalSince1970, address: address, agent: String(agent.prefix(200)))
        entries.withLock {
            $0.latest[instance] = contact
            $0.unwritten.insert(instance)
        }
    }

    /// Contacts not written yet (for answers that must not lag the file).
    var unwritten: [AgentContactRecord] {
        entries.withLock { e in e.unwritten.compactMap { e.latest[$0] } }
    }

    /// Takes the contacts to write; `restore` puts them back when the write failed.
    func take() -> [AgentContactRecord] {
        entries.withLock { e in
            defer { e.unwritten.removeAll() }
            return e.unwritten.compactMap { e.latest[$0] }
        }
    }

    func restore(_ contacts: [AgentContactRecord]) {
        entries.withLock { e in
            for contact in contacts where e.latest[contact.instanceName] == contact { e.unwritten.insert(contact.instanceName) }
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
