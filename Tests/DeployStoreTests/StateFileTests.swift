import DeployModel
import DeployStore
import Foundation
import GRDB
import Synchronization
import TestSupport
import Testing

@testable import DeployStorePostgres
@testable import DeployStoreSQLite

@Suite struct StateFileTests {
    func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("state-\(UUID().uuidString)/nested/state.db").path
    }

    @Test func createdWithMode0600InWalModeAtTheCurrentSchema() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let state = try StateFile(path: path)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try state.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") } == "wal")
        #expect(try state.read { try Int.fetchOne($0, sql: "PRAGMA user_version") } == StateFile.schemaVersion)
        // Opening again is a no-op upgrade.
        _ = try StateFile(path: path)
    }

    /// Creating a deployment or a revision takes the next `seq` as `MAX(seq) + 1`: answered from an index that starts
    /// with `seq` (a search of one entry), never by reading every deployment or revision.
    @Test func theNextSeqIsFoundInAnIndexNotByReadingTheTable() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let state = try StateFile(path: path)
        for (table, index) in [("deployments", "deployments_by_seq"), ("revisions", "revisions_by_seq")] {
            let plan = try state.read { db in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN SELECT COALESCE(MAX(seq), 0) + 1 FROM \(table)").map { $0["detail"] as String? ?? "" }
            }
            #expect(plan.contains { $0.hasPrefix("SEARCH \(table) USING COVERING INDEX \(index)") }, "\(plan)")
        }
    }

    @Test func aFileFromANewerDeployctlIsRefused() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let state = try StateFile(path: path)
        try state.write { try $0.execute(sql: "PRAGMA user_version = 99") }
        #expect(throws: StateFileError.newerSchema(path: path, found: 99, supported: StateFile.schemaVersion)) {
            _ = try StateFile(path: path)
        }
    }

    @Test func aFailedWriteLeavesNothingBehind() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let state = try StateFile(path: path)
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try state.write { db in
                try db.execute(sql: "INSERT INTO applications (id, name, compute_platform, create_time) VALUES ('1', 'a', 'Server', 0)")
                throw Boom()
            }
        }
        #expect(try state.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM applications") } == 0)
    }

    /// Group commit: each write in a group stays whole or nothing, reads inside see the group's writes, another
    /// connection sees none of them before the group commits, and a failed group leaves nothing.
    @Test func aGroupCommitsItsWritesTogetherEachWholeOrNothing() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let state = try StateFile(path: path, concurrentReaders: 2)
        let other = try StateFile(path: path)
        struct Boom: Error {}
        func insert(_ db: Database, _ id: String) throws {
            try db.execute(
                sql: "INSERT INTO applications (id, name, compute_platform, create_time) VALUES (?, ?, 'Server', 0)", arguments: [id, "app-\(id)"])
        }
        @Sendable func count(_ file: StateFile) throws -> Int {
            try file.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM applications") ?? -1 }
        }
        var seenInside = -1
        let seenOutside = Mutex(-1)
        try state.batched {
            try state.write { try insert($0, "1") }
            #expect(throws: Boom.self) {
                try state.write { db in
                    try insert(db, "2")
                    throw Boom()
                }
            }
            try state.write { try insert($0, "3") }
            seenInside = try count(state)
            // Another thread reads its own snapshot: nothing of the group yet.
            let outside = Thread {
                let seen = (try? count(state)) ?? -2
                seenOutside.withLock { $0 = seen }
            }
            outside.start()
            while !outside.isFinished { usleep(1000) }
        }
        #expect(seenInside == 2)
        #expect(seenOutside.withLock { $0 } == 0)
        #expect(try other.read { try String.fetchAll($0, sql: "SELECT id FROM applications ORDER BY id") } == ["1", "3"])

        #expect(throws: Boom.self) {
            try state.batched {
                try state.write { try insert($0, "4") }
                throw Boom()
            }
        }
        #expect(try count(other) == 2)
    }

    @Test func aFileThatIsNotSQLiteIsAClearError() throws {
        let path = temporaryPath()
        let dir = (path as NSString).deletingLastPathComponent
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data(String(repeating: "not a database ", count: 100).utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: StateFileError.self) { _ = try StateFile(path: path) }
    }

    @Test func locationPrecedence() {
        #expect(StateLocation.resolve(explicit: "/x.db", environment: ["DEPLOYCTL_STATE": "/y.db"]) == "/x.db")
        #expect(StateLocation.resolve(explicit: nil, environment: ["DEPLOYCTL_STATE": "/y.db"]) == "/y.db")
        #expect(StateLocation.resolve(explicit: nil, environment: ["XDG_STATE_HOME": "/s"]) == "/s/deployctl/state.db")
    }
}

