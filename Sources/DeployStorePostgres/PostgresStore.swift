import DeployModel
public import DeployStore
import Foundation
import Synchronization

/// The ``DeployStore`` on PostgreSQL, for several `deployctl server` replicas on one database (ARCHITECTURE.md,
/// "Several servers"). libpq, synchronous, on the caller's thread: the store protocol is synchronous and the server
/// already runs every store call on its bounded blocking executors.
///
/// **Writes** are serialized across every replica by a transaction-level advisory lock taken first in each write
/// transaction (READ COMMITTED under it: each statement sees every write committed before the lock was granted).
/// That is SQLite's one-writer model on a shared database, and it gives each invariant ``DeployStore`` states for
/// any number of replicas without relying on each rule's queries: a command is inserted once (and the unique key
/// says so twice), a group gets one active deployment, an overdue command is failed once, an event's sequence
/// number commits in order. A replica killed inside a write loses its session, and PostgreSQL releases the lock.
/// **Reads** run in REPEATABLE READ READ ONLY transactions: one snapshot, never waiting for a writer.
/// A serialization failure or deadlock is retried here; a lost connection or a database that is down is a
/// ``ServiceUnavailable`` (the server answers 503, which clients retry), and the pool reconnects with back-off.
public final class PostgresStore: DeployStore, Sendable {
    public let url: DatabaseURL
    private let pool: ConnectionPool
    private let state = Mutex(Counters())
    /// The advisory lock key every write transaction takes ("dcwrite" in ASCII).
    static let writeLock: Int64 = 0x64_63_77_72_69_74_65
    /// Queues the write lock to go with the transaction's first statement (BEGIN is queued before it).
    static func queueWriteLock(on connection: PostgresConnection) throws(PostgresError) {
        try connection.sendWithNext("SELECT pg_advisory_xact_lock($1::bigint)", [writeLock], opening: true)
    }

    /// The channel write transactions notify when they change work or access (deployments, targets, commands, keys,
    /// instances); replicas LISTEN on it.
    static let channel = "deployctl_changes"

    struct Counters {
        /// Commits of this process that changed work, plus changes announced by other replicas.
        var workChanges: UInt64 = 0
        /// Changes announced by other replicas (and listener reconnections, which may have missed some).
        var externalChanges = 0
        var retries = 0
        var listenerReconnects = 0
        var listening = false
        /// What other replicas changed since ``takeExternalChanges()`` last answered.
        var pending = ExternalChanges()
    }

    /// What other replicas committed: whether keys or instances changed, and whose polls may find new work (every
    /// instance's when `allInstances`).
    public struct ExternalChanges: Sendable, Equatable {
        public var access = false
        public var allInstances = false
        public var instances: Set<String> = []

        public init() {}

        public var isEmpty: Bool { !access && !allInstances && instances.isEmpty }

        mutating func merge(payload: String) {
            let parts = payload.split(separator: "\n", omittingEmptySubsequences: false)
            guard let head = parts.first else { return }
            if head.contains("a") { access = true }
            if head.contains("*") { allInstances = true }
            if head.contains("w") { instances.formUnion(parts.dropFirst().map(String.init)) }
        }
    }

    /// Takes what other replicas announced since the last call (the server's clock asks once a second).
    public func takeExternalChanges() -> ExternalChanges {
        state.withLock { state in
            let taken = state.pending
            state.pending = ExternalChanges()
            return taken
        }
    }

    /// The notification's text: a head of flags (`a` access, `w` work, `*` every instance) and the instances whose
    /// polls may find new work, one per line; `*` when they do not fit PostgreSQL's 8,000-byte payload.
    static func payload(access: Bool, work: Bool, instances: Set<String>?) -> String {
        var head = (access ? "a" : "") + (work ? "w" : "")
        guard work else { return head }
        guard let instances else { return head + "*" }
        let body = instances.sorted().joined(separator: "\n")
        if body.utf8.count > 7_000 { return head + "*" }
        head += instances.isEmpty ? "" : "\n" + body
        return head
    }

    /// Connects (at most `maxConnections` at once) and brings the schema up to date (once, whatever the number of
    /// replicas starting together: ``PostgresSchema``).
    public init(url: DatabaseURL, maxConnections: Int = 16) throws(PostgresError) {
        self.url = url
        pool = ConnectionPool(conninfo: url.conninfo, capacity: maxConnections)
        let connection = try pool.take()
        defer { pool.give(connection) }
        try PostgresSchema.migrate(connection)
    }

