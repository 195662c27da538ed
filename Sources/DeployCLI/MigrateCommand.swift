import ArgumentParser
import DeployStore
import DeployStorePostgres
import DeployStoreSQLite
import Foundation

/// `deployctl migrate`: copies every record from a state file to a PostgreSQL database or back.
struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        _superCommandName: "deployctl",
        abstract: "Copy all state between a SQLite state file and a PostgreSQL database, verified.",
        discussion: """
            Copies applications, deployment groups and configurations, instances and tags, revisions, deployments with \
            their targets and events, host commands, access keys, agent contacts, alarms, topics, subscriptions and \
            deliveries, in one transaction on the target, then reads the copy back in that transaction and compares each \
            kind's count and checksum with the source's: a copy that does not match is rolled back. Numbers are kept \
            (event sequence numbers, delivery ids), so event-stream cursors and listings stay the same. Agents' leases (a \
            local agent's hold on its instance) are not copied: the agent takes its lease again. Bundles are files: copy \
            the artifacts/ folder beside the state file to the servers' --artifacts-dir yourself.

            A target that already holds anything is refused unless --replace, which erases it in the same transaction. \
            Stop the servers (or the local agents) writing to the source first: what they write during the copy is not in it.

            Examples:
              deployctl migrate --from /var/lib/deployctl/state.db --to postgres://deployctl@db.internal:5432/deployctl
              deployctl migrate --from postgres://deployctl@db.internal/deployctl --to /tmp/back.db
            """)

    @Option(
        name: .customLong("from"), help: ArgumentHelp("The source: a state file's path, or postgres://USER@HOST:PORT/DATABASE.", valueName: "store"))
    var source: String

    @Option(
        name: .customLong("to"), help: ArgumentHelp("The target: a state file's path (made if missing), or a PostgreSQL URL.", valueName: "store"))
    var target: String

    @Flag(name: .customLong("replace"), help: "Erase what the target holds (in the copy's transaction) instead of refusing it.")
    var replace = false

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let from = try open(source, role: "--from", mustExist: true)
        let to = try open(target, role: "--to", mustExist: false)
        let started = Date()
        let report: StoreTransfer.Report
        do {
            report = try StoreTransfer.copy(from: from, to: to, replacing: replace)
        } catch let failure as StoreTransfer.Failure {
            throw CLIFailure.other("deployctl migrate: \(failure.description)")
        } catch {
            throw CLIFailure.other("deployctl migrate: \(error)")
        }
        var lines = ["copied \(describe(source)) to \(describe(target)) in \(String(format: "%.2f", Date().timeIntervalSince(started))) s, verified:"]
        for entry in report {
            lines.append("  \(entry.kind.padding(toLength: 20, withPad: " ", startingAt: 0)) \(String(entry.count).leftPadded(8))  \(entry.checksum)")
        }
        try StandardStreams.out(lines.joined(separator: "\n") + "\n")
    }

    func describe(_ store: String) -> String {
        DatabaseURL.isPostgres(store) ? DatabaseURL.redact(store) : store
    }

    func open(_ text: String, role: String, mustExist: Bool) throws -> any DeployStore {
        if DatabaseURL.isPostgres(text) {
            let url: DatabaseURL
            do {
                url = try DatabaseURL(text, allowPassword: false)
            } catch {
                throw CLIFailure.usage("\(role): \(error.description)")
            }
            return try global.openDatabase(url, maxConnections: 1)
        }
        if mustExist, access(text, F_OK) != 0 {
            throw CLIFailure.usage("\(role) \(text): no such state file (a PostgreSQL database is given as postgres://...)")
        }
        do {
            return SQLiteStore(file: try StateFile(path: text))
        } catch {
            throw CLIFailure.other("\(role) \(text): \(error.description)")
        }
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