/// The store contract, on every store: a write commits whole or not at all; a read cannot write.
@Suite struct StoreContractTests {
    static func stores() throws -> [(String, any DeployStore)] {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("store-\(UUID().uuidString)/state.db").path
        let postgres = try PostgresStore(url: try DatabaseURL(try PostgresCluster.shared.get().freshURL(), allowPassword: false), maxConnections: 2)
        return [("sqlite", SQLiteStore(file: try StateFile(path: path))), ("memory", MemoryStore()), ("postgres", postgres)]
    }

    /// Application "a" and its deployment "d-1" in group "g", with `status`.
    static func insertDeployment(_ tx: any StoreTransaction, status: DeploymentStatus) throws {
        try tx.insertApplication(ApplicationRecord(id: "a", name: "web", computePlatform: "Server", createTime: Date(timeIntervalSince1970: 1)))
        try tx.insertDeployment(
            DeploymentRecord(
                id: "d-1", applicationId: "a", groupId: "g", createTime: Date(timeIntervalSince1970: 2),
                info: DeploymentInfo(deploymentId: "d-1", status: status)))
    }

    @Test func aThrowingWriteLeavesNothingAndAReadCannotWrite() throws {
        struct Boom: Error {}
        for (name, store) in try Self.stores() {
            let record = ApplicationRecord(id: "1", name: "web", computePlatform: "Server", createTime: Date(timeIntervalSince1970: 1))
            #expect(throws: Boom.self, "\(name)") {
                try store.write { tx in
                    try tx.insertApplication(record)
                    _ = try tx.upsertTags([(key: "k", value: "v")], on: .resource("1"))
                    throw Boom()
                }
            }
            #expect(try store.read { try $0.applicationNames() } == [], "\(name)")
            #expect(try store.read { try $0.tags(of: .resource("1")) } == [], "\(name)")
            #expect(throws: (any Error).self, "\(name)") { try store.read { try $0.insertApplication(record) } }
            try store.write { try $0.insertApplication(record) }
            #expect(try store.read { try $0.application(named: "web") } == record, "\(name)")
        }
    }

    /// Group commit on PostgreSQL (the state file's is `StateFileTests.aGroupCommitsItsWritesTogetherEachWholeOrNothing`, on a file opened
    /// with reader connections): inside `batched`, a failed write leaves no trace and the others stay, reads see the
    /// group's writes, another thread sees none of them until the group commits, and a group that throws leaves nothing.
    @Test func aGroupCommitsItsGoodWritesTogether() throws {
        struct Boom: Error {}
        func record(_ id: String) -> ApplicationRecord {
            ApplicationRecord(id: id, name: "app-\(id)", computePlatform: "Server", createTime: Date(timeIntervalSince1970: 1))
        }
        for (name, store) in try Self.stores() where name == "postgres" {
            let seenOutside = Mutex<[String]?>(nil)
            var seenInside: [String] = []
            try store.batched {
                try store.write { try $0.insertApplication(record("1")) }
                #expect(throws: Boom.self, "\(name)") {
                    try store.write { tx in
                        try tx.insertApplication(record("2"))
                        throw Boom()
                    }
                }
                try store.write { try $0.insertApplication(record("3")) }
                seenInside = try store.read { try $0.applicationNames() }
                let outside = Thread {
                    let seen = try? store.read { try $0.applicationNames() }
                    seenOutside.withLock { $0 = seen }
                }
                outside.start()
                while !outside.isFinished { usleep(1000) }
            }
            #expect(seenInside == ["app-1", "app-3"], "\(name)")
            #expect(seenOutside.withLock { $0 } == [], "\(name)")
            #expect(try store.read { try $0.applicationNames() } == ["app-1", "app-3"], "\(name)")
            #expect(throws: Boom.self, "\(name)") {
                try store.batched {
                    try store.write { try $0.insertApplication(record("4")) }
                    throw Boom()
                }
            }
            #expect(try store.read { try $0.applicationNames() } == ["app-1", "app-3"], "\(name)")
        }
    }

    /// Inside a group, a request that fails leaves nothing behind for the next ones either: what it wrote to the
    /// deployment, a target (and so the status counts) and a host command is read back as the group's earlier
    /// requests left it (PostgreSQL keeps what a group read and wrote for its later requests, ``RowCache``).
    @Test func aFailedRequestInAGroupLeavesNothingTheNextRequestsRead() throws {
        struct Boom: Error {}
        for (name, store) in try Self.stores() {
            try store.write { tx in
                try Self.insertDeployment(tx, status: .created)
                try tx.insertTarget(InstanceTarget(deploymentId: "d-1", targetId: "i-1", status: .pending), deploymentId: "d-1", position: 0)
                try tx.insertCommand(HostCommandRecord(id: "c-1", deploymentId: "d-1", instanceName: "i-1", eventName: "Install", deadline: 100))
            }
            var seen: (DeploymentStatus?, TargetStatus?, [String: Int], HostCommandRecord?)?
            try store.batched {
                try store.write { tx in
                    var info = try #require(try tx.deployment(id: "d-1"))
                    info.status = .inProgress
                    try tx.updateDeployment(info)
                    _ = try tx.targetStatusCounts(deploymentId: "d-1")
                    _ = try tx.command(id: "c-1")
                }
                #expect(throws: Boom.self, "\(name)") {
                    try store.write { tx in
                        var info = try #require(try tx.deployment(id: "d-1"))
                        info.status = .failed
                        try tx.updateDeployment(info)
                        var target = try #require(try tx.target(deploymentId: "d-1", instance: "i-1"))
                        target.status = .failed
                        try tx.updateTarget(target)
                        #expect(try tx.targetStatusCounts(deploymentId: "d-1") == ["Failed": 1], "\(name)")
                        _ = try tx.acknowledgeCommand(id: "c-1", deadline: 500)
                        _ = try tx.command(id: "c-1")
                        throw Boom()
                    }
                }
                try store.write { tx in
                    seen = (
                        try tx.deployment(id: "d-1")?.status, try tx.target(deploymentId: "d-1", instance: "i-1")?.status,
                        try tx.targetStatusCounts(deploymentId: "d-1"), try tx.command(id: "c-1")
                    )
                }
            }
            #expect(seen?.0 == .inProgress, "\(name)")
            #expect(seen?.1 == .pending, "\(name)")
            #expect(seen?.2 == ["Pending": 1], "\(name)")
            #expect(seen?.3?.acknowledged == false && seen?.3?.deadline == 100, "\(name)")
            #expect(try store.read { try $0.deployment(id: "d-1")?.status } == .inProgress, "\(name)")
        }
    }

    /// A write the database refuses fails its own request, whether its answer is read at once or (PostgreSQL, which
    /// sends writes whose outcome it knows with the next statement) at the request's next statement, at its end, or
    /// with the COMMIT of a transaction of its own: never another request of the group, never silently. The event
    /// sequence numbers a group's requests are given are the ones stored, across a request rolled back between them.
    @Test func aRefusedWriteFailsItsOwnRequestWheneverItsAnswerIsRead() throws {
        struct Boom: Error {}
        func event(_ n: Int) -> EventRecord {
            EventRecord(time: Double(n), deploymentId: "d-1", applicationName: "web", instanceName: "i-1", body: "{\"n\":\(n)}")
        }
        let duplicate = HostCommandRecord(id: "c-1", deploymentId: "d-1", instanceName: "i-2", eventName: "Install", deadline: 1)
        for (name, store) in try Self.stores() where name != "memory" {  // the memory store has no unique keys
            try store.write { tx in
                try Self.insertDeployment(tx, status: .inProgress)
                for (position, instance) in ["i-1", "i-2"].enumerated() {
                    try tx.insertTarget(
                        InstanceTarget(deploymentId: "d-1", targetId: instance, status: .pending), deploymentId: "d-1", position: position)
                }
                try tx.insertCommand(HostCommandRecord(id: "c-1", deploymentId: "d-1", instanceName: "i-1", eventName: "Install", deadline: 100))
            }
            var given: [Int64] = []
            try store.batched {
                try store.write { tx in given.append(try tx.appendEvent(event(1))) }
                // Refused at the request's end: nothing is read after the duplicate.
                #expect(throws: (any Error).self, "\(name)") {
                    try store.write { tx in
                        var target = try #require(try tx.target(deploymentId: "d-1", instance: "i-1"))
                        target.status = .failed
                        try tx.updateTarget(target)
                        _ = try tx.appendEvent(event(2))
                        try tx.insertCommand(duplicate)
                    }
                }
                try store.write { tx in
                    given.append(try tx.appendEvent(event(3)))
                    given.append(try tx.appendEvent(event(4)))
                    var target = try #require(try tx.target(deploymentId: "d-1", instance: "i-2"))
                    target.status = .inProgress
                    try tx.updateTarget(target)
                    _ = try tx.acknowledgeCommand(id: "c-1", deadline: 300)
                }
                // Refused at the next statement, which throws it.
                #expect(throws: (any Error).self, "\(name)") {
                    try store.write { tx in
                        _ = try tx.command(id: "c-1")
                        _ = try tx.acknowledgeCommand(id: "c-1", deadline: 900)
                        try tx.insertCommand(duplicate)
                        _ = try tx.targetStatusCounts(deploymentId: "d-1")
                    }
                }
                try store.write { tx in given.append(try tx.appendEvent(event(5))) }
            }
            // Refused with the COMMIT of a write of its own.
            #expect(throws: (any Error).self, "\(name)") {
                try store.write { tx in
                    _ = try tx.appendEvent(event(6))
                    try tx.insertCommand(duplicate)
                }
            }
            let stored = try store.read { try $0.events(EventFilter()) }
            #expect(stored.map(\.body) == ["{\"n\":1}", "{\"n\":3}", "{\"n\":4}", "{\"n\":5}"], "\(name)")
            #expect(stored.map(\.sequence) == given, "\(name)")
            #expect(Set(given).count == 4, "\(name)")
            let (counts, command) = try store.read { tx in (try tx.targetStatusCounts(deploymentId: "d-1"), try tx.command(id: "c-1")) }
            #expect(counts == ["Pending": 1, "InProgress": 1], "\(name)")
            #expect(command?.instanceName == "i-1" && command?.acknowledged == true && command?.deadline == 300, "\(name)")
            #expect(try store.read { try $0.target(deploymentId: "d-1", instance: "i-1")?.status } == .pending, "\(name)")
        }
    }

    /// Equal creation times are ordered by creation order, newest first, on both stores.
    @Test func deploymentsAreNewestFirstWithExplicitTieBreaks() throws {
        for (name, store) in try Self.stores() {
            let time = Date(timeIntervalSince1970: 1_800_000_000)
            try store.write { tx in
                for id in ["d-1", "d-2", "d-3"] {
                    try tx.insertDeployment(
                        DeploymentRecord(
                            id: id, applicationId: "a", groupId: "g", createTime: time, info: DeploymentInfo(deploymentId: id, status: .succeeded)))
                }
            }
            #expect(try store.read { try $0.deploymentIds(matching: DeploymentFilter(groupId: "g")) } == ["d-3", "d-2", "d-1"], "\(name)")
            #expect(try store.read { try $0.newestDeployment(groupId: "g", status: "Succeeded", excluding: "d-3")?.deploymentId } == "d-2", "\(name)")
        }
    }

    /// The per-deployment status counts (kept by triggers in SQLite) always equal a recount of the targets, through
    /// inserts, status changes and unchanged saves, on both stores.
    @Test func targetStatusCountsFollowEveryChange() throws {
        for (name, store) in try Self.stores() {
            let statuses: [TargetStatus] = [.pending, .inProgress, .succeeded, .failed, .skipped]
            try store.write { tx in
                try tx.insertApplication(
                    ApplicationRecord(id: "a", name: "web", computePlatform: "Server", createTime: Date(timeIntervalSince1970: 1)))
                for id in ["d-1", "d-2"] {
                    try tx.insertDeployment(
                        DeploymentRecord(
                            id: id, applicationId: "a", groupId: "g", createTime: Date(timeIntervalSince1970: 2),
                            info: DeploymentInfo(deploymentId: id, status: .inProgress)))
                    for i in 0..<40 {
                        try tx.insertTarget(
                            InstanceTarget(deploymentId: id, targetId: "i-\(i)", status: .pending), deploymentId: id, position: i)
                    }
                }
            }
            var generator = SystemRandomNumberGenerator()
            for step in 0..<200 {
                let id = step % 2 == 0 ? "d-1" : "d-2"
                try store.write { tx in
                    var target = try #require(try tx.target(deploymentId: id, instance: "i-\(Int.random(in: 0..<40, using: &generator))"))
                    target.status = statuses.randomElement(using: &generator)
                    try tx.updateTarget(target)
                }
            }
            for id in ["d-1", "d-2"] {
                let recount = Dictionary(grouping: try store.read { try $0.targets(deploymentId: id) }, by: { $0.status?.rawValue ?? "" })
                    .mapValues(\.count)
                #expect(try store.read { try $0.targetStatusCounts(deploymentId: id) } == recount, "\(name) \(id)")
                for status in statuses {
                    #expect(
                        try store.read { try $0.targetCount(deploymentId: id, status: status.rawValue) } == recount[status.rawValue] ?? 0,
                        "\(name) \(id) \(status)")
                }
            }
        }
    }

    /// "Has any command's deadline passed?" never misses one, and a sweep fails exactly the overdue commands,
    /// through random inserts, acknowledgements (a later deadline), deletions and sweeps at a moving clock, on every
    /// store (PostgreSQL answers from a lower bound of the deadlines that a trigger and the sweeps keep).
    @Test func overdueCommandsAreFoundExactlyThroughEveryKindOfChange() throws {
        for (name, store) in try Self.stores() {
            try store.write { tx in
                try Self.insertDeployment(tx, status: .inProgress)
            }
            var model: [String: Double] = [:]
            var now = 1_000.0
            var generator = SystemRandomNumberGenerator()
            var swept = 0
            for step in 0..<400 {
                now += Double.random(in: 0...2, using: &generator)
                let live = model.keys.sorted()
                switch Int.random(in: 0..<4, using: &generator) {
                case 0, 1:
                    let deadline = now + Double.random(in: -3...20, using: &generator)
                    try store.write { tx in
                        try tx.insertCommand(
                            HostCommandRecord(
                                id: "c-\(step)", deploymentId: "d-1", instanceName: "i-\(step)", eventName: "Install", deadline: deadline))
                    }
                    model["c-\(step)"] = deadline
                case 2 where !live.isEmpty:
                    let id = live.randomElement(using: &generator) ?? ""
                    let deadline = now + Double.random(in: 0...40, using: &generator)
                    #expect(try store.write { try $0.acknowledgeCommand(id: id, deadline: deadline) }, "\(name)")
                    model[id] = deadline
                case 3 where !live.isEmpty && step % 3 == 0:
                    let id = live.randomElement(using: &generator) ?? ""
                    try store.write { try $0.deleteCommand(id: id) }
                    model[id] = nil
                default:
                    let failed = try store.write { tx in
                        let overdue = try tx.overdueCommands(now: now)
                        for command in overdue { try tx.deleteCommand(id: command.id) }
                        return overdue.map(\.id)
                    }
                    #expect(Set(failed) == Set(model.filter { $0.value < now }.keys), "\(name) step \(step)")
                    for id in failed { model[id] = nil }
                    swept += failed.count
                }
                if model.values.contains(where: { $0 < now }) {
                    #expect(try store.read { try $0.hasOverdueCommands(now: now) }, "\(name) step \(step)")
                    #expect(try store.read { try $0.hasWork(instance: "elsewhere", now: now, redeliverBefore: 0) }, "\(name) step \(step)")
                }
            }
            // Once the overdue commands are failed, a sweep or two later nothing is said to be overdue.
            for _ in 0..<2 {
                _ = try store.write { tx in try tx.overdueCommands(now: now).map { try tx.deleteCommand(id: $0.id) } }
            }
            let remaining = try store.read { try $0.overdueCommands(now: .infinity) }.map(\.id)
            #expect(Set(remaining) == Set(model.filter { $0.value >= now }.keys), "\(name)")
            #expect(try store.read { try $0.hasOverdueCommands(now: now) } == false, "\(name)")
            #expect(swept > 0, "\(name)")
        }
    }

    /// A PostgreSQL database of schema 1 with commands in it gets the bound of their deadlines (schema 2) from them.
    @Test func theDeadlineBoundOfAnOlderDatabaseIsMadeOnUpgrade() throws {
        let url = try DatabaseURL(try PostgresCluster.shared.get().freshURL(), allowPassword: false)
        let connection = try PostgresConnection(conninfo: url.conninfo)
        try connection.run("CREATE TABLE deployctl_schema (version integer NOT NULL); INSERT INTO deployctl_schema VALUES (1)")
        try connection.run(PostgresSchema.v1)
        try connection.run(
            """
            INSERT INTO deployments (id, application_id, group_id, status, create_time, seq, info) VALUES ('d-1', 'a', 'g', 'InProgress', 2, 1, '{}');
            INSERT INTO host_commands (id, deployment_id, instance_name, event_name, acknowledged, deadline)
                VALUES ('c-1', 'd-1', 'i-1', 'Install', 1, 50), ('c-2', 'd-1', 'i-2', 'Install', 0, 20);
            """)
        let store = try PostgresStore(url: url, maxConnections: 1)
        #expect(try connection.query("SELECT version FROM deployctl_schema").rows.first?.int(0) == 2)
        #expect(try store.read { try $0.hasOverdueCommands(now: 19) } == false)
        #expect(try store.read { try $0.hasOverdueCommands(now: 21) })
        #expect(try store.write { try $0.overdueCommands(now: 21).map(\.id) } == ["c-2"])
    }

    /// A state file from before the counts (schema 6) gets them counted from its targets when it is opened.
    @Test func theCountsOfAnOlderFileAreMadeOnUpgrade() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("state-\(UUID().uuidString)/state.db").path
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let state = try StateFile(path: path)
        try state.write { db in
            try db.execute(
                sql: """
                    DROP TRIGGER deployment_targets_counted_on_insert; DROP TRIGGER deployment_targets_counted_on_delete;
                    DROP TRIGGER deployment_targets_counted_on_update; DROP TABLE deployment_target_counts; DROP TABLE agent_contacts;
                    DROP TABLE events; DROP TABLE alarms; DROP TABLE delivery_attempts; DROP TABLE deliveries; DROP TABLE subscriptions;
                    DROP TABLE topics;
                    INSERT INTO applications (id, name, compute_platform, create_time) VALUES ('a', 'web', 'Server', 0);
                    PRAGMA user_version = 6;
                    """)
        }
        let store = SQLiteStore(file: state)
        try store.write { tx in
            try tx.insertDeployment(
                DeploymentRecord(
                    id: "d-1", applicationId: "a", groupId: "g", createTime: Date(timeIntervalSince1970: 2),
                    info: DeploymentInfo(deploymentId: "d-1", status: .inProgress)))
            for (i, status) in [TargetStatus.succeeded, .succeeded, .failed, .pending].enumerated() {
                try tx.insertTarget(InstanceTarget(deploymentId: "d-1", targetId: "i-\(i)", status: status), deploymentId: "d-1", position: i)
            }
        }
        let upgraded = SQLiteStore(file: try StateFile(path: path))
        #expect(try upgraded.read { try $0.targetStatusCounts(deploymentId: "d-1") } == ["Succeeded": 2, "Failed": 1, "Pending": 1])
    }
}