    /// What the server's `/metrics` shows of the store.
    public struct Statistics: Sendable {
        public var connectionsOpen: Int
        public var connectionFailures: Int
        public var reconnects: Int
        public var retries: Int
        public var listenerReconnects: Int
        public var available: Bool
    }

    public var statistics: Statistics {
        let pool = pool.statistics
        return state.withLock {
            Statistics(
                connectionsOpen: pool.open, connectionFailures: pool.failures, reconnects: pool.reconnects, retries: $0.retries,
                listenerReconnects: $0.listenerReconnects, available: pool.available)
        }
    }

    /// Counts commits that changed deployments, targets or host commands, by this process or (once notified) by
    /// another replica: the server's settled-poll memo is keyed on it.
    public var workChanges: UInt64 { state.withLock { $0.workChanges } }

    /// Changes another replica announced (a key deactivated, a deployment created): the server drops what it
    /// remembers of keys and wakes held polls when it moves.
    public var externalChangeCount: Int { state.withLock { $0.externalChanges } }

    public func read<T>(_ body: (any StoreTransaction) throws -> T) throws -> T {
        try transaction(writing: false, body)
    }

    public func write<T>(_ body: (any StoreTransaction) throws -> T) throws -> T {
        try transaction(writing: true, body)
    }

    /// Group commit, as on the state file (`GroupCommit` in the server): the writes `body` makes on this thread run
    /// in one transaction (one lock, one commit, one fsync), each in a savepoint of its own, so a failed one leaves no
    /// trace and the others stay; reads inside see them. A lost connection fails the whole group (the server then
    /// answers each request with the error).
    public func batched<T>(_ body: () throws -> T) throws -> T {
        if batches.current != nil { return try body() }
        let connection: PostgresConnection
        do {
            connection = try pool.take()
        } catch {
            throw ServiceUnavailable("the database is unavailable: \(error.message)")
        }
        var healthy = true
        defer { pool.give(connection, healthy: healthy) }
        let batch = Batch(connection: connection)
        // BEGIN and the lock go with the group's first statement; a group that runs none sends nothing.
        let begin = connection.sendWithNext("BEGIN")
        do {
            try Self.queueWriteLock(on: connection)
        } catch {
            _ = connection.takeBack(begin)
            healthy = !error.isConnectionLoss
            throw ServiceUnavailable("the database is unavailable: \(error.message)")
        }
        batches.current = batch
        defer { batches.current = nil }
        let value: T
        do {
            value = try body()
            if batch.changed {
                try connection.sendWithNext(
                    "SELECT pg_notify($1, $2)", [Self.channel, Self.payload(access: batch.access, work: true, instances: batch.instances)])
            }
            // The notification and COMMIT in one round trip.
            if !connection.dropIfIdle(begin) { try connection.run("COMMIT") }
        } catch let failure as PostgresError {
            if !connection.takeBack(begin) { try? connection.run("ROLLBACK") }
            healthy = !failure.isConnectionLoss
            throw ServiceUnavailable("the database connection was lost before the group committed (\(failure.message)); the requests may be retried")
        } catch {
            if !connection.takeBack(begin) { try? connection.run("ROLLBACK") }
            throw error
        }
        if batch.changed { state.withLock { $0.workChanges &+= 1 } }
        return value
    }

    /// The group ``batched(_:)`` runs on each thread.
    private let batches = ThreadBatches()

    /// One write (or read) inside the current group: a savepoint on the group's connection.
    private func inBatch<T>(_ batch: Batch, writing: Bool, _ body: (any StoreTransaction) throws -> T) throws -> T {
        let transaction = PostgresTransaction(connection: batch.connection, writable: true, cache: batch.cache)
        guard writing else { return try body(transaction) }
        // Savepoints of one name nest; a success leaves its own in place (a RELEASE would be one more round trip for
        // each request of the group), and a failure rolls back to its own, the newest of that name.
        // Sent with the request's first statement; a request that sends none needs no savepoint.
        let savepoint = batch.connection.sendWithNext("SAVEPOINT write")
        do {
            let value = try body(transaction)
            // The request's writes still queued go now: a failure among them is this request's, not the next one's.
            if !batch.connection.dropIfIdle(savepoint) { try batch.connection.flush() }
            if transaction.changedWork || transaction.changedAccess {
                batch.changed = true
                batch.access = batch.access || transaction.changedAccess
                if let touched = transaction.touchedInstances, transaction.changedWork {
                    batch.instances?.formUnion(touched)
                } else if transaction.changedWork {
                    batch.instances = nil
                }
            }
            return value
        } catch {
            if !batch.connection.takeBack(savepoint) {
                try? batch.connection.run("ROLLBACK TO SAVEPOINT write; RELEASE SAVEPOINT write")
            }
            batch.cache = RowCache()
            throw error
        }
    }

