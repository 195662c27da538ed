import DeployModel
public import DeployStore
import Foundation
import GRDB
import Synchronization

/// The ``DeployStore`` on the SQLite state file: the only place deployctl speaks SQL (GRDB is imported here only;
/// `InternalImportsByDefault` keeps its types out of this module's public API). Each `write` is one IMMEDIATE
/// transaction (the whole file is locked for writing, which gives every invariant ``DeployStore`` states); each
/// `read` a snapshot in WAL mode.
public final class SQLiteStore: DeployStore {
    public let file: StateFile

    public init(file: StateFile) {
        self.file = file
    }

    /// Opens (creating if needed) the state file at `path`.
    public convenience init(path: String) throws(StateFileError) {
        self.init(file: try StateFile(path: path))
    }

    public func read<T>(_ body: (any StoreTransaction) throws -> T) throws -> T {
        try file.read { db in try body(SQLiteTransaction(db: db, decoded: DecodedRows())) }
    }

    public func write<T>(_ body: (any StoreTransaction) throws -> T) throws -> T {
        try file.write { db in try body(SQLiteTransaction(db: db, decoded: DecodedRows())) }
    }

    public func batched<T>(_ body: () throws -> T) throws -> T {
        try file.batched(body)
    }
}

/// The stored rows the control plane reads on every agent request.
let decodedDeployments = StoredJSONCache<DeploymentInfo>(capacity: 1024)
let decodedTargets = StoredJSONCache<InstanceTarget>(capacity: 4096)

/// Deployments and targets already decoded in this transaction (an agent's event reads the same deployment several
/// times); every write of them goes through this transaction and updates the entry.
final class DecodedRows {
    var deployments: [String: DeploymentInfo] = [:]
    var targets: [String: InstanceTarget] = [:]

    static func targetKey(_ deploymentId: String, _ instance: String) -> String { deploymentId + "\u{0}" + instance }
}

struct SQLiteTransaction: StoreTransaction {
    let db: Database
    let decoded: DecodedRows

    static let activeStatuses = "('Created', 'Queued', 'InProgress', 'Baking', 'Ready')"

    // MARK: Applications

    func application(named name: String) throws -> ApplicationRecord? {
        try Row.fetchOne(try db.cachedStatement(sql: "SELECT * FROM applications WHERE name = ?"), arguments: [name]).map {
            ApplicationRecord(
                id: $0["id"], name: $0["name"], computePlatform: $0["compute_platform"], createTime: Date(timeIntervalSince1970: $0["create_time"]))
        }
    }

    func applicationNames() throws -> [String] { try String.fetchAll(try db.cachedStatement(sql: "SELECT name FROM applications ORDER BY name")) }

    func insertApplication(_ record: ApplicationRecord) throws {
        try db.cachedStatement(sql: "INSERT INTO applications (id, name, compute_platform, create_time) VALUES (?, ?, ?, ?)").execute(arguments: [
            record.id, record.name, record.computePlatform, record.createTime.timeIntervalSince1970,
        ])
    }

    func renameApplication(id: String, to name: String) throws {
        try db.cachedStatement(sql: "UPDATE applications SET name = ? WHERE id = ?").execute(arguments: [name, id])
    }

    func deleteApplication(id: String) throws {
        let groupIds = try String.fetchAll(try db.cachedStatement(sql: "SELECT id FROM deployment_groups WHERE application_id = ?"), arguments: [id])
        for owner in groupIds + [id] {
            try db.cachedStatement(sql: "DELETE FROM resource_tags WHERE resource_id = ?").execute(arguments: [owner])
        }
        // Its groups go with it (ON DELETE CASCADE).
        try db.cachedStatement(sql: "DELETE FROM applications WHERE id = ?").execute(arguments: [id])
    }

    // MARK: Groups

    func groupRecord(_ row: Row) throws -> GroupRecord {
        GroupRecord(
            id: row["id"], applicationId: row["application_id"], name: row["name"], configName: row["config_name"],
            info: try fromStoredJSON(DeploymentGroupInfo.self, row["info"]))
    }