/// `--database`: a URL's password never reaches a command line or a message.
@Suite struct DatabaseURLTests {
    @Test func aPasswordIsRefusedOnTheCommandLineAndRedactedEverywhere() throws {
        #expect(throws: DatabaseURLError.self) { try DatabaseURL("postgres://deploy:hunter2@db:5432/deployctl", allowPassword: false) }
        let fromEnvironment = try DatabaseURL("postgres://deploy:hunter2@db:5432/deployctl", allowPassword: true)
        #expect(!fromEnvironment.redacted.contains("hunter2"))
        #expect(!"\(fromEnvironment)".contains("hunter2"))
        do {
            _ = try DatabaseURL("postgres://deploy:hunter2@db:5432/deployctl", allowPassword: false)
        } catch {
            #expect(!error.description.contains("hunter2"))
            #expect(error.description.contains("PGPASSWORD"))
        }
        #expect(throws: DatabaseURLError.self) { try DatabaseURL("postgres://db:5432", allowPassword: false) }
        #expect(throws: DatabaseURLError.self) { try DatabaseURL("mysql://db/x", allowPassword: false) }
        #expect(try DatabaseURL("postgresql:///x?host=/tmp/s", allowPassword: false).redacted == "postgresql:///x?host=/tmp/s")
    }

