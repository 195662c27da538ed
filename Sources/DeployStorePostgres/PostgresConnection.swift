import CLibPQ
import Foundation

/// What went wrong talking to PostgreSQL: the server's SQLSTATE when it gave one, and its message. Messages never
/// carry the connection URL's password (libpq does not print it, and ``DatabaseURL`` redacts what we print).
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    /// The five-character SQLSTATE; nil when the connection failed before the server answered.
    public var sqlState: String?
    public var message: String

    public var description: String { sqlState.map { "\(message) (SQLSTATE \($0))" } ?? message }

    /// A serialization failure or a deadlock: the transaction can run again from the start and may succeed.
    var isRetryable: Bool { sqlState == "40001" || sqlState == "40P01" }

    /// The connection is gone or the server is shutting down (class 08, 57P01-57P03): nothing this transaction did
    /// can be known to have committed unless the commit itself answered.
    var isConnectionLoss: Bool {
        guard let sqlState else { return true }
        return sqlState.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(sqlState)
    }
}

/// A value bound to a statement parameter, sent as text (PostgreSQL infers each parameter's type from the statement).
protocol PostgresParameter {
    var postgresText: String { get }
}

extension String: PostgresParameter { var postgresText: String { self } }
extension Int: PostgresParameter { var postgresText: String { String(self) } }
extension Int32: PostgresParameter { var postgresText: String { String(self) } }
extension Int64: PostgresParameter { var postgresText: String { String(self) } }
extension Bool: PostgresParameter { var postgresText: String { self ? "1" : "0" } }
extension Double: PostgresParameter {
    var postgresText: String {
        if isNaN { return "NaN" }
        if isInfinite { return self < 0 ? "-Infinity" : "Infinity" }
        // Swift prints the shortest text that reads back as the same double; so does PostgreSQL (float8 output).
        return String(self)
    }
}

/// One row of a result, its columns by position (statements name their columns in the order they are read).
struct PostgresRow {
    let values: [String?]

    func string(_ column: Int) -> String { values[column] ?? "" }
    func optionalString(_ column: Int) -> String? { values[column] }
    func int(_ column: Int) -> Int { values[column].flatMap { Int($0) } ?? 0 }
    func int64(_ column: Int) -> Int64 { values[column].flatMap { Int64($0) } ?? 0 }
    func optionalInt64(_ column: Int) -> Int64? { values[column].flatMap { Int64($0) } }
    func optionalInt(_ column: Int) -> Int? { values[column].flatMap { Int($0) } }
    func double(_ column: Int) -> Double { optionalDouble(column) ?? 0 }
    func optionalDouble(_ column: Int) -> Double? {
        guard let text = values[column] else { return nil }
        switch text {
        case "Infinity": return .infinity
        case "-Infinity": return -.infinity
        case "NaN": return .nan
        default: return Double(text)
        }
    }
    func bool(_ column: Int) -> Bool { values[column] == "1" || values[column] == "t" || values[column] == "true" }
    func date(_ column: Int) -> Date { Date(timeIntervalSince1970: double(column)) }
}

/// One libpq connection, used by one thread at a time (the pool hands it out whole). Statements are prepared once per
/// connection and then run by name, so the server parses and plans each SQL text once.
final class PostgresConnection: @unchecked Sendable {
    private let handle: OpaquePointer
    private var prepared: [String: String] = [:]
    /// The server process serving this connection (a notification names its sender by it).
    let backendPID: Int32

    init(conninfo: String) throws(PostgresError) {
        if let failure = deployctl_libpq_load() {
            throw PostgresError(sqlState: nil, message: String(cString: failure))
        }
        guard let handle = deployctl_pq_connect(conninfo) else {
            throw PostgresError(sqlState: nil, message: "libpq could not allocate a connection")
        }
        guard deployctl_pq_status_ok(handle) != 0 else {
            let message = String(cString: deployctl_pq_error_message(handle)).trimmingCharacters(in: .whitespacesAndNewlines)
            deployctl_pq_finish(handle)
            throw PostgresError(sqlState: "08001", message: "cannot connect to PostgreSQL: \(message)")
        }
        self.handle = handle
        backendPID = deployctl_pq_backend_pid(handle)
        // Notices ("relation already exists, skipping") are not for deployctl's users. A session that stops talking
        // inside a transaction (a replica hung while holding the write lock) is ended by the server, lock and all.
        try run("SET client_min_messages TO warning; SET idle_in_transaction_session_timeout TO '60s'")
    }

    deinit { deployctl_pq_finish(handle) }

    /// Whether the connection can still be used: it is not broken, not left inside a transaction or a pipeline, and
    /// has nothing queued (an answer it owes, ``commitOwing()``'s, is read on its next use).
    var isUsable: Bool {
        guard deployctl_pq_status_ok(handle) != 0, queue.isEmpty else { return false }
        return owing || (deployctl_pq_transaction_status(handle) == 0 && deployctl_pq_pipeline_off(handle) != 0)
    }

