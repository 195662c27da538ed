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

    /// Whether the connection can still be used (it is not broken, not left inside a transaction or a pipeline, and
    /// owes no statement).
    var isUsable: Bool {
        deployctl_pq_status_ok(handle) != 0 && deployctl_pq_transaction_status(handle) == 0 && deployctl_pq_pipeline_off(handle) != 0
            && pending == nil
    }

    /// A statement without parameters or rows (BEGIN, SAVEPOINT) not sent yet: it goes with the next statement, in
    /// the same round trip (``sendWithNext(_:)``).
    private var pending: String?

    /// Sends `sql` together with the next statement rather than on its own: a transaction's BEGIN or a request's
    /// SAVEPOINT then costs no round trip of its own, and nothing at all when no statement follows
    /// (``takeBackUnsent()``).
    func sendWithNext(_ sql: String) throws(PostgresError) {
        if let earlier = pending {
            pending = nil
            try run(earlier)
        }
        pending = sql
    }

    /// Forgets the statement ``sendWithNext(_:)`` left unsent, if one is: true when there was one (then the BEGIN or
    /// SAVEPOINT never reached the server, and its COMMIT or ROLLBACK must not either).
    func takeBackUnsent() -> Bool {
        defer { pending = nil }
        return pending != nil
    }

    /// Runs one or more statements without parameters or rows (BEGIN, COMMIT, the schema's DDL); a statement left
    /// by ``sendWithNext(_:)`` goes first, in the same message.
    func run(_ sql: String) throws(PostgresError) {
        var sql = sql
        if let earlier = pending {
            pending = nil
            sql = earlier + "; " + sql
        }
        let result = deployctl_pq_exec(handle, sql)
        defer { deployctl_pq_clear(result) }
        try check(result)
    }

    /// Runs a statement with parameters; answers its rows and how many rows it changed.
    @discardableResult
    func query(_ sql: String, _ parameters: [(any PostgresParameter)?] = []) throws(PostgresError) -> (rows: [PostgresRow], affected: Int) {
        let name: String
        if let known = prepared[sql] {
            name = known
        } else {
            name = "s\(prepared.count + 1)"
            let result = deployctl_pq_prepare(handle, name, sql, Int32(parameters.count))
            defer { deployctl_pq_clear(result) }
            try check(result)
            prepared[sql] = name
        }
        let texts = parameters.map { $0?.postgresText }
        let earlier = pending
        pending = nil
        let result = withCStrings(texts) { pointers in
            if let earlier {
                return deployctl_pq_exec_prepared_after(handle, earlier, name, Int32(pointers.count), pointers)
            }
            return deployctl_pq_exec_prepared(handle, name, Int32(pointers.count), pointers)
        }
        defer { deployctl_pq_clear(result) }
        try check(result)
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