    /// A database that is down answers at once with the reason, and the password is not in it.
    @Test func anUnreachableDatabaseIsAClearErrorWithoutThePassword() {
        do {
            _ = try PostgresStore(url: try DatabaseURL("postgres://u:hunter2@127.0.0.1:1/db", allowPassword: true))
            Issue.record("connected to nothing")
        } catch {
            #expect("\(error)".contains("cannot connect"))
            #expect(!"\(error)".contains("hunter2"))
        }
    }
}

/// What replicas tell each other in a notification: the instances whose polls may find new work, or all of them.
@Suite struct ReplicaNotificationTests {
    @Test func aNotificationNamesTheInstancesItConcernsOrAll() {
        var changes = PostgresStore.ExternalChanges()
        changes.merge(payload: PostgresStore.payload(access: false, work: true, instances: ["web-2", "web-1"]))
        #expect(changes.instances == ["web-1", "web-2"] && !changes.allInstances && !changes.access)
        changes.merge(payload: PostgresStore.payload(access: true, work: false, instances: []))
        #expect(changes.access && !changes.allInstances)
        changes.merge(payload: PostgresStore.payload(access: false, work: true, instances: nil))
        #expect(changes.allInstances)
        // Too many names for PostgreSQL's 8,000-byte payload: every instance instead.
        let many = Set((0..<2_000).map { "instance-\($0)" })
        #expect(PostgresStore.payload(access: false, work: true, instances: many) == "w*")
        var empty = PostgresStore.ExternalChanges()
        empty.merge(payload: PostgresStore.payload(access: false, work: true, instances: []))
        #expect(empty.isEmpty)
    }
}
