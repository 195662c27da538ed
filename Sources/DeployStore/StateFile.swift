import Foundation
import GRDB

#if canImport(Glibc)
    import Glibc
#endif

/// Why the state file could not be opened.
public enum StateFileError: Error, Sendable, Equatable, CustomStringConvertible {
    case cannotCreate(path: String, reason: String)
    case newerSchema(path: String, found: Int, supported: Int)
    case unreadable(path: String, reason: String)

    public var description: String {
        switch self {
        case .cannotCreate(let path, let reason):
            return "cannot create the state file \(path): \(reason)"
        case .newerSchema(let path, let found, let supported):
            return
                "the state file \(path) has schema version \(found), written by a newer deployctl; this one understands up to version \(supported). Upgrade deployctl or point --state at another file."
        case .unreadable(let path, let reason):
            return "cannot open the state file \(path): \(reason)"
        }
    }
}

/// Where the state file lives: `--state`, else `$DEPLOYCTL_STATE`, else the per-user default
/// (`$XDG_STATE_HOME/deployctl/state.db`, `~/.local/state/deployctl/state.db`, or `/var/lib/deployctl/state.db` for root).
public enum StateLocation {
    public static func resolve(explicit: String?, environment: [String: String]) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let fromEnv = environment["DEPLOYCTL_STATE"], !fromEnv.isEmpty { return fromEnv }
        if let xdg = environment["XDG_STATE_HOME"], !xdg.isEmpty { return xdg + "/deployctl/state.db" }
        if getuid() == 0 { return "/var/lib/deployctl/state.db" }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return home + "/.local/state/deployctl/state.db"
    }
}

/// The SQLite state file: WAL, a busy timeout so parallel invocations wait for each other,
/// versioned migrations, and one IMMEDIATE transaction per state change.
public final class StateFile: Sendable {
    public let path: String
    let queue: DatabaseQueue

    /// How long a writer waits for another process's transaction before giving up.
    public static let busyTimeout: TimeInterval = 60

    public init(path: String) throws(StateFileError) {
        self.path = path
        try Self.createIfMissing(path)
        var config = Configuration()
        config.busyMode = .timeout(Self.busyTimeout)
        config.journalMode = .wal
        config.foreignKeysEnabled = true
        // In WAL mode NORMAL never corrupts the file and a killed process loses nothing committed; only an OS crash
        // or power loss can drop the last transactions. It saves an fsync per commit, which agents make often.
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        config.label = "deployctl-state"
        do {
            queue = try DatabaseQueue(path: path, configuration: config)
        } catch {
            throw .unreadable(path: path, reason: Self.reason(error))
        }
        try migrate()
    }

    /// Runs `body` in one IMMEDIATE transaction: it either commits whole or leaves nothing behind.
    public func write<T>(_ body: (Database) throws -> T) throws -> T {
        try queue.writeWithoutTransaction { db in
            var result: T?
            try db.inTransaction(.immediate) {
                result = try body(db)
                return .commit
            }
            guard let result else { throw DatabaseError(resultCode: .SQLITE_INTERNAL, message: "transaction produced no result") }
            return result
        }
    }

    /// Runs `body` in a read transaction (a consistent snapshot).
    public func read<T>(_ body: (Database) throws -> T) throws -> T {
        try queue.read(body)
    }

    /// The schema version this build writes.
    public static var schemaVersion: Int { Schema.migrations.count }

    private func migrate() throws(StateFileError) {
        do {
            // The common case, an up-to-date file, needs no write lock: readers never wait for writers.
            let version = try queue.read { try Int.fetchOne($0, sql: "PRAGMA user_version") ?? 0 }
            if version == Schema.migrations.count { return }
            if version > Schema.migrations.count {
                throw StateFileError.newerSchema(path: path, found: version, supported: Schema.migrations.count)
            }
            try queue.writeWithoutTransaction { db in
                try db.inTransaction(.immediate) {
                    let current = try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0
                    if current > Schema.migrations.count {
                        throw StateFileError.newerSchema(path: path, found: current, supported: Schema.migrations.count)
                    }
                    for (index, migration) in Schema.migrations.enumerated() where index >= current {
                        try migration(db)
                    }
                    if current < Schema.migrations.count {
                        try db.execute(sql: "PRAGMA user_version = \(Schema.migrations.count)")
                    }
                    return .commit
                }
            }
        } catch let error as StateFileError {
            throw error
        } catch {
            throw .unreadable(path: path, reason: Self.reason(error))
        }
    }

    private static func reason(_ error: any Error) -> String {
        if let db = error as? DatabaseError { return db.message ?? db.resultCode.description }
        return "\(error)"
    }

    private static func createIfMissing(_ path: String) throws(StateFileError) {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) {
            do {
                try FileManager.default.createDirectory(
                    atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw .cannotCreate(path: path, reason: "cannot create directory \(directory): \(error.localizedDescription)")
            }
        }
        let fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        if fd < 0 {
            throw .cannotCreate(path: path, reason: String(cString: strerror(errno)))
        }
        close(fd)
    }
}