    func group(applicationId: String, name: String) throws -> GroupRecord? {
        try Row.fetchOne(
            try db.cachedStatement(sql: "SELECT * FROM deployment_groups WHERE application_id = ? AND name = ?"), arguments: [applicationId, name]
        )
        .map(groupRecord)
    }

    func groupNames(applicationId: String) throws -> [String] {
        try String.fetchAll(
            try db.cachedStatement(sql: "SELECT name FROM deployment_groups WHERE application_id = ? ORDER BY name"), arguments: [applicationId])
    }

    func groupPaths(usingConfig configName: String) throws -> [String] {
        try String.fetchAll(
            try db.cachedStatement(
                sql: """
                    SELECT a.name || '/' || g.name FROM deployment_groups g JOIN applications a ON a.id = g.application_id
                    WHERE g.config_name = ? ORDER BY 1
                    """), arguments: [configName])
    }

    func insertGroup(_ record: GroupRecord) throws {
        try db.cachedStatement(sql: "INSERT INTO deployment_groups (id, application_id, name, config_name, info) VALUES (?, ?, ?, ?, ?)").execute(
            arguments: [record.id, record.applicationId, record.name, record.configName, try storedJSON(record.info)])
    }

    func updateGroup(_ record: GroupRecord) throws {
        try db.cachedStatement(sql: "UPDATE deployment_groups SET name = ?, config_name = ?, info = ? WHERE id = ?").execute(arguments: [
            record.name, record.configName, try storedJSON(record.info), record.id,
        ])
    }

    func deleteGroup(id: String) throws {
        try db.cachedStatement(sql: "DELETE FROM resource_tags WHERE resource_id = ?").execute(arguments: [id])
        try db.cachedStatement(sql: "DELETE FROM deployment_groups WHERE id = ?").execute(arguments: [id])
    }

    // MARK: Configs

    func config(named name: String) throws -> ConfigRecord? {
        try Row.fetchOne(try db.cachedStatement(sql: "SELECT * FROM deployment_configs WHERE name = ?"), arguments: [name]).map {
            ConfigRecord(
                id: $0["id"], name: $0["name"], info: try fromStoredJSON(DeploymentConfigInfo.self, $0["info"]),
                createTime: Date(timeIntervalSince1970: $0["create_time"]))
        }
    }

    func configNames() throws -> [String] { try String.fetchAll(try db.cachedStatement(sql: "SELECT name FROM deployment_configs ORDER BY name")) }

    func insertConfig(_ record: ConfigRecord) throws {
        try db.cachedStatement(sql: "INSERT INTO deployment_configs (id, name, info, create_time) VALUES (?, ?, ?, ?)").execute(arguments: [
            record.id, record.name, try storedJSON(record.info), record.createTime.timeIntervalSince1970,
        ])
    }

    func deleteConfig(id: String) throws {
        try db.cachedStatement(sql: "DELETE FROM resource_tags WHERE resource_id = ?").execute(arguments: [id])
        try db.cachedStatement(sql: "DELETE FROM deployment_configs WHERE id = ?").execute(arguments: [id])
    }

    // MARK: Tags

    func tagTable(_ owner: TagOwner) -> (table: String, column: String, id: String) {
        switch owner {
        case .resource(let id): return ("resource_tags", "resource_id", id)
        case .instance(let name): return ("instance_tags", "instance_name", name)
        }
    }

    func tags(of owner: TagOwner) throws -> [Tag] {
        let (table, column, id) = tagTable(owner)
        return try Row.fetchAll(try db.cachedStatement(sql: "SELECT key, value FROM \(table) WHERE \(column) = ? ORDER BY position"), arguments: [id])
            .map { Tag(key: $0["key"], value: $0["value"]) }
    }

