public import Foundation
package import GRDB
import ProcFS
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Why the state file could not be opened.
public enum StateFileError: Error, Sendable, Equatable, CustomStringConvertible {
    case cannotCreate(path: String, reason: String)
    case newerSchema(path: String, found: Int, supported: Int)
    case unreadable(path: String, reason: String)
    /// Another process held the write lock for the whole busy timeout.
    case busy(path: String, holder: String, waited: TimeInterval)
    /// The file (or its directory) cannot be written by this user: reads work, changes do not.
    case readOnly(path: String)
    case noSpace(path: String, device: String)
    case notReadable(path: String, detail: String)

    public var description: String {
        switch self {
        case .busy(let path, let holder, let waited):
            return
                "the state file \(path) stayed locked for \(Int(waited)) s by \(holder), which holds a write transaction; try again when it is done (DEPLOYCTL_LOCK_TIMEOUT sets how long to wait)"
        case .readOnly(let path):
            return
                "the state file \(path) (or its directory) is read-only for this user (uid \(getuid())): SQLite must write \((path as NSString).lastPathComponent)-shm and -wal beside it even to read; run as the file's owner or root"
        case .notReadable(let path, let detail):
            return "the state file \(path) cannot be read by this user (uid \(getuid())): \(detail)"
        case .noSpace(let path, let device):
            return
                "no space left on \(device) (\(path)): nothing was changed; SQLite needs room there for the change and for its -wal and -shm files (even to read)"
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
    /// One connection for the CLI and agents; a pool (one writer, concurrent readers) for the server.
    let queue: any DatabaseWriter

    /// How long a writer waits for another process's transaction before giving up (60 s, or
    /// `DEPLOYCTL_LOCK_TIMEOUT` seconds).
    public let busyTimeout: TimeInterval

    public static func defaultBusyTimeout(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> TimeInterval {
        guard let text = environment["DEPLOYCTL_LOCK_TIMEOUT"], let value = Double(text), value.isFinite, value >= 0 else { return 60 }
        return min(value, 3600)
    }

    /// Counts this process's commits that changed deployments, targets or host commands (a server's; nil for a
    /// single connection).
    let workObserver: WorkChangeObserver?

    /// The device and inode the file had when it was opened.
    let identity: (device: UInt64, inode: UInt64)

    ///
    /// `concurrentReaders` above 1 opens a pool: one writer connection (writes in this process queue for it, so no
    /// caller ever sees "database is locked" from its own process) and up to that many reader connections that read
    /// in parallel (the server). 1 keeps a single connection, which opens faster (the CLI, agents).
    public init(path: String, busyTimeout: TimeInterval = StateFile.defaultBusyTimeout(), concurrentReaders: Int = 1) throws(StateFileError) {
        self.path = path
        self.busyTimeout = busyTimeout
        try Self.createIfMissing(path)
        var info = stat()
        identity = stat(path, &info) == 0 ? (UInt64(info.st_dev), UInt64(info.st_ino)) : (0, 0)
        var config = Configuration()
        config.busyMode = .timeout(busyTimeout)
        // WAL is set up below, only when the file is not in WAL mode yet: GRDB's own set-up writes on every open
        // when the -wal file is empty, and a reader must never wait for another process's writer.
        config.journalMode = .default
        config.foreignKeysEnabled = true
        // In WAL mode NORMAL never corrupts the file and a killed process loses nothing committed; only an OS crash
        // or power loss can drop the last transactions. It saves an fsync per commit, which agents make often.
        // The server (a pool of readers) maps the file: in WAL mode every write invalidates each reader's page cache,
        // and re-reading the pages through pread was a quarter of the server's CPU at fleet scale (BENCHMARKS.md).
        let mapping = concurrentReaders > 1 ? "PRAGMA mmap_size = 268435456" : nil
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            if let mapping { try db.execute(sql: mapping) }
        }
        config.label = "deployctl-state"
        // Read before SQLite opens the file: closing any descriptor of it later would drop SQLite's POSIX locks.
        let inWALMode = Self.isWAL(path)
        do {
            if concurrentReaders > 1 {
                config.maximumReaderCount = concurrentReaders
                let pool = try DatabasePool(path: path, configuration: config)
                let observer = WorkChangeObserver()
                pool.add(transactionObserver: observer, extent: .databaseLifetime)
                queue = pool
                workObserver = observer
            } else {
                queue = try DatabaseQueue(path: path, configuration: config)
                workObserver = nil
            }
        } catch {
            throw Self.openFailure(path, error)
        }
        if !inWALMode, concurrentReaders <= 1 {
            do {
                try queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = WAL") }
            } catch {
                throw mapped(error)
            }
        }
        try migrate()
    }

    /// Why the file could not be opened, in terms of permissions where they are the cause.
    static func openFailure(_ path: String, _ error: any Error) -> StateFileError {
        if diskFull(path) { return .noSpace(path: path, device: ProcFS.mountSource(of: path) ?? "the device") }
        if access(path, R_OK) != 0 {
            var info = stat()
            let detail =
                stat(path, &info) == 0
                ? "permission denied (mode \(String(info.st_mode & 0o777, radix: 8)), owner uid \(info.st_uid))" : String(cString: strerror(errno))
            return .notReadable(path: path, detail: detail)
        }
        let directory = (path as NSString).deletingLastPathComponent
        if access(path, W_OK) != 0 || access(directory.isEmpty ? "." : directory, W_OK) != 0 { return .readOnly(path: path) }
        return .unreadable(path: path, reason: reason(error))
    }

    /// Why the path no longer names the file this object has open (deleted, renamed, replaced), or nil. A
    /// long-running process (an agent) checks it: an open descriptor keeps working on a file nobody else sees.
    public func replacement() -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            return "the state file \(path) was deleted or renamed while in use (\(String(cString: strerror(errno)).lowercased()))"
        }
        if (UInt64(info.st_dev), UInt64(info.st_ino)) != identity {
            return "the state file \(path) was replaced by another file while in use (inode \(identity.inode) is now \(info.st_ino))"
        }
        return nil
    }

