import Foundation

/// A real PostgreSQL cluster for the tests of one test process: Debian's `postgresql` package, `initdb` into a
/// temporary directory as the unprivileged `postgres` user (root may not run a cluster), listening on a Unix socket in
/// that directory only (no TCP port), started on first use and stopped by its PID when the process exits. Each store
/// gets a schema of its own (``freshURL()``), so tests running in parallel never see each other's rows.
public final class PostgresCluster: Sendable {
    public let directory: String
    /// The cluster's server (postmaster) process, stopped at exit.
    public let pid: Int32

    /// The cluster of this process, started on first use; nil with the reason when it cannot be.
    public static let shared: Result<PostgresCluster, ClusterError> = {
        do throws(ClusterError) {
            return .success(try PostgresCluster())
        } catch {
            return .failure(error)
        }
    }()

    public struct ClusterError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The directory of PostgreSQL's server programs (the newest installed major version).
    public static var binaries: String? {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted()
        return versions.last.map { "\(root)/\($0)/bin" }
    }

    private init() throws(ClusterError) {
        guard let bin = Self.binaries, FileManager.default.isExecutableFile(atPath: bin + "/initdb") else {
            throw ClusterError(
                description: "PostgreSQL's server is not installed (apt-get install postgresql); .ci/run and Scripts/setup.sh install it")
        }
        let directory = "/tmp/deployctl-pg-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw ClusterError(description: "cannot create \(directory): \(error)")
        }
        let asRoot = getuid() == 0
        if asRoot {
            guard Self.shell(["chown", "postgres:postgres", directory]) == 0 else {
                throw ClusterError(description: "cannot give \(directory) to the postgres user (does it exist? apt-get install postgresql)")
            }
        }
        let data = directory + "/data"
        let initdb = [bin + "/initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]
        guard Self.shell(asRoot ? ["runuser", "-u", "postgres", "--"] + initdb : initdb, quiet: true) == 0 else {
            throw ClusterError(description: "initdb failed in \(data)")
        }
        let options = "-k \(directory) -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400"
        let start = [bin + "/pg_ctl", "-D", data, "-o", options, "-l", directory + "/server.log", "-w", "start"]
        guard Self.shell(asRoot ? ["runuser", "-u", "postgres", "--"] + start : start, quiet: true) == 0 else {
            let log = (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? ""
            throw ClusterError(description: "pg_ctl start failed: \(log.suffix(500))")
        }
        let pidText = (try? String(contentsOfFile: data + "/postmaster.pid", encoding: .utf8))?.split(separator: "\n").first
        guard let pidText, let pid = Int32(pidText) else {
            throw ClusterError(description: "no postmaster.pid in \(data)")
        }
        self.directory = directory
        self.pid = pid
        clusterToStop = (pid, directory)
        atexit {
            guard let (pid, directory) = clusterToStop else { return }
            // SIGQUIT: PostgreSQL's immediate shutdown; the postmaster ends its own children.
            kill(pid, SIGQUIT)
            for _ in 0..<100 where kill(pid, 0) == 0 { usleep(50_000) }
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// A URL to a schema of its own in the cluster's `postgres` database, created now.
    public func freshURL() throws -> String {
        let schema = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        guard
            Self.shell(
                [(Self.binaries ?? "") + "/psql", "-h", directory, "-U", "postgres", "-qc", "CREATE SCHEMA \(schema)", "postgres"], quiet: true) == 0
        else {
            throw ClusterError(description: "cannot create schema \(schema)")
        }
        return url(schema: schema)
    }

    /// The URL of `schema` (search_path set to it) in the `postgres` database.
    public func url(schema: String) -> String {
        "postgresql:///postgres?host=\(directory)&user=postgres&options=-csearch_path%3D\(schema)"
    }

    /// Runs a program and waits for it (posix_spawn and waitpid: Foundation's Process can wait forever here for a
    /// child whose grandchild, the postmaster, lives on).
    @discardableResult
    static func shell(_ arguments: [String], quiet: Bool = false) -> Int32 {
        var actions: posix_spawn_file_actions_t = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if quiet {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        guard posix_spawnp(&pid, arguments[0], &actions, nil, &argv, environ) == 0 else { return -1 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
    }
}

nonisolated(unsafe) private var clusterToStop: (Int32, String)?