    private func transaction<T>(writing: Bool, _ body: (any StoreTransaction) throws -> T) throws -> T {
        if let batch = batches.current { return try inBatch(batch, writing: writing, body) }
        var attempt = 0
        while true {
            attempt += 1
            let connection: PostgresConnection
            do {
                connection = try pool.take()
            } catch {
                throw ServiceUnavailable("the database is unavailable: \(error.message)")
            }
            var healthy = true
            var committing = false
            defer { pool.give(connection, healthy: healthy) }
            // BEGIN (and a write's lock) go with the first statement: one round trip.
            let begin = connection.sendWithNext(writing ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            do {
                if writing { try Self.queueWriteLock(on: connection) }
                let transaction = PostgresTransaction(connection: connection, writable: writing)
                let value: T
                do {
                    value = try body(transaction)
                } catch {
                    if !connection.takeBack(begin) { try? connection.run("ROLLBACK") }
                    if let failure = error as? PostgresError { throw failure }
                    throw BodyError(error: error)
                }
                if transaction.changedWork || transaction.changedAccess {
                    try connection.sendWithNext(
                        "SELECT pg_notify($1, $2)",
                        [
                            Self.channel,
                            Self.payload(access: transaction.changedAccess, work: transaction.changedWork, instances: transaction.touchedInstances),
                        ])
                }
                // A transaction that ran no statement never began. A write's queued statements, its notification and
                // COMMIT go in one round trip; a read's COMMIT is not waited for.
                if !connection.dropIfIdle(begin) {
                    if writing {
                        committing = true
                        try connection.run("COMMIT")
                    } else {
                        // The snapshot's reads are done: a connection lost now costs the connection, not the answer.
                        do { try connection.commitOwing() } catch { healthy = false }
                    }
                }
                if transaction.changedWork || transaction.changedAccess { state.withLock { $0.workChanges &+= 1 } }
                return value
            } catch let failure as PostgresError {
                if !connection.takeBack(begin) { try? connection.run("ROLLBACK") }
                if failure.isRetryable, attempt < 20 {
                    state.withLock { $0.retries += 1 }
                    usleep(UInt32.random(in: 1_000...(5_000 * UInt32(min(attempt, 10)))))
                    continue
                }
                if failure.isConnectionLoss {
                    healthy = false
                    // Nothing was committed before COMMIT was sent: once more on a new connection (the old one may
                    // have died with a restart the database has already recovered from).
                    if !committing, attempt < 3 {
                        state.withLock { $0.retries += 1 }
                        continue
                    }
                    throw ServiceUnavailable(
                        committing
                            ? "the database connection was lost while committing (\(failure.message)): the change may or may not be saved; read before retrying a change that is not idempotent"
                            : "the database connection was lost (\(failure.message)); nothing was changed, and the request may be retried")
                }
                throw failure
            } catch let wrapped as BodyError {
                throw wrapped.error
            }
        }
    }

    /// An error of the transaction's body (a rule refusing), carried past the retry logic unchanged.
    private struct BodyError: Error { let error: any Error }

    /// Starts a thread that LISTENs for other replicas' changes (``externalChangeCount``, ``workChanges``); it
    /// reconnects by itself with back-off, counting a reconnection as a change (notifications may have been missed).
    public func listen() {
        let start = state.withLock { state -> Bool in
            if state.listening { return false }
            state.listening = true
            return true
        }
        guard start else { return }
        let thread = Thread { [self] in listenForever() }
        thread.name = "deployctl-postgres-listen"
        thread.start()
    }

    private func listenForever() {
        var backoff = 0.1
        var first = true
        while true {
            do {
                let connection = try PostgresConnection(conninfo: url.conninfo)
                try connection.run("LISTEN \(Self.channel)")
                backoff = 0.1
                if !first {
                    state.withLock {
                        $0.listenerReconnects += 1
                        $0.externalChanges += 1
                        $0.workChanges &+= 1
                        // Notifications may have been missed: keys may have changed, any poll may have work.
                        $0.pending.access = true
                        $0.pending.allInstances = true
                    }
                }
                first = false
                while true {
                    var descriptor = pollfd(fd: connection.socket, events: Int16(POLLIN), revents: 0)
                    _ = poll(&descriptor, 1, 1000)
                    let received = try connection.notifications()
                    let own = pool.backendPIDs
                    let foreign = received.filter { !own.contains($0.sender) }
                    if !foreign.isEmpty {
                        state.withLock {
                            $0.externalChanges += 1
                            $0.workChanges &+= 1
                            for notification in foreign { $0.pending.merge(payload: notification.payload) }
                        }
                    }
                }
            } catch {
                Thread.sleep(forTimeInterval: backoff)
                backoff = min(backoff * 2, 5)
            }
        }
    }
}

/// A group of writes on one connection (``PostgresStore/batched(_:)``).
final class Batch {
    let connection: PostgresConnection
    var changed = false
    var access = false
    var instances: Set<String>? = []
    /// What the group's requests read and wrote so far (``RowCache``).
    var cache = RowCache()