    /// Whether the file's header says WAL (bytes 18 and 19 are 2): then nothing needs writing to use it. Call it
    /// only before SQLite has the file open (POSIX locks die with any descriptor of the file this process closes).
    static func isWAL(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        guard let header = try? handle.read(upToCount: 20), header.count == 20 else { return false }
        return header[header.startIndex + 18] == 2 && header[header.startIndex + 19] == 2
    }

    /// A database error in words that say what is wrong with which path.
    func mapped(_ error: any Error) -> StateFileError {
        if let error = error as? StateFileError { return error }
        guard let db = error as? DatabaseError else { return .unreadable(path: path, reason: "\(error)") }
        if db.resultCode == .SQLITE_FULL || (db.resultCode == .SQLITE_IOERR && Self.diskFull(path)) {
            return .noSpace(path: path, device: ProcFS.mountSource(of: path) ?? "the device")
        }
        switch db.resultCode {
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return .busy(path: path, holder: Self.lockHolder(path), waited: busyTimeout)
        case .SQLITE_READONLY:
            return .readOnly(path: path)
        case .SQLITE_FULL:
            return .noSpace(path: path, device: ProcFS.mountSource(of: path) ?? "the device")
        case .SQLITE_IOERR where access((path as NSString).deletingLastPathComponent, W_OK) != 0 || access(path, W_OK) != 0:
            return .readOnly(path: path)
        default:
            return .unreadable(path: path, reason: Self.reason(error))
        }
    }

    /// Who holds SQLite's WAL write lock (byte 120 of the -shm file): "pid 1234 (deployctl agent run …)". Read from
    /// /proc/locks, never by opening the file: closing a descriptor of it would drop this process's own SQLite locks.
    static func lockHolder(_ path: String) -> String {
        var info = stat()
        guard stat(path + "-shm", &info) == 0, let locks = try? String(contentsOfFile: "/proc/locks", encoding: .utf8) else {
            return "another process"
        }
        let me = getpid()
        for line in locks.split(separator: "\n") {
            // "1: POSIX  ADVISORY  WRITE 12345 08:01:1234567 120 120"
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 8, fields[1] == "POSIX", fields[3] == "WRITE", let pid = pid_t(fields[4]), pid != me,
                fields[5].split(separator: ":").last.flatMap({ UInt64($0) }) == UInt64(info.st_ino),
                let start = Int(fields[6]), start <= 120, fields[7] == "EOF" || (Int(fields[7]) ?? -1) >= 120
            else { continue }
            return ProcFS.commandLine(of: pid, words: 6, maxCharacters: 200).map { "pid \(pid) (\($0))" } ?? "pid \(pid)"
        }
        return "another process"
    }

    /// Whether the filesystem holding `path` has (almost) no room left: less than 64 KiB for this user.
    static func diskFull(_ path: String) -> Bool {
        var info = statvfs()
        let directory = (path as NSString).deletingLastPathComponent
        guard statvfs(directory.isEmpty ? "." : directory, &info) == 0 else { return false }
        return UInt64(info.f_bavail) * UInt64(info.f_frsize) < 64 << 10
    }