    func upsertTags(_ tags: [(key: String, value: String)], on owner: TagOwner) throws -> Int {
        let (table, column, id) = tagTable(owner)
        var position =
            try Int.fetchOne(try db.cachedStatement(sql: "SELECT COALESCE(MAX(position), -1) FROM \(table) WHERE \(column) = ?"), arguments: [id])
            ?? -1
        for (key, value) in tags {
            position += 1
            try db.cachedStatement(
                sql: """
                    INSERT INTO \(table) (\(column), key, value, position) VALUES (?, ?, ?, ?)
                    ON CONFLICT (\(column), key) DO UPDATE SET value = excluded.value
                    """
            ).execute(arguments: [id, key, value, position])
        }
        return try Int.fetchOne(try db.cachedStatement(sql: "SELECT COUNT(*) FROM \(table) WHERE \(column) = ?"), arguments: [id]) ?? 0
    }

    func removeTag(key: String, value: String?, from owner: TagOwner) throws {
        let (table, column, id) = tagTable(owner)
        if let value {
            try db.cachedStatement(sql: "DELETE FROM \(table) WHERE \(column) = ? AND key = ? AND value = ?").execute(arguments: [id, key, value])
        } else {
            try db.cachedStatement(sql: "DELETE FROM \(table) WHERE \(column) = ? AND key = ?").execute(arguments: [id, key])
        }
    }

    // MARK: Instances

    func instance(named name: String) throws -> InstanceRecord? {
        try Row.fetchOne(try db.cachedStatement(sql: "SELECT * FROM instances WHERE name = ?"), arguments: [name]).map {
            InstanceRecord(name: $0["name"], registered: $0["registered"], info: try fromStoredJSON(InstanceInfo.self, $0["info"]))
        }
    }

    func instanceNames(registered: Bool?) throws -> [String] {
        if let registered {
            return try String.fetchAll(
                try db.cachedStatement(sql: "SELECT name FROM instances WHERE registered = ? ORDER BY name"), arguments: [registered])
        }
        return try String.fetchAll(try db.cachedStatement(sql: "SELECT name FROM instances ORDER BY name"))
    }

    func insertInstance(_ record: InstanceRecord) throws {
        // Deleting the old row takes its tags with it (ON DELETE CASCADE).
        try db.cachedStatement(sql: "DELETE FROM instances WHERE name = ?").execute(arguments: [record.name])
        try db.cachedStatement(sql: "INSERT INTO instances (name, registered, info) VALUES (?, ?, ?)").execute(arguments: [
            record.name, record.registered, try storedJSON(record.info),
        ])
    }

    func updateInstance(_ record: InstanceRecord) throws {
        try db.cachedStatement(sql: "UPDATE instances SET registered = ?, info = ? WHERE name = ?").execute(arguments: [
            record.registered, try storedJSON(record.info), record.name,
        ])
    }

    // MARK: Deployments

    func deployment(id: String) throws -> DeploymentInfo? {
        if let known = decoded.deployments[id] { return known }
        let info = try Row.fetchOne(try db.cachedStatement(sql: "SELECT info FROM deployments WHERE id = ?"), arguments: [id]).map {
            try decodedDeployments.decode($0["info"])
        }
        decoded.deployments[id] = info
        return info
    }

    func groupId(ofDeployment id: String) throws -> String? {
        try String.fetchOne(try db.cachedStatement(sql: "SELECT group_id FROM deployments WHERE id = ?"), arguments: [id])
    }

    func insertDeployment(_ record: DeploymentRecord) throws {
        // `seq` is the explicit creation order that breaks ties between equal creation times.
        try db.cachedStatement(
            sql: """
                INSERT INTO deployments (id, application_id, group_id, status, create_time, info, seq)
                VALUES (?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM deployments))
                """
        ).execute(arguments: [
            record.id, record.applicationId, record.groupId, record.info.status?.rawValue ?? "Created", record.createTime.timeIntervalSince1970,
            try storedJSON(record.info),
        ])
        decoded.deployments[record.id] = nil
    }

    func updateDeployment(_ info: DeploymentInfo) throws {
        let text = try storedJSON(info)
        try db.cachedStatement(sql: "UPDATE deployments SET status = ?, info = ? WHERE id = ?").execute(arguments: [
            info.status?.rawValue ?? "Created", text, info.deploymentId,
        ])
        decodedDeployments.remember(text, as: info)
        if let id = info.deploymentId { decoded.deployments[id] = db.changesCount > 0 ? info : nil }
    }