    init(connection: PostgresConnection) { self.connection = connection }
}

/// The group each thread is running, if any (only the thread that opened a group uses it).
final class ThreadBatches: @unchecked Sendable {
    private let lock = NSLock()
    private var byThread: [pthread_t: Batch] = [:]

    var current: Batch? {
        get {
            lock.lock()
            defer { lock.unlock() }
            return byThread[pthread_self()]
        }
        set {
            lock.lock()
            defer { lock.unlock() }
            byThread[pthread_self()] = newValue
        }
    }
}

/// Connections to one database, at most `capacity` open; a caller waits for one when all are in use. After a failed
/// connection attempt, callers fail at once (no new attempt) until a back-off of 0.1 s doubling to 5 s has passed,
/// so a database that is down costs requests nothing but a quick 503.
final class ConnectionPool: @unchecked Sendable {
    private let conninfo: String
    private let capacity: Int
    private let condition = NSCondition()
    private var idle: [PostgresConnection] = []
    private var open = 0
    private var pids: Set<Int32> = []
    private var failures = 0
    private var reconnects = 0
    private var lastFailure: (time: Double, backoff: Double, error: PostgresError)?

    init(conninfo: String, capacity: Int) {
        self.conninfo = conninfo
        self.capacity = max(1, capacity)
    }

    var statistics: (open: Int, failures: Int, reconnects: Int, available: Bool) {
        condition.lock()
        defer { condition.unlock() }
        return (open, failures, reconnects, lastFailure == nil)
    }

    var backendPIDs: Set<Int32> {
        condition.lock()
        defer { condition.unlock() }
        return pids
    }

    func take() throws(PostgresError) -> PostgresConnection {
        condition.lock()
        while true {
            while idle.isEmpty, open >= capacity { condition.wait() }
            // The one given back longest ago: the answer to the COMMIT of the read it last ran
            // (``PostgresConnection/commitOwing()``) has had the most time to arrive.
            guard !idle.isEmpty else { break }
            let connection = idle.removeFirst()
            condition.unlock()
            do {
                try connection.settle()
                return connection
            } catch {
                condition.lock()
                open -= 1
                pids.remove(connection.backendPID)
            }
        }
        let now = Date().timeIntervalSince1970
        if let last = lastFailure, now < last.time + last.backoff {
            condition.unlock()
            throw last.error
        }
        open += 1
        condition.unlock()
        do {
            let connection = try PostgresConnection(conninfo: conninfo)
            condition.lock()
            pids.insert(connection.backendPID)
            if lastFailure != nil { reconnects += 1 }
            lastFailure = nil
            condition.unlock()
            return connection
        } catch {
            condition.lock()
            open -= 1
            failures += 1
            let backoff = min((lastFailure?.backoff ?? 0.05) * 2, 5)
            lastFailure = (now, backoff, error)
            condition.signal()
            condition.unlock()
            throw error
        }
    }

    /// Returns a connection; one that is broken (or was left inside a transaction) is closed instead.
    func give(_ connection: PostgresConnection, healthy: Bool = true) {
        condition.lock()
        defer { condition.unlock() }
        if healthy, connection.isUsable {
            idle.append(connection)
        } else {
            open -= 1
            pids.remove(connection.backendPID)
            // Every idle connection of the same server is likely broken too (a restart): drop them, so the next
            // transactions connect anew rather than each failing once on a dead socket.
            for stale in idle { pids.remove(stale.backendPID) }
            open -= idle.count
            idle.removeAll()
        }
        condition.signal()
    }
}