    /// Runs `body` in one IMMEDIATE transaction: it either commits whole or leaves nothing behind.
    /// Database failures become ``StateFileError``s (who holds the lock, a read-only file, a full disk); errors
    /// `body` throws itself pass through.
    package func write<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            // Inside ``batched(_:)``: a savepoint of the group's transaction, whole or nothing like a transaction.
            if let db = batch.current() { return try Self.whole(db, savepoint: true) { try body(db) } }
            return try queue.writeWithoutTransaction { db in try Self.whole(db, savepoint: false) { try body(db) } }
        } catch let error as DatabaseError {
            throw mapped(error)
        }
    }

    /// `body` in an IMMEDIATE transaction, or in a savepoint of the one open: its result when it commits.
    private static func whole<T>(_ db: Database, savepoint: Bool, _ body: () throws -> T) throws -> T {
        var result: T?
        let run = { () throws -> Database.TransactionCompletion in
            result = try body()
            return .commit
        }
        if savepoint { try db.inSavepoint(run) } else { try db.inTransaction(.immediate, run) }
        guard let result else { throw DatabaseError(resultCode: .SQLITE_INTERNAL, message: "transaction produced no result") }
        return result
    }

    /// Runs `body` in a read transaction (a consistent snapshot). In WAL mode it never waits for a writer.
    package func read<T>(_ body: (Database) throws -> T) throws -> T {
        // Inside ``batched(_:)``, a read sees what the group wrote before it (another connection would not).
        if let db = batch.current() {
            do {
                return try body(db)
            } catch let error as DatabaseError {
                throw mapped(error)
            }
        }
        do {
            return try queue.read(body)
        } catch let error as DatabaseError {
            throw mapped(error)
        }
    }

    /// Group commit: every ``write(_:)`` that `body` makes on this thread runs as a savepoint of one IMMEDIATE
    /// transaction, committed when `body` returns. Each write is still whole or nothing (a failed one rolls back to
    /// its savepoint and throws, the others stay); none is visible to other connections, or durable, before the
    /// group commits. The server's writer thread runs the writes that queued up while the previous group committed
    /// this way: one commit (and its WAL pages) instead of one per request.
    package func batched<T>(_ body: () throws -> T) throws -> T {
        do {
            return try queue.writeWithoutTransaction { db in
                try Self.whole(db, savepoint: false) {
                    batch.enter(db)
                    defer { batch.leave() }
                    return try body()
                }
            }
        } catch let error as DatabaseError {
            throw mapped(error)
        }
    }

    /// The connection of the group ``batched(_:)`` runs on the calling thread, if any.
    let batch = BatchConnection()

    /// SQLite's `data_version` as the writer connection sees it: it changes when *another* connection (another
    /// process) commits. Nil when it cannot be read.
    public func externalChangeCount() -> Int? {
        try? queue.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA data_version") }
    }

    /// How many commits of this process changed deployments, their targets or host commands so far: what an agent's
    /// poll looks at. A look that found nothing holds while this (and what other processes commit, see
    /// ``externalChangeCount()``) is unchanged. Nil when the file was opened with one connection.
    public var workChanges: UInt64? { workObserver?.commits.load(ordering: .acquiring) }

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
        } catch {
            throw mapped(error)
        }
    }

    static func reason(_ error: any Error) -> String {
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
        // An existing file is only checked: a reader without write permission must still be able to read it.
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFREG || info.st_mode & S_IFMT == S_IFLNK else {
                throw .unreadable(path: path, reason: "it is not a regular file")
            }
            return
        }
        let fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0o600)
        if fd < 0 {
            if errno == EEXIST { return }
            throw .cannotCreate(path: path, reason: String(cString: strerror(errno)))
        }
        close(fd)
    }
}

/// The writer connection while ``StateFile/batched(_:)`` runs, for its thread only (other threads never see it: they
/// read their own snapshots and queue for the writer as usual).
final class BatchConnection: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`; `db` is only used on `thread`, inside the writer's own transaction.
    private var thread: pthread_t?
    private var db: Database?

    func enter(_ db: Database) {
        lock.withLock {
            thread = pthread_self()
            self.db = db
        }
    }

    func leave() {
        lock.withLock {
            thread = nil
            db = nil
        }
    }

    func current() -> Database? {
        lock.withLock {
            guard let thread, pthread_equal(thread, pthread_self()) != 0 else { return nil }
            return db
        }
    }
}

/// Counts the commits that changed a table an agent's poll looks at, after they commit (GRDB calls it on the writer
/// connection, one transaction at a time). A change rolled back with its savepoint may still be counted: a count too
/// many only costs a look.
final class WorkChangeObserver: TransactionObserver, @unchecked Sendable {
    static let tables: Set<String> = ["deployments", "deployment_targets", "host_commands"]
    let commits = Atomic<UInt64>(0)
    /// Touched only on the writer connection.
    private var changed = false

    func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { Self.tables.contains(eventKind.tableName) }

    func databaseDidChange(with event: DatabaseEvent) {
        changed = true
        stopObservingDatabaseChangesUntilNextTransaction()
    }

    func databaseDidCommit(_ db: Database) {
        if changed { commits.add(1, ordering: .releasing) }
        changed = false
    }

    func databaseDidRollback(_ db: Database) { changed = false }
}