    /// A statement that goes to the server with the next round trip rather than on its own.
    private struct Queued {
        /// A statement without parameters, or (nil) the prepared statement `name`.
        var sql: String?
        var name: String?
        var parameters: [String?] = []
        /// BEGIN, the write lock, SAVEPOINT: they open something, and sending them is pointless when nothing follows.
        var opening: Bool
    }

    private var queue: [Queued] = []
    /// How many times the queue was sent: a ``Mark`` taken before the latest send names statements already sent.
    private var sends = 0
    /// A COMMIT was sent and its answer not read yet (``commitOwing()``).
    private var owing = false

    /// Where a statement was queued (``sendWithNext(_:)``).
    struct Mark {
        fileprivate let sends: Int
        fileprivate let index: Int
    }

    /// Queues `sql`, a statement without parameters that opens something (BEGIN, SAVEPOINT), to go with the next
    /// statement: it costs no round trip of its own, and nothing at all when no statement follows (``dropIfIdle(_:)``).
    @discardableResult
    func sendWithNext(_ sql: String) -> Mark {
        queue.append(Queued(sql: sql, opening: true))
        return Mark(sends: sends, index: queue.count - 1)
    }

    /// Queues the statement `sql` with its parameters to go with the next round trip: a write whose answer the
    /// caller does not need (its failure is seen by whatever statement or ``flush()`` sends it), or with `opening`,
    /// one such as the write lock that is pointless alone.
    @discardableResult
    func sendWithNext(_ sql: String, _ parameters: [(any PostgresParameter)?], opening: Bool = false) throws(PostgresError) -> Mark {
        let name = try preparedName(sql, count: parameters.count)
        queue.append(Queued(sql: nil, name: name, parameters: parameters.map { $0?.postgresText }, opening: opening))
        return Mark(sends: sends, index: queue.count - 1)
    }

    /// Whether what was queued at `mark` has not been sent.
    private func isUnsent(_ mark: Mark) -> Bool { mark.sends == sends && queue.count > mark.index }

    /// Success: drops what was queued from `mark` on when none of it was sent and all of it only opens something (a
    /// request that ran no statement needs no savepoint, a transaction that ran none no BEGIN or COMMIT). True when
    /// it did.
    func dropIfIdle(_ mark: Mark) -> Bool {
        guard isUnsent(mark), queue[mark.index...].allSatisfy(\.opening) else { return false }
        queue.removeSubrange(mark.index...)
        return true
    }

    /// Failure: drops everything still queued. True when what was queued at `mark` was among it (nothing from the
    /// mark on reached the server, so there is nothing to roll back to it); false when the caller must roll back.
    func takeBack(_ mark: Mark) -> Bool {
        let unsent = isUnsent(mark)
        if unsent { queue.removeSubrange(mark.index...) } else { queue.removeAll() }
        return unsent
    }

    /// Sends the queue now if it holds a write (one round trip; its failure is thrown here).
    func flush() throws(PostgresError) {
        guard queue.contains(where: { !$0.opening }) else { return }
        let result = try send(queue)
        deployctl_pq_clear(result)
    }

    /// Sends COMMIT without waiting for its answer (a read-only transaction's, which has nothing to make durable:
    /// the server ends the transaction as soon as the message arrives); the answer is read on the connection's next
    /// use (``settle()``), so a read costs the round trips of its statements only.
    func commitOwing() throws(PostgresError) {
        try settle()
        if !queue.isEmpty { try flush() }
        guard deployctl_pq_send_owing(handle, "COMMIT") != 0 else {
            throw PostgresError(sqlState: "08006", message: String(cString: deployctl_pq_error_message(handle)))
        }
        owing = true
    }

    /// Reads the answer ``commitOwing()`` left; throws when it was a failure or the connection is gone.
    func settle() throws(PostgresError) {
        guard owing else { return }
        owing = false
        guard deployctl_pq_settle(handle) != 0 else {
            let message = String(cString: deployctl_pq_error_message(handle)).trimmingCharacters(in: .whitespacesAndNewlines)
            throw PostgresError(sqlState: "08006", message: message.isEmpty ? "a read-only transaction's COMMIT failed" : message)
        }
    }

    /// Runs one or more statements without parameters or rows (BEGIN, COMMIT, the schema's DDL); what is queued goes
    /// first, in the same round trip when `sql` is one statement.
    func run(_ sql: String) throws(PostgresError) {
        try settle()
        if !queue.isEmpty {
            if !sql.contains(";") {
                let result = try send(queue + [Queued(sql: sql, opening: false)])
                deployctl_pq_clear(result)
                return
            }
            deployctl_pq_clear(try send(queue))
        }
        let result = deployctl_pq_exec(handle, sql)
        defer { deployctl_pq_clear(result) }
        try check(result)
    }

    private func preparedName(_ sql: String, count: Int) throws(PostgresError) -> String {
        if let known = prepared[sql] { return known }
        try settle()
        let name = "s\(prepared.count + 1)"
        let result = deployctl_pq_prepare(handle, name, sql, Int32(count))
        defer { deployctl_pq_clear(result) }
        try check(result)
        prepared[sql] = name
        return name
    }