    func activeDeploymentId(groupId: String) throws -> String? {
        try String.fetchOne(
            try db.cachedStatement(
                sql: "SELECT id FROM deployments WHERE group_id = ? AND status IN \(Self.activeStatuses) ORDER BY create_time DESC, seq DESC LIMIT 1"),
            arguments: [groupId])
    }

    func newestDeployment(groupId: String, status: String?, excluding: String?) throws -> DeploymentInfo? {
        var sql = "SELECT info FROM deployments WHERE group_id = ?"
        var arguments: [any DatabaseValueConvertible] = [groupId]
        if let status {
            sql += " AND status = ?"
            arguments.append(status)
        }
        if let excluding {
            sql += " AND id != ?"
            arguments.append(excluding)
        }
        return try Row.fetchOne(
            try db.cachedStatement(sql: sql + " ORDER BY create_time DESC, seq DESC LIMIT 1"), arguments: StatementArguments(arguments)
        ).map {
            try decodedDeployments.decode($0["info"])
        }
    }

    func deploymentIds(matching filter: DeploymentFilter) throws -> [String] {
        var clauses: [String] = []
        var arguments: [any DatabaseValueConvertible] = []
        if let group = filter.groupId {
            clauses.append("group_id = ?")
            arguments.append(group)
        }
        if !filter.statuses.isEmpty {
            clauses.append("status IN (\(filter.statuses.map { _ in "?" }.joined(separator: ", ")))")
            arguments += filter.statuses
        }
        if let start = filter.createdFrom {
            clauses.append("create_time >= ?")
            arguments.append(start.timeIntervalSince1970)
        }
        if let end = filter.createdTo {
            clauses.append("create_time <= ?")
            arguments.append(end.timeIntervalSince1970)
        }
        let whereClause = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
        return try String.fetchAll(
            try db.cachedStatement(sql: "SELECT id FROM deployments\(whereClause) ORDER BY create_time DESC, seq DESC"),
            arguments: StatementArguments(arguments))
    }

    func insertTarget(_ target: InstanceTarget, deploymentId: String, position: Int) throws {
        try db.cachedStatement(sql: "INSERT INTO deployment_targets (deployment_id, target_id, position, status, info) VALUES (?, ?, ?, ?, ?)")
            .execute(arguments: [deploymentId, target.targetId, position, target.status?.rawValue ?? "Pending", try storedJSON(target)])
        decoded.targets[DecodedRows.targetKey(deploymentId, target.targetId ?? "")] = nil
    }