    /// Runs a statement with parameters (after what is queued, in the same round trip); answers its rows and how
    /// many rows it changed.
    @discardableResult
    func query(_ sql: String, _ parameters: [(any PostgresParameter)?] = []) throws(PostgresError) -> (rows: [PostgresRow], affected: Int) {
        try settle()
        let name = try preparedName(sql, count: parameters.count)
        let texts = parameters.map { $0?.postgresText }
        let result: OpaquePointer?
        if queue.isEmpty {
            result = withCStrings(texts) { pointers in deployctl_pq_exec_prepared(handle, name, Int32(pointers.count), pointers) }
            do { try check(result) } catch {
                deployctl_pq_clear(result)
                throw error
            }
        } else {
            result = try send(queue + [Queued(sql: nil, name: name, parameters: texts, opening: false)])
        }
        defer { deployctl_pq_clear(result) }
        guard let result else { return ([], 0) }
        let rowCount = Int(deployctl_pq_rows(result))
        let columnCount = Int(deployctl_pq_columns(result))
        var rows: [PostgresRow] = []
        rows.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(columnCount)
            for column in 0..<columnCount {
                if deployctl_pq_is_null(result, Int32(row), Int32(column)) != 0 {
                    values.append(nil)
                } else {
                    values.append(String(cString: deployctl_pq_value(result, Int32(row), Int32(column))))
                }
            }
            rows.append(PostgresRow(values: values))
        }
        let affected = Int(String(cString: deployctl_pq_affected(result))) ?? 0
        return (rows, affected)
    }

    /// Sends `steps` in one pipeline (the queue is emptied: it is part of them) and answers the last one's result,
    /// or throws the first failure.
    private func send(_ steps: [Queued]) throws(PostgresError) -> OpaquePointer? {
        try settle()
        queue.removeAll()
        sends += 1
        var owned: [UnsafeMutablePointer<CChar>?] = []
        var lists: [UnsafeMutablePointer<UnsafePointer<CChar>?>] = []
        defer {
            for pointer in owned { free(pointer) }
            for list in lists { list.deallocate() }
        }
        func copy(_ text: String?) -> UnsafePointer<CChar>? {
            guard let text, let pointer = strdup(text) else { return nil }
            owned.append(pointer)
            return UnsafePointer(pointer)
        }
        var cSteps: [deployctl_pq_step] = []
        cSteps.reserveCapacity(steps.count)
        for step in steps {
            let list = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: max(step.parameters.count, 1))
            lists.append(list)
            for (index, value) in step.parameters.enumerated() { list[index] = copy(value) }
            cSteps.append(
                deployctl_pq_step(sql: copy(step.sql), name: copy(step.name), count: Int32(step.parameters.count), values: UnsafePointer(list)))
        }
        var failed: Int32 = -1
        let result = cSteps.withUnsafeBufferPointer { buffer in deployctl_pq_pipeline(handle, buffer.baseAddress, Int32(buffer.count), &failed) }
        do { try check(result) } catch {
            deployctl_pq_clear(result)
            throw error
        }
        return result
    }

    /// The socket libpq reads notifications from.
    var socket: Int32 { deployctl_pq_socket(handle) }

    /// Reads what the server sent and answers the notifications' senders; throws when the connection is lost.
    func notifications() throws(PostgresError) -> [(channel: String, sender: Int32, payload: String)] {
        guard deployctl_pq_consume_input(handle) != 0 else {
            throw PostgresError(sqlState: "08006", message: String(cString: deployctl_pq_error_message(handle)))
        }
        var received: [(String, Int32, String)] = []
        var channel = [CChar](repeating: 0, count: 64)
        var payload = [CChar](repeating: 0, count: 8_192)
        var sender: Int32 = 0
        func text(_ buffer: [CChar]) -> String {
            String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        while deployctl_pq_next_notification(handle, &channel, Int32(channel.count), &payload, Int32(payload.count), &sender) != 0 {
            received.append((text(channel), sender, text(payload)))
        }
        return received
    }

    private func check(_ result: OpaquePointer?) throws(PostgresError) {
        let status = deployctl_pq_result_status(result)
        if status == 1 || status == 2 { return }
        let state = deployctl_pq_sqlstate(result).map { String(cString: $0) }
        var message = String(cString: deployctl_pq_result_error(result)).trimmingCharacters(in: .whitespacesAndNewlines)
        if message.isEmpty { message = String(cString: deployctl_pq_error_message(handle)).trimmingCharacters(in: .whitespacesAndNewlines) }
        throw PostgresError(sqlState: state ?? (deployctl_pq_status_ok(handle) == 0 ? "08006" : nil), message: message)
    }
}

/// Calls `body` with C strings for `texts` (NULL for nil), valid for the call.
private func withCStrings<R>(_ texts: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    var owned: [UnsafeMutablePointer<CChar>?] = texts.map { $0.map { strdup($0) } ?? nil }
    defer { for pointer in owned { free(pointer) } }
    return owned.withUnsafeMutableBufferPointer { buffer in
        body(buffer.map { $0.map { UnsafePointer($0) } })
    }
}