    func targetStatusCounts(deploymentId: String) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try Row.fetchAll(
            try db.cachedStatement(sql: "SELECT status, n FROM deployment_target_counts WHERE deployment_id = ? AND n > 0"),
            arguments: [deploymentId])
        {
            counts[row["status"]] = row["n"]
        }
        return counts
    }

    func targetStatuses(deploymentId: String) throws -> [(targetId: String, status: String)] {
        try Row.fetchAll(
            try db.cachedStatement(sql: "SELECT target_id, status FROM deployment_targets WHERE deployment_id = ? ORDER BY position"),
            arguments: [deploymentId]
        ).map { (targetId: $0["target_id"], status: $0["status"]) }
    }

    func targetCount(deploymentId: String, status: String) throws -> Int {
        try Int.fetchOne(
            try db.cachedStatement(sql: "SELECT n FROM deployment_target_counts WHERE deployment_id = ? AND status = ?"),
            arguments: [deploymentId, status]) ?? 0
    }

    func targets(deploymentId: String) throws -> [InstanceTarget] {
        try Row.fetchAll(
            try db.cachedStatement(sql: "SELECT info FROM deployment_targets WHERE deployment_id = ? ORDER BY position"), arguments: [deploymentId]
        )
        .map { try decodedTargets.decode($0["info"]) }
    }

    func target(deploymentId: String, instance: String) throws -> InstanceTarget? {
        let key = DecodedRows.targetKey(deploymentId, instance)
        if let known = decoded.targets[key] { return known }
        let target = try Row.fetchOne(
            try db.cachedStatement(sql: "SELECT info FROM deployment_targets WHERE deployment_id = ? AND target_id = ?"),
            arguments: [deploymentId, instance]
        ).map { try decodedTargets.decode($0["info"]) }
        decoded.targets[key] = target
        return target
    }

    func updateTarget(_ target: InstanceTarget) throws {
        let text = try storedJSON(target)
        try db.cachedStatement(sql: "UPDATE deployment_targets SET status = ?, info = ? WHERE deployment_id = ? AND target_id = ?").execute(
            arguments: [target.status?.rawValue ?? "Pending", text, target.deploymentId, target.targetId])
        decodedTargets.remember(text, as: target)
        if let deploymentId = target.deploymentId, let instance = target.targetId {
            decoded.targets[DecodedRows.targetKey(deploymentId, instance)] = db.changesCount > 0 ? target : nil
        }
    }

    func newestTargetStatus(groupId: String, instance: String) throws -> String? {
        try String.fetchOne(
            try db.cachedStatement(
                sql: """
                    SELECT t.status FROM deployment_targets t JOIN deployments d ON d.id = t.deployment_id
                    WHERE d.group_id = ? AND t.target_id = ? ORDER BY d.create_time DESC, d.seq DESC LIMIT 1
                    """), arguments: [groupId, instance])
    }

    // MARK: Host commands

    func hasWork(instance: String, now: Double, redeliverBefore: Double) throws -> Bool {
        try Bool.fetchOne(
            try db.cachedStatement(
                sql: """
                    SELECT EXISTS (SELECT 1 FROM host_commands WHERE deadline < ?)
                        OR EXISTS (SELECT 1 FROM host_commands WHERE instance_name = ? AND acknowledged = 0 AND deadline < ?)
                        OR EXISTS (
                            SELECT 1 FROM deployment_targets t JOIN deployments d ON d.id = t.deployment_id
                            WHERE t.target_id = ? AND (d.status = 'Created' OR (d.status = 'InProgress' AND t.status = 'InProgress'
                                AND NOT EXISTS (SELECT 1 FROM host_commands h WHERE h.deployment_id = d.id AND h.instance_name = t.target_id))))
                    """), arguments: [now, instance, redeliverBefore, instance]) ?? false
    }

    func hasUnacknowledgedCommand(instance: String) throws -> Bool {
        try Bool.fetchOne(
            try db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM host_commands WHERE instance_name = ? AND acknowledged = 0)"),
            arguments: [instance]) ?? false
    }

    func outstandingCommand(deploymentId: String, instance: String) throws -> HostCommandRecord? {
        try Row.fetchOne(
            try db.cachedStatement(sql: "SELECT * FROM host_commands WHERE deployment_id = ? AND instance_name = ?"),
            arguments: [deploymentId, instance]
        ).map(commandRecord)
    }

    func pollCandidates(instance: String) throws -> [String] {
        try String.fetchAll(
            try db.cachedStatement(
                sql: """
                    SELECT d.id FROM deployment_targets t JOIN deployments d ON d.id = t.deployment_id
                    WHERE t.target_id = ? AND (d.status = 'Created' OR (d.status = 'InProgress' AND t.status = 'InProgress'))
                    ORDER BY d.create_time, d.seq
                    """), arguments: [instance])
    }

    func commandRecord(_ row: Row) -> HostCommandRecord {
        HostCommandRecord(
            id: row["id"], deploymentId: row["deployment_id"], instanceName: row["instance_name"], eventName: row["event_name"],
            acknowledged: row["acknowledged"], deadline: row["deadline"])
    }

    func insertCommand(_ command: HostCommandRecord) throws {
        try db.cachedStatement(
            sql: "INSERT INTO host_commands (id, deployment_id, instance_name, event_name, acknowledged, deadline) VALUES (?, ?, ?, ?, ?, ?)"
        ).execute(arguments: [command.id, command.deploymentId, command.instanceName, command.eventName, command.acknowledged, command.deadline])
    }

    func command(id: String) throws -> HostCommandRecord? {
        try Row.fetchOne(try db.cachedStatement(sql: "SELECT * FROM host_commands WHERE id = ?"), arguments: [id]).map(commandRecord)
    }

    func deleteCommand(id: String) throws {
        try db.cachedStatement(sql: "DELETE FROM host_commands WHERE id = ?").execute(arguments: [id])
    }

    func acknowledgeCommand(id: String, deadline: Double) throws -> Bool {
        try db.cachedStatement(sql: "UPDATE host_commands SET acknowledged = 1, deadline = ? WHERE id = ?").execute(arguments: [deadline, id])
        return db.changesCount == 1
    }

    func hasOverdueCommands(now: Double) throws -> Bool {
        try Bool.fetchOne(try db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM host_commands WHERE deadline < ?)"), arguments: [now]) ?? false
    }

    func overdueCommands(now: Double) throws -> [HostCommandRecord] {
        try Row.fetchAll(try db.cachedStatement(sql: "SELECT * FROM host_commands WHERE deadline < ? ORDER BY deadline, id"), arguments: [now]).map(
            commandRecord)
    }

    func hasCommand(deploymentId: String, instance: String) throws -> Bool {
        try Bool.fetchOne(
            try db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM host_commands WHERE deployment_id = ? AND instance_name = ?)"),
            arguments: [deploymentId, instance])
            ?? false
    }

    func commandInstances(deploymentId: String) throws -> [String] {
        try String.fetchAll(
            try db.cachedStatement(sql: "SELECT instance_name FROM host_commands WHERE deployment_id = ? ORDER BY instance_name"),
            arguments: [deploymentId])
    }

    func commands(eventNames: [String]) throws -> [HostCommandRecord] {
        guard !eventNames.isEmpty else { return [] }
        let marks = Array(repeating: "?", count: eventNames.count).joined(separator: ", ")
        return try Row.fetchAll(
            try db.cachedStatement(sql: "SELECT * FROM host_commands WHERE event_name IN (\(marks)) ORDER BY deadline, id"),
            arguments: StatementArguments(eventNames)
        ).map(commandRecord)
    }

    // MARK: Revisions

    func revisionRecord(_ row: Row) throws -> RevisionRecord {
        RevisionRecord(
            applicationId: row["application_id"], key: row["location_key"], location: try fromStoredJSON(RevisionLocation.self, row["location"]),
            description: row["description"], deploymentGroups: try fromStoredJSON([String].self, row["deployment_groups"]),
            firstUsedTime: (row["first_used_time"] as Double?).map(Date.init(timeIntervalSince1970:)),
            lastUsedTime: (row["last_used_time"] as Double?).map(Date.init(timeIntervalSince1970:)),
            registerTime: Date(timeIntervalSince1970: row["register_time"]))
    }

    func revision(applicationId: String, key: String) throws -> RevisionRecord? {
        try Row.fetchOne(
            try db.cachedStatement(sql: "SELECT * FROM revisions WHERE application_id = ? AND location_key = ?"), arguments: [applicationId, key]
        )
        .map(revisionRecord)
    }

    func revisions(applicationId: String) throws -> [RevisionRecord] {
        try Row.fetchAll(try db.cachedStatement(sql: "SELECT * FROM revisions WHERE application_id = ? ORDER BY seq"), arguments: [applicationId])
            .map(revisionRecord)
    }

    func insertRevision(_ record: RevisionRecord) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO revisions (application_id, location_key, location, description, register_time, deployment_groups,
                    first_used_time, last_used_time, seq)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM revisions))
                """
        ).execute(arguments: [
            record.applicationId, record.key, try storedJSON(record.location), record.description, record.registerTime.timeIntervalSince1970,
            try storedJSON(record.deploymentGroups), record.firstUsedTime?.timeIntervalSince1970, record.lastUsedTime?.timeIntervalSince1970,
        ])
    }

    func updateRevision(_ record: RevisionRecord) throws {
        try db.cachedStatement(
            sql: """
                UPDATE revisions SET description = ?, deployment_groups = ?, first_used_time = ?, last_used_time = ?
                WHERE application_id = ? AND location_key = ?
                """
        ).execute(arguments: [
            record.description, try storedJSON(record.deploymentGroups), record.firstUsedTime?.timeIntervalSince1970,
            record.lastUsedTime?.timeIntervalSince1970, record.applicationId, record.key,
        ])
    }

    // MARK: Access keys

    func accessKeyRecord(_ row: Row) -> AccessKeyRecord {
        AccessKeyRecord(
            accessKeyId: row["access_key_id"], userName: row["user_name"], secretAccessKey: row["secret_access_key"], status: row["status"],
            role: row["role"], createDate: Date(timeIntervalSince1970: row["create_time"]))
    }

    func accessKey(id: String) throws -> AccessKeyRecord? {
        try Row.fetchOne(try db.cachedStatement(sql: "SELECT * FROM access_keys WHERE access_key_id = ?"), arguments: [id]).map(accessKeyRecord)
    }

    func accessKeys(userName: String?) throws -> [AccessKeyRecord] {
        if let userName {
            return try Row.fetchAll(
                try db.cachedStatement(sql: "SELECT * FROM access_keys WHERE user_name = ? ORDER BY create_time, access_key_id"),
                arguments: [userName]
            ).map(accessKeyRecord)
        }
        return try Row.fetchAll(try db.cachedStatement(sql: "SELECT * FROM access_keys ORDER BY user_name, create_time, access_key_id")).map(
            accessKeyRecord)
    }

    func insertAccessKey(_ record: AccessKeyRecord) throws {
        try db.cachedStatement(
            sql: "INSERT INTO access_keys (access_key_id, user_name, secret_access_key, status, role, create_time) VALUES (?, ?, ?, ?, ?, ?)"
        ).execute(arguments: [
            record.accessKeyId, record.userName, record.secretAccessKey, record.status, record.role, record.createDate.timeIntervalSince1970,
        ])
    }

    func updateAccessKey(_ record: AccessKeyRecord) throws {
        try db.cachedStatement(sql: "UPDATE access_keys SET user_name = ?, secret_access_key = ?, status = ?, role = ? WHERE access_key_id = ?")
            .execute(arguments: [record.userName, record.secretAccessKey, record.status, record.role, record.accessKeyId])
    }

    func deleteAccessKey(id: String) throws {
        try db.cachedStatement(sql: "DELETE FROM access_keys WHERE access_key_id = ?").execute(arguments: [id])
    }

    // MARK: Leases

    func lease(instance: String) throws -> LeaseRecord? {
        try Row.fetchOne(try db.cachedStatement(sql: "SELECT * FROM agent_leases WHERE instance_name = ?"), arguments: [instance]).map {
            LeaseRecord(
                instanceName: $0["instance_name"], holder: $0["holder"], hostName: $0["host_name"], pid: $0["pid"], started: $0["started"],
                expires: $0["expires"])
        }
    }

    func saveLease(_ record: LeaseRecord) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO agent_leases (instance_name, holder, host_name, pid, started, expires) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (instance_name) DO UPDATE SET holder = excluded.holder, host_name = excluded.host_name, pid = excluded.pid,
                    started = excluded.started, expires = excluded.expires
                """
        ).execute(arguments: [record.instanceName, record.holder, record.hostName, record.pid, record.started, record.expires])
    }

    func deleteLease(instance: String, holder: String) throws {
        try db.cachedStatement(sql: "DELETE FROM agent_leases WHERE instance_name = ? AND holder = ?").execute(arguments: [instance, holder])
    }

    // MARK: Agent contacts

    func recordAgentContact(_ record: AgentContactRecord) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO agent_contacts (instance_name, last_seen, address, agent) VALUES (?, ?, ?, ?)
                ON CONFLICT (instance_name) DO UPDATE SET last_seen = excluded.last_seen, address = excluded.address, agent = excluded.agent
                    WHERE excluded.last_seen >= agent_contacts.last_seen
                """
        ).execute(arguments: [record.instanceName, record.lastSeen, record.address, record.agent])
    }

    func agentContacts() throws -> [AgentContactRecord] {
        try Row.fetchAll(try db.cachedStatement(sql: "SELECT * FROM agent_contacts ORDER BY instance_name")).map {
            AgentContactRecord(instanceName: $0["instance_name"], lastSeen: $0["last_seen"], address: $0["address"], agent: $0["agent"])
        }
    }

    func runningEvents() throws -> [String: String] {
        var running: [String: String] = [:]
        for row in try Row.fetchAll(try db.cachedStatement(sql: "SELECT instance_name, event_name FROM host_commands WHERE acknowledged = 1")) {
            running[row["instance_name"]] = row["event_name"]
        }
        return running
    }

    // MARK: The event stream

    func appendEvent(_ event: EventRecord) throws -> Int64 {
        try db.cachedStatement(
            sql: "INSERT INTO events (time, deployment_id, application_name, instance_name, body) VALUES (?, ?, ?, ?, ?)"
        ).execute(arguments: [event.time, event.deploymentId, event.applicationName, event.instanceName, event.body])
        return db.lastInsertedRowID
    }

    func events(_ filter: EventFilter) throws -> [EventRecord] {
        var clauses = ["sequence > ?"]
        var arguments: StatementArguments = [filter.after]
        if let id = filter.deploymentId {
            clauses.append("deployment_id = ?")
            _ = arguments.append(contentsOf: [id])
        }
        if let name = filter.applicationName {
            clauses.append("application_name = ?")
            _ = arguments.append(contentsOf: [name])
        }
        if let since = filter.since {
            clauses.append("time >= ?")
            _ = arguments.append(contentsOf: [since])
        }
        _ = arguments.append(contentsOf: [filter.limit])
        let sql = "SELECT * FROM events WHERE \(clauses.joined(separator: " AND ")) ORDER BY sequence LIMIT ?"
        return try Row.fetchAll(try db.cachedStatement(sql: sql), arguments: arguments).map {
            EventRecord(
                sequence: $0["sequence"], time: $0["time"], deploymentId: $0["deployment_id"], applicationName: $0["application_name"],
                instanceName: $0["instance_name"], body: $0["body"])
        }
    }

    // MARK: Alarms

    func alarm(named name: String) throws -> AlarmRecord? {
        try Row.fetchOne(try db.cachedStatement(sql: "SELECT * FROM alarms WHERE name = ?"), arguments: [name]).map(Self.alarm)
    }

    func alarms() throws -> [AlarmRecord] {
        try Row.fetchAll(try db.cachedStatement(sql: "SELECT * FROM alarms ORDER BY name")).map(Self.alarm)
    }

    static func alarm(_ row: Row) -> AlarmRecord {
        AlarmRecord(
            name: row["name"], kind: row["kind"], state: row["state"], reason: row["reason"], updated: row["updated"], definition: row["definition"])
    }

    func saveAlarm(_ record: AlarmRecord) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO alarms (name, kind, state, reason, updated, definition) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, state = excluded.state, reason = excluded.reason,
                    updated = excluded.updated, definition = excluded.definition
                """
        ).execute(arguments: [record.name, record.kind, record.state, record.reason, record.updated, record.definition])
    }

    func deleteAlarm(named name: String) throws {
        try db.cachedStatement(sql: "DELETE FROM alarms WHERE name = ?").execute(arguments: [name])
    }

    func deleteEvents(before time: Double, limit: Int) throws -> Int {
        // The oldest `limit` rows by sequence (the primary key): never a scan of the whole table.
        try db.cachedStatement(
            sql: "DELETE FROM events WHERE sequence IN (SELECT sequence FROM events ORDER BY sequence LIMIT ?) AND time < ?"
        ).execute(arguments: [limit, time])
        return db.changesCount
    }

    func lastEventSequence() throws -> Int64 {
        try Int64.fetchOne(try db.cachedStatement(sql: "SELECT seq FROM sqlite_sequence WHERE name = 'events'")) ?? 0
    }
}
