import DeployModel
import DeployStore
import Foundation

/// The decoded rows the control plane reads on every agent request (shared by this process's transactions; keyed
/// by the stored text, so never stale).
let decodedDeployments = StoredJSONCache<DeploymentInfo>(capacity: 1024)
let decodedTargets = StoredJSONCache<InstanceTarget>(capacity: 4096)

/// One transaction's statements, the SQL of the state file's store (`SQLiteTransaction`) in PostgreSQL's dialect.
/// It notes whether it changed work or access, so the commit notifies the other replicas.
final class PostgresTransaction: StoreTransaction {
    let connection: PostgresConnection
    private(set) var changedWork = false
    private(set) var changedAccess = false
    /// The instances whose polls may find something new after this transaction (nil: any instance's may, as when a
    /// deployment's status changes).
    private(set) var touchedInstances: Set<String>? = []

    private func touch(_ instance: String?) {
        guard let instance else { return touchEverything() }
        touchedInstances?.insert(instance)
    }

    private func touchEverything() { touchedInstances = nil }
    /// The rows every agent request reads, as this transaction (or its group) last read or wrote them.
    let cache: RowCache

    /// Whether this transaction holds the write lock (and may write): reads are READ ONLY.
    let writable: Bool

    init(connection: PostgresConnection, writable: Bool, cache: RowCache = RowCache()) {
        self.connection = connection
        self.writable = writable
        self.cache = cache
    }

    static let activeStatuses = "('Created', 'Queued', 'InProgress', 'Baking', 'Ready')"

    @discardableResult
    private func run(_ sql: String, _ parameters: [(any PostgresParameter)?] = []) throws -> Int {
        try connection.query(sql, parameters).affected
    }

    /// Sends the write `sql` with the next statement rather than on its own (``PostgresConnection/sendWithNext(_:_:opening:)``):
    /// for writes whose outcome the cache already knows (the row is there, under the write lock nobody else can
    /// change it), so nothing waits for the answer; a failure is thrown by the statement it travels with, still
    /// inside the same request (a request's queued writes are sent before it ends).
    private func later(_ sql: String, _ parameters: [(any PostgresParameter)?]) throws {
        try connection.sendWithNext(sql, parameters)
    }

    private func rows(_ sql: String, _ parameters: [(any PostgresParameter)?] = []) throws -> [PostgresRow] {
        try connection.query(sql, parameters).rows
    }

    private func strings(_ sql: String, _ parameters: [(any PostgresParameter)?] = []) throws -> [String] {
        try rows(sql, parameters).map { $0.string(0) }
    }

    private func exists(_ sql: String, _ parameters: [(any PostgresParameter)?] = []) throws -> Bool {
        try rows(sql, parameters).first?.values[0] == "t"
    }

    // MARK: Applications

    func application(named name: String) throws -> ApplicationRecord? {
        try rows("SELECT id, name, compute_platform, create_time FROM applications WHERE name = $1", [name]).first.map {
            ApplicationRecord(id: $0.string(0), name: $0.string(1), computePlatform: $0.string(2), createTime: $0.date(3))
        }
    }

    func applicationNames() throws -> [String] { try strings("SELECT name FROM applications ORDER BY name") }

    func insertApplication(_ record: ApplicationRecord) throws {
        try run(
            "INSERT INTO applications (id, name, compute_platform, create_time) VALUES ($1, $2, $3, $4)",
            [record.id, record.name, record.computePlatform, record.createTime.timeIntervalSince1970])
    }

    func renameApplication(id: String, to name: String) throws {
        try run("UPDATE applications SET name = $1 WHERE id = $2", [name, id])
    }

    func deleteApplication(id: String) throws {
        try run("DELETE FROM resource_tags WHERE resource_id IN (SELECT id FROM deployment_groups WHERE application_id = $1)", [id])
        try run("DELETE FROM resource_tags WHERE resource_id = $1", [id])
        try run("DELETE FROM applications WHERE id = $1", [id])
        cache.removeAll()
    }

    // MARK: Groups

    private static let groupColumns = "id, application_id, name, config_name, info"

    private func groupRecord(_ row: PostgresRow) throws -> GroupRecord {
        GroupRecord(
            id: row.string(0), applicationId: row.string(1), name: row.string(2), configName: row.string(3),
            info: try fromStoredJSON(DeploymentGroupInfo.self, row.string(4)))
    }

    func group(applicationId: String, name: String) throws -> GroupRecord? {
        try rows("SELECT \(Self.groupColumns) FROM deployment_groups WHERE application_id = $1 AND name = $2", [applicationId, name]).first.map(
            groupRecord)
    }

    func groupNames(applicationId: String) throws -> [String] {
        try strings("SELECT name FROM deployment_groups WHERE application_id = $1 ORDER BY name", [applicationId])
    }

    func groupPaths(usingConfig configName: String) throws -> [String] {
        try strings(
            """
            SELECT a.name || '/' || g.name FROM deployment_groups g JOIN applications a ON a.id = g.application_id
            WHERE g.config_name = $1 ORDER BY 1
            """, [configName])
    }

    func insertGroup(_ record: GroupRecord) throws {
        try run(
            "INSERT INTO deployment_groups (id, application_id, name, config_name, info) VALUES ($1, $2, $3, $4, $5)",
            [record.id, record.applicationId, record.name, record.configName, try storedJSON(record.info)])
    }

    func updateGroup(_ record: GroupRecord) throws {
        try run(
            "UPDATE deployment_groups SET name = $1, config_name = $2, info = $3 WHERE id = $4",
            [record.name, record.configName, try storedJSON(record.info), record.id])
    }

    func deleteGroup(id: String) throws {
        try run("DELETE FROM resource_tags WHERE resource_id = $1", [id])
        try run("DELETE FROM deployment_groups WHERE id = $1", [id])
        cache.removeAll()
    }

    // MARK: Configs

    func config(named name: String) throws -> ConfigRecord? {
        try rows("SELECT id, name, info, create_time FROM deployment_configs WHERE name = $1", [name]).first.map {
            ConfigRecord(
                id: $0.string(0), name: $0.string(1), info: try fromStoredJSON(DeploymentConfigInfo.self, $0.string(2)), createTime: $0.date(3))
        }
    }

    func configNames() throws -> [String] { try strings("SELECT name FROM deployment_configs ORDER BY name") }

    func insertConfig(_ record: ConfigRecord) throws {
        try run(
            "INSERT INTO deployment_configs (id, name, info, create_time) VALUES ($1, $2, $3, $4)",
            [record.id, record.name, try storedJSON(record.info), record.createTime.timeIntervalSince1970])
    }

    func deleteConfig(id: String) throws {
        try run("DELETE FROM resource_tags WHERE resource_id = $1", [id])
        try run("DELETE FROM deployment_configs WHERE id = $1", [id])
    }

    // MARK: Tags

    private func tagTable(_ owner: TagOwner) -> (table: String, column: String, id: String) {
        switch owner {
        case .resource(let id): return ("resource_tags", "resource_id", id)
        case .instance(let name): return ("instance_tags", "instance_name", name)
        }
    }

    func tags(of owner: TagOwner) throws -> [Tag] {
        let (table, column, id) = tagTable(owner)
        return try rows("SELECT key, value FROM \(table) WHERE \(column) = $1 ORDER BY position", [id]).map {
            Tag(key: $0.string(0), value: $0.string(1))
        }
    }

    func upsertTags(_ tags: [(key: String, value: String)], on owner: TagOwner) throws -> Int {
        let (table, column, id) = tagTable(owner)
        var position = try rows("SELECT COALESCE(MAX(position), -1) FROM \(table) WHERE \(column) = $1", [id]).first?.int(0) ?? -1
        for (key, value) in tags {
            position += 1
            try run(
                """
                INSERT INTO \(table) (\(column), key, value, position) VALUES ($1, $2, $3, $4)
                ON CONFLICT (\(column), key) DO UPDATE SET value = excluded.value
                """, [id, key, value, position])
        }
        if case .instance = owner { changedAccess = true }
        return try rows("SELECT COUNT(*) FROM \(table) WHERE \(column) = $1", [id]).first?.int(0) ?? 0
    }

    func removeTag(key: String, value: String?, from owner: TagOwner) throws {
        let (table, column, id) = tagTable(owner)
        if let value {
            try run("DELETE FROM \(table) WHERE \(column) = $1 AND key = $2 AND value = $3", [id, key, value])
        } else {
            try run("DELETE FROM \(table) WHERE \(column) = $1 AND key = $2", [id, key])
        }
    }

    // MARK: Instances

    func instance(named name: String) throws -> InstanceRecord? {
        try rows("SELECT name, registered, info FROM instances WHERE name = $1", [name]).first.map {
            InstanceRecord(name: $0.string(0), registered: $0.bool(1), info: try fromStoredJSON(InstanceInfo.self, $0.string(2)))
        }
    }

    func instanceNames(registered: Bool?) throws -> [String] {
        if let registered {
            return try strings("SELECT name FROM instances WHERE registered = $1 ORDER BY name", [registered])
        }
        return try strings("SELECT name FROM instances ORDER BY name")
    }

    func insertInstance(_ record: InstanceRecord) throws {
        // Deleting the old row takes its tags with it (ON DELETE CASCADE).
        try run("DELETE FROM instances WHERE name = $1", [record.name])
        try run("INSERT INTO instances (name, registered, info) VALUES ($1, $2, $3)", [record.name, record.registered, try storedJSON(record.info)])
        changedAccess = true
    }

    func updateInstance(_ record: InstanceRecord) throws {
        try run("UPDATE instances SET registered = $1, info = $2 WHERE name = $3", [record.registered, try storedJSON(record.info), record.name])
        changedAccess = true
    }

    // MARK: Deployments

    func deployment(id: String) throws -> DeploymentInfo? {
        if let known = cache.deployments[id] { return known }
        let info = try rows("SELECT info FROM deployments WHERE id = $1", [id]).first.map { try decodedDeployments.decode($0.string(0)) }
        cache.deployments[id] = info
        return info
    }

    func groupId(ofDeployment id: String) throws -> String? {
        if let known = cache.groupIds[id] { return known }
        let group = try rows("SELECT group_id FROM deployments WHERE id = $1", [id]).first?.string(0)
        cache.groupIds[id] = group
        return group
    }

    func insertDeployment(_ record: DeploymentRecord) throws {
        // `seq` is the explicit creation order that breaks ties between equal creation times.
        try run(
            """
            INSERT INTO deployments (id, application_id, group_id, status, create_time, info, seq)
            VALUES ($1, $2, $3, $4, $5, $6, (SELECT COALESCE(MAX(seq), 0) + 1 FROM deployments))
            """,
            [
                record.id, record.applicationId, record.groupId, record.info.status?.rawValue ?? "Created", record.createTime.timeIntervalSince1970,
                try storedJSON(record.info),
            ])
        cache.deployments[record.id] = nil
        cache.groupIds[record.id] = nil
        changedWork = true
    }

    func updateDeployment(_ info: DeploymentInfo) throws {
        let text = try storedJSON(info)
        // The status before the update (the FROM sees the row as it was): a status change concerns every target's poll.
        let before = try rows(
            "UPDATE deployments d SET status = $1, info = $2 FROM (SELECT status FROM deployments WHERE id = $3) old WHERE d.id = $3 RETURNING old.status",
            [info.status?.rawValue ?? "Created", text, info.deploymentId])
        let changed = before.count
        if let old = before.first?.string(0), old != (info.status?.rawValue ?? "Created") { touchEverything() }
        decodedDeployments.remember(text, as: info)
        if let id = info.deploymentId { cache.deployments[id] = changed > 0 ? info : nil }
        changedWork = true
    }

    func activeDeploymentId(groupId: String) throws -> String? {
        try rows(
            "SELECT id FROM deployments WHERE group_id = $1 AND status IN \(Self.activeStatuses) ORDER BY create_time DESC, seq DESC LIMIT 1",
            [groupId]
        ).first?.string(0)
    }

    func newestDeployment(groupId: String, status: String?, excluding: String?) throws -> DeploymentInfo? {
        var sql = "SELECT info FROM deployments WHERE group_id = $1"
        var parameters: [(any PostgresParameter)?] = [groupId]
        if let status {
            parameters.append(status)
            sql += " AND status = $\(parameters.count)"
        }
        if let excluding {
            parameters.append(excluding)
            sql += " AND id != $\(parameters.count)"
        }
        return try rows(sql + " ORDER BY create_time DESC, seq DESC LIMIT 1", parameters).first.map { try decodedDeployments.decode($0.string(0)) }
    }

    func deploymentIds(matching filter: DeploymentFilter) throws -> [String] {
        var clauses: [String] = []
        var parameters: [(any PostgresParameter)?] = []
        if let group = filter.groupId {
            parameters.append(group)
            clauses.append("group_id = $\(parameters.count)")
        }
        if !filter.statuses.isEmpty {
            var marks: [String] = []
            for status in filter.statuses {
                parameters.append(status)
                marks.append("$\(parameters.count)")
            }
            clauses.append("status IN (\(marks.joined(separator: ", ")))")
        }
        if let start = filter.createdFrom {
            parameters.append(start.timeIntervalSince1970)
            clauses.append("create_time >= $\(parameters.count)")
        }
        if let end = filter.createdTo {
            parameters.append(end.timeIntervalSince1970)
            clauses.append("create_time <= $\(parameters.count)")
        }
        let whereClause = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
        return try strings("SELECT id FROM deployments\(whereClause) ORDER BY create_time DESC, seq DESC", parameters)
    }

    func insertTarget(_ target: InstanceTarget, deploymentId: String, position: Int) throws {
        try run(
            "INSERT INTO deployment_targets (deployment_id, target_id, position, status, info) VALUES ($1, $2, $3, $4, $5)",
            [deploymentId, target.targetId, position, target.status?.rawValue ?? "Pending", try storedJSON(target)])
        cache.targets[deploymentId + "\u{0}" + (target.targetId ?? "")] = nil
        cache.counts[deploymentId] = nil
        touch(target.targetId)
        changedWork = true
    }

    func targetStatusCounts(deploymentId: String) throws -> [String: Int] {
        if let known = cache.counts[deploymentId] { return known }
        var counts: [String: Int] = [:]
        for row in try rows("SELECT status, n FROM deployment_target_counts WHERE deployment_id = $1 AND n > 0", [deploymentId]) {
            counts[row.string(0)] = row.int(1)
        }
        cache.counts[deploymentId] = counts
        return counts
    }

    func targetStatuses(deploymentId: String) throws -> [(targetId: String, status: String)] {
        try rows("SELECT target_id, status FROM deployment_targets WHERE deployment_id = $1 ORDER BY position", [deploymentId]).map {
            (targetId: $0.string(0), status: $0.string(1))
        }
    }

    func targetCount(deploymentId: String, status: String) throws -> Int {
        try targetStatusCounts(deploymentId: deploymentId)[status] ?? 0
    }

    func targets(deploymentId: String) throws -> [InstanceTarget] {
        try rows("SELECT info FROM deployment_targets WHERE deployment_id = $1 ORDER BY position", [deploymentId]).map {
            try decodedTargets.decode($0.string(0))
        }
    }

    func target(deploymentId: String, instance: String) throws -> InstanceTarget? {
        let key = deploymentId + "\u{0}" + instance
        if let known = cache.targets[key] { return known }
        let target = try rows("SELECT info FROM deployment_targets WHERE deployment_id = $1 AND target_id = $2", [deploymentId, instance]).first.map {
            try decodedTargets.decode($0.string(0))
        }
        cache.targets[key] = target
        return target
    }

    func updateTarget(_ target: InstanceTarget) throws {
        let text = try storedJSON(target)
        let key = (target.deploymentId ?? "") + "\u{0}" + (target.targetId ?? "")
        let sql = "UPDATE deployment_targets SET status = $1, info = $2 WHERE deployment_id = $3 AND target_id = $4"
        let parameters: [(any PostgresParameter)?] = [target.status?.rawValue ?? "Pending", text, target.deploymentId, target.targetId]
        var statusBefore: String?
        let changed: Int
        if case .some(.some(let old)) = cache.targets[key] {
            statusBefore = old.status?.rawValue ?? "Pending"
            try later(sql, parameters)
            changed = 1
        } else {
            changed = try run(sql, parameters)
        }
        decodedTargets.remember(text, as: target)
        if let deploymentId = target.deploymentId {
            // The counts follow the targets' statuses (a trigger): kept while this target's status is known not to move.
            if changed == 0 || statusBefore != (target.status?.rawValue ?? "Pending") { cache.counts[deploymentId] = nil }
            cache.targets[key] = changed > 0 ? target : nil
        }
        touch(target.targetId)
        changedWork = true
    }

    func newestTargetStatus(groupId: String, instance: String) throws -> String? {
        try rows(
            """
            SELECT t.status FROM deployment_targets t JOIN deployments d ON d.id = t.deployment_id
            WHERE d.group_id = $1 AND t.target_id = $2 ORDER BY d.create_time DESC, d.seq DESC LIMIT 1
            """, [groupId, instance]
        ).first?.string(0)
    }

    // MARK: Host commands

    /// The SQLite query's clauses, with the "nothing outstanding" test alone under its `AND`s: inside an `OR` it
    /// could not be an anti-join, and its generic plan hashed every row of `host_commands` on each poll. Each
    /// deployment's status is a subquery, which PostgreSQL never turns into a join: the look always starts from the
    /// instance's own targets, as SQLite's does, where a cached generic plan made with few deployments scanned every
    /// Created deployment once there were thousands.
    ///
    /// A read also learns whether the instance has a command it has not acknowledged, which a look that finds no work
    /// asks next (``hasUnacknowledgedCommand(instance:)``): one round trip for both, in one snapshot.
    func hasWork(instance: String, now: Double, redeliverBefore: Double) throws -> Bool {
        let row = try rows(
            """
            SELECT (SELECT next FROM host_command_deadline) < $1
                OR EXISTS (SELECT 1 FROM host_commands WHERE instance_name = $2 AND acknowledged = 0 AND deadline < $3)
                OR EXISTS (
                    SELECT 1 FROM deployment_targets t
                    WHERE t.target_id = $2 AND (SELECT d.status FROM deployments d WHERE d.id = t.deployment_id) = 'Created')
                OR EXISTS (
                    SELECT 1 FROM deployment_targets t
                    WHERE t.target_id = $2 AND t.status = 'InProgress'
                        AND (SELECT d.status FROM deployments d WHERE d.id = t.deployment_id) = 'InProgress'
                        AND NOT EXISTS (SELECT 1 FROM host_commands h WHERE h.deployment_id = t.deployment_id AND h.instance_name = t.target_id)),
                EXISTS (SELECT 1 FROM host_commands WHERE instance_name = $2 AND acknowledged = 0)
            """, [now, instance, redeliverBefore]
        ).first
        if !writable { cache.unacknowledged[instance] = row?.bool(1) }
        return row?.bool(0) ?? false
    }

    func hasUnacknowledgedCommand(instance: String) throws -> Bool {
        if !writable, let known = cache.unacknowledged[instance] { return known }
        return try exists("SELECT EXISTS (SELECT 1 FROM host_commands WHERE instance_name = $1 AND acknowledged = 0)", [instance])
    }

    private static let commandColumns = "id, deployment_id, instance_name, event_name, acknowledged, deadline"

    private func commandRecord(_ row: PostgresRow) -> HostCommandRecord {
        HostCommandRecord(
            id: row.string(0), deploymentId: row.string(1), instanceName: row.string(2), eventName: row.string(3), acknowledged: row.bool(4),
            deadline: row.double(5))
    }

    func outstandingCommand(deploymentId: String, instance: String) throws -> HostCommandRecord? {
        try rows("SELECT \(Self.commandColumns) FROM host_commands WHERE deployment_id = $1 AND instance_name = $2", [deploymentId, instance]).first
            .map(commandRecord)
    }

    /// From the instance's own targets, each deployment looked up by its key (`OFFSET 0` keeps the lateral subquery
    /// from becoming a join PostgreSQL could turn around), for the reason given at ``hasWork(instance:now:redeliverBefore:)``.
    func pollCandidates(instance: String) throws -> [String] {
        try strings(
            """
            SELECT t.deployment_id FROM deployment_targets t
            CROSS JOIN LATERAL (SELECT d.status, d.create_time, d.seq FROM deployments d WHERE d.id = t.deployment_id OFFSET 0) d
            WHERE t.target_id = $1 AND (d.status = 'Created' OR (d.status = 'InProgress' AND t.status = 'InProgress'))
            ORDER BY d.create_time, d.seq
            """, [instance])
    }

    func insertCommand(_ command: HostCommandRecord) throws {
        try later(
            "INSERT INTO host_commands (id, deployment_id, instance_name, event_name, acknowledged, deadline) VALUES ($1, $2, $3, $4, $5, $6)",
            [command.id, command.deploymentId, command.instanceName, command.eventName, command.acknowledged, command.deadline])
        cache.commands[command.id] = command
        touch(command.instanceName)
        changedWork = true
    }

    func command(id: String) throws -> HostCommandRecord? {
        if let known = cache.commands[id] { return known }
        let command = try rows("SELECT \(Self.commandColumns) FROM host_commands WHERE id = $1", [id]).first.map(commandRecord)
        cache.commands[id] = command
        return command
    }

    func deleteCommand(id: String) throws {
        defer { cache.commands[id] = .some(nil) }
        if case .some(.some(let known)) = cache.commands[id] {
            try later("DELETE FROM host_commands WHERE id = $1", [id])
            touch(known.instanceName)
            changedWork = true
            return
        }
        for row in try rows("DELETE FROM host_commands WHERE id = $1 RETURNING instance_name", [id]) {
            touch(row.string(0))
            changedWork = true
        }
    }

    func acknowledgeCommand(id: String, deadline: Double) throws -> Bool {
        if case .some(.some(var known)) = cache.commands[id] {
            try later("UPDATE host_commands SET acknowledged = 1, deadline = $1 WHERE id = $2", [deadline, id])
            known.acknowledged = true
            known.deadline = deadline
            cache.commands[id] = known
            touch(known.instanceName)
            changedWork = true
            return true
        }
        cache.commands[id] = nil
        let changed = try rows("UPDATE host_commands SET acknowledged = 1, deadline = $1 WHERE id = $2 RETURNING instance_name", [deadline, id])
        for row in changed {
            touch(row.string(0))
            changedWork = true
        }
        return changed.count == 1
    }

    /// Against the lower bound of every command's deadline (``PostgresSchema``, v2), one row: `MIN(deadline)` over
    /// the index walked the dead versions every acknowledgement and completion leaves at its low end, and was half
    /// the database's time in a 1,000-agent deployment.
    func hasOverdueCommands(now: Double) throws -> Bool {
        try exists("SELECT (SELECT next FROM host_command_deadline) < $1", [now])
    }

    /// Nothing, after one row's read, while the bound says no deadline has passed. Otherwise the overdue commands,
    /// and (in a write) the bound set to the earliest deadline there is, so that it stops saying so once the caller
    /// has failed them.
    func overdueCommands(now: Double) throws -> [HostCommandRecord] {
        guard try hasOverdueCommands(now: now) else { return [] }
        let overdue = try rows("SELECT \(Self.commandColumns) FROM host_commands WHERE deadline < $1 ORDER BY deadline, id", [now]).map(
            commandRecord)
        if writable {
            try run("UPDATE host_command_deadline SET next = COALESCE((SELECT MIN(deadline) FROM host_commands), 'Infinity')")
        }
        return overdue
    }

    func hasCommand(deploymentId: String, instance: String) throws -> Bool {
        try exists("SELECT EXISTS (SELECT 1 FROM host_commands WHERE deployment_id = $1 AND instance_name = $2)", [deploymentId, instance])
    }

    func commandInstances(deploymentId: String) throws -> [String] {
        try strings("SELECT instance_name FROM host_commands WHERE deployment_id = $1 ORDER BY instance_name", [deploymentId])
    }

    func commands(eventNames: [String]) throws -> [HostCommandRecord] {
        guard !eventNames.isEmpty else { return [] }
        let marks = eventNames.indices.map { "$\($0 + 1)" }.joined(separator: ", ")
        return try rows("SELECT \(Self.commandColumns) FROM host_commands WHERE event_name IN (\(marks)) ORDER BY deadline, id", eventNames).map(
            commandRecord)
    }

    // MARK: Revisions

    private static let revisionColumns =
        "application_id, location_key, location, description, deployment_groups, first_used_time, last_used_time, register_time"

    private func revisionRecord(_ row: PostgresRow) throws -> RevisionRecord {
        RevisionRecord(
            applicationId: row.string(0), key: row.string(1), location: try fromStoredJSON(RevisionLocation.self, row.string(2)),
            description: row.optionalString(3), deploymentGroups: try fromStoredJSON([String].self, row.string(4)),
            firstUsedTime: row.optionalDouble(5).map(Date.init(timeIntervalSince1970:)),
            lastUsedTime: row.optionalDouble(6).map(Date.init(timeIntervalSince1970:)), registerTime: row.date(7))
    }

    func revision(applicationId: String, key: String) throws -> RevisionRecord? {
        try rows("SELECT \(Self.revisionColumns) FROM revisions WHERE application_id = $1 AND location_key = $2", [applicationId, key]).first.map(
            revisionRecord)
    }

    func revisions(applicationId: String) throws -> [RevisionRecord] {
        try rows("SELECT \(Self.revisionColumns) FROM revisions WHERE application_id = $1 ORDER BY seq", [applicationId]).map(revisionRecord)
    }

    func insertRevision(_ record: RevisionRecord) throws {
        try run(
            """
            INSERT INTO revisions (application_id, location_key, location, description, register_time, deployment_groups,
                first_used_time, last_used_time, seq)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, (SELECT COALESCE(MAX(seq), 0) + 1 FROM revisions))
            """,
            [
                record.applicationId, record.key, try storedJSON(record.location), record.description, record.registerTime.timeIntervalSince1970,
                try storedJSON(record.deploymentGroups), record.firstUsedTime?.timeIntervalSince1970, record.lastUsedTime?.timeIntervalSince1970,
            ])
    }

    func updateRevision(_ record: RevisionRecord) throws {
        try run(
            """
            UPDATE revisions SET description = $1, deployment_groups = $2, first_used_time = $3, last_used_time = $4
            WHERE application_id = $5 AND location_key = $6
            """,
            [
                record.description, try storedJSON(record.deploymentGroups), record.firstUsedTime?.timeIntervalSince1970,
                record.lastUsedTime?.timeIntervalSince1970, record.applicationId, record.key,
            ])
    }

    // MARK: Access keys

    private static let accessKeyColumns = "access_key_id, user_name, secret_access_key, status, role, create_time"

    private func accessKeyRecord(_ row: PostgresRow) -> AccessKeyRecord {
        AccessKeyRecord(
            accessKeyId: row.string(0), userName: row.string(1), secretAccessKey: row.string(2), status: row.string(3), role: row.string(4),
            createDate: row.date(5))
    }

    func accessKey(id: String) throws -> AccessKeyRecord? {
        try rows("SELECT \(Self.accessKeyColumns) FROM access_keys WHERE access_key_id = $1", [id]).first.map(accessKeyRecord)
    }

    func accessKeys(userName: String?) throws -> [AccessKeyRecord] {
        if let userName {
            return try rows(
                "SELECT \(Self.accessKeyColumns) FROM access_keys WHERE user_name = $1 ORDER BY create_time, access_key_id", [userName]
            ).map(accessKeyRecord)
        }
        return try rows("SELECT \(Self.accessKeyColumns) FROM access_keys ORDER BY user_name, create_time, access_key_id").map(accessKeyRecord)
    }

    func insertAccessKey(_ record: AccessKeyRecord) throws {
        try run(
            "INSERT INTO access_keys (access_key_id, user_name, secret_access_key, status, role, create_time) VALUES ($1, $2, $3, $4, $5, $6)",
            [record.accessKeyId, record.userName, record.secretAccessKey, record.status, record.role, record.createDate.timeIntervalSince1970])
        changedAccess = true
    }

    func updateAccessKey(_ record: AccessKeyRecord) throws {
        try run(
            "UPDATE access_keys SET user_name = $1, secret_access_key = $2, status = $3, role = $4 WHERE access_key_id = $5",
            [record.userName, record.secretAccessKey, record.status, record.role, record.accessKeyId])
        changedAccess = true
    }

    func deleteAccessKey(id: String) throws {
        try run("DELETE FROM access_keys WHERE access_key_id = $1", [id])
        changedAccess = true
    }

    // MARK: Leases

    func lease(instance: String) throws -> LeaseRecord? {
        try rows("SELECT instance_name, holder, host_name, pid, started, expires FROM agent_leases WHERE instance_name = $1", [instance]).first.map {
            LeaseRecord(
                instanceName: $0.string(0), holder: $0.string(1), hostName: $0.string(2), pid: Int32($0.int(3)), started: $0.double(4),
                expires: $0.double(5))
        }
    }

    func saveLease(_ record: LeaseRecord) throws {
        try run(
            """
            INSERT INTO agent_leases (instance_name, holder, host_name, pid, started, expires) VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (instance_name) DO UPDATE SET holder = excluded.holder, host_name = excluded.host_name, pid = excluded.pid,
                started = excluded.started, expires = excluded.expires
            """, [record.instanceName, record.holder, record.hostName, record.pid, record.started, record.expires])
    }

    func deleteLease(instance: String, holder: String) throws {
        try run("DELETE FROM agent_leases WHERE instance_name = $1 AND holder = $2", [instance, holder])
    }

    // MARK: Agent contacts

    func recordAgentContact(_ record: AgentContactRecord) throws {
        try run(
            """
            INSERT INTO agent_contacts (instance_name, last_seen, address, agent) VALUES ($1, $2, $3, $4)
            ON CONFLICT (instance_name) DO UPDATE SET last_seen = excluded.last_seen, address = excluded.address, agent = excluded.agent
                WHERE excluded.last_seen >= agent_contacts.last_seen
            """, [record.instanceName, record.lastSeen, record.address, record.agent])
    }

    func agentContacts() throws -> [AgentContactRecord] {
        try rows("SELECT instance_name, last_seen, address, agent FROM agent_contacts ORDER BY instance_name").map {
            AgentContactRecord(instanceName: $0.string(0), lastSeen: $0.double(1), address: $0.string(2), agent: $0.string(3))
        }
    }

    func runningEvents() throws -> [String: String] {
        var running: [String: String] = [:]
        for row in try rows("SELECT instance_name, event_name FROM host_commands WHERE acknowledged = 1") {
            running[row.string(0)] = row.string(1)
        }
        return running
    }

    // MARK: The event stream

    func appendEvent(_ event: EventRecord) throws -> Int64 {
        // Writes are serialized (the store's write lock), so sequence numbers commit in the order they are given, and
        // once this transaction knows the last one, it knows the next without asking.
        // The counter and the row in one statement: one round trip for the first event, none for the others.
        let sql = """
            WITH next AS (UPDATE event_sequence SET last = last + 1 RETURNING last)
            INSERT INTO events (sequence, time, deployment_id, application_name, instance_name, body)
            SELECT last, $1::double precision, $2::text, $3::text, $4::text, $5::text FROM next RETURNING sequence
            """
        let parameters: [(any PostgresParameter)?] = [event.time, event.deploymentId, event.applicationName, event.instanceName, event.body]
        let sequence: Int64
        if let last = cache.lastEventSequence {
            try later(sql, parameters)
            sequence = last + 1
        } else {
            sequence = try rows(sql, parameters).first?.int64(0) ?? 0
        }
        cache.lastEventSequence = sequence
        return sequence
    }

    func events(_ filter: EventFilter) throws -> [EventRecord] {
        var clauses = ["sequence > $1"]
        var parameters: [(any PostgresParameter)?] = [filter.after]
        if let id = filter.deploymentId {
            parameters.append(id)
            clauses.append("deployment_id = $\(parameters.count)")
        }
        if let name = filter.applicationName {
            parameters.append(name)
            clauses.append("application_name = $\(parameters.count)")
        }
        if let since = filter.since {
            parameters.append(since)
            clauses.append("time >= $\(parameters.count)")
        }
        parameters.append(filter.limit)
        let sql = """
            SELECT sequence, time, deployment_id, application_name, instance_name, body FROM events
            WHERE \(clauses.joined(separator: " AND ")) ORDER BY sequence LIMIT $\(parameters.count)
            """
        return try rows(sql, parameters).map {
            EventRecord(
                sequence: $0.int64(0), time: $0.double(1), deploymentId: $0.string(2), applicationName: $0.string(3),
                instanceName: $0.optionalString(4),
                body: $0.string(5))
        }
    }

    func deleteEvents(before time: Double, limit: Int) throws -> Int {
        // The oldest `limit` rows by sequence (the primary key): never a scan of the whole table.
        try run("DELETE FROM events WHERE sequence IN (SELECT sequence FROM events ORDER BY sequence LIMIT $1) AND time < $2", [limit, time])
    }

    func lastEventSequence() throws -> Int64 {
        try rows("SELECT last FROM event_sequence").first?.int64(0) ?? 0
    }

    // MARK: Alarms

    private static let alarmColumns = "name, kind, state, reason, updated, definition"

    private func alarmRecord(_ row: PostgresRow) -> AlarmRecord {
        AlarmRecord(
            name: row.string(0), kind: row.string(1), state: row.string(2), reason: row.string(3), updated: row.double(4), definition: row.string(5))
    }

    func alarm(named name: String) throws -> AlarmRecord? {
        try rows("SELECT \(Self.alarmColumns) FROM alarms WHERE name = $1", [name]).first.map(alarmRecord)
    }

    func alarms() throws -> [AlarmRecord] {
        try rows("SELECT \(Self.alarmColumns) FROM alarms ORDER BY name").map(alarmRecord)
    }

    func saveAlarm(_ record: AlarmRecord) throws {
        try run(
            """
            INSERT INTO alarms (name, kind, state, reason, updated, definition) VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, state = excluded.state, reason = excluded.reason,
                updated = excluded.updated, definition = excluded.definition
            """, [record.name, record.kind, record.state, record.reason, record.updated, record.definition])
    }

    func deleteAlarm(named name: String) throws {
        try run("DELETE FROM alarms WHERE name = $1", [name])
    }

    // MARK: Topics and subscriptions

    func topic(arn: String) throws -> TopicRecord? {
        try rows("SELECT arn, name, created FROM topics WHERE arn = $1", [arn]).first.map {
            TopicRecord(arn: $0.string(0), name: $0.string(1), created: $0.double(2))
        }
    }

    func topics() throws -> [TopicRecord] {
        try rows("SELECT arn, name, created FROM topics ORDER BY arn").map {
            TopicRecord(arn: $0.string(0), name: $0.string(1), created: $0.double(2))
        }
    }

    func insertTopic(_ record: TopicRecord) throws {
        try run("INSERT INTO topics (arn, name, created) VALUES ($1, $2, $3)", [record.arn, record.name, record.created])
    }

    func deleteTopic(arn: String) throws {
        try run("DELETE FROM topics WHERE arn = $1", [arn])
    }

    private static let subscriptionColumns = "arn, topic_arn, protocol, endpoint, confirmed, token, secret, owner, created"

    private func subscriptionRecord(_ row: PostgresRow) -> SubscriptionRecord {
        SubscriptionRecord(
            arn: row.string(0), topicArn: row.string(1), protocolName: row.string(2), endpoint: row.string(3), confirmed: row.bool(4),
            token: row.string(5), secret: row.string(6), owner: row.string(7), created: row.double(8))
    }

    func subscription(arn: String) throws -> SubscriptionRecord? {
        try rows("SELECT \(Self.subscriptionColumns) FROM subscriptions WHERE arn = $1", [arn]).first.map(subscriptionRecord)
    }

    func subscriptions(topicArn: String) throws -> [SubscriptionRecord] {
        try rows("SELECT \(Self.subscriptionColumns) FROM subscriptions WHERE topic_arn = $1 ORDER BY created, seq", [topicArn]).map(
            subscriptionRecord)
    }

    func saveSubscription(_ record: SubscriptionRecord) throws {
        try run(
            """
            INSERT INTO subscriptions (arn, topic_arn, protocol, endpoint, confirmed, token, secret, owner, created)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (arn) DO UPDATE SET confirmed = excluded.confirmed, token = excluded.token, secret = excluded.secret,
                endpoint = excluded.endpoint
            """,
            [
                record.arn, record.topicArn, record.protocolName, record.endpoint, record.confirmed, record.token, record.secret, record.owner,
                record.created,
            ])
    }

    func deleteSubscription(arn: String) throws {
        try run("DELETE FROM subscriptions WHERE arn = $1", [arn])
    }

    // MARK: Deliveries

    private static let deliveryColumns = """
        id, message_id, type, topic_arn, subscription_arn, endpoint, subject, message, created, state, attempts, next_attempt, last_error, \
        origin, deployment_id
        """

    private func deliveryRecord(_ row: PostgresRow) -> DeliveryRecord {
        DeliveryRecord(
            id: row.int64(0), messageId: row.string(1), type: row.string(2), topicArn: row.string(3), subscriptionArn: row.string(4),
            endpoint: row.string(5), subject: row.optionalString(6), message: row.string(7), created: row.double(8), state: row.string(9),
            attempts: row.int(10), nextAttempt: row.double(11), lastError: row.optionalString(12), origin: row.string(13),
            deploymentId: row.optionalString(14))
    }

    func insertDelivery(_ record: DeliveryRecord) throws -> Int64 {
        try rows(
            """
            INSERT INTO deliveries (message_id, type, topic_arn, subscription_arn, endpoint, subject, message, created, state, attempts,
                next_attempt, last_error, origin, deployment_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id
            """,
            [
                record.messageId, record.type, record.topicArn, record.subscriptionArn, record.endpoint, record.subject, record.message,
                record.created, record.state, record.attempts, record.nextAttempt, record.lastError, record.origin, record.deploymentId,
            ]
        ).first?.int64(0) ?? 0
    }

    func updateDelivery(_ record: DeliveryRecord) throws {
        try run(
            "UPDATE deliveries SET state = $1, attempts = $2, next_attempt = $3, last_error = $4 WHERE id = $5",
            [record.state, record.attempts, record.nextAttempt, record.lastError, record.id])
    }

    func dueDeliveries(now: Double, limit: Int) throws -> [DeliveryRecord] {
        try rows(
            "SELECT \(Self.deliveryColumns) FROM deliveries WHERE state = 'pending' AND next_attempt <= $1 ORDER BY id LIMIT $2", [now, limit]
        ).map(deliveryRecord)
    }

    func firstPendingDelivery(subscriptionArn: String) throws -> Int64? {
        try rows("SELECT MIN(id) FROM deliveries WHERE subscription_arn = $1 AND state = 'pending'", [subscriptionArn]).first?.optionalInt64(0)
    }

    func nextDeliveryTime() throws -> Double? {
        try rows("SELECT MIN(next_attempt) FROM deliveries WHERE state = 'pending'").first?.optionalDouble(0)
    }

    func deliveries(_ filter: DeliveryFilter) throws -> [DeliveryRecord] {
        var clauses = ["TRUE"]
        var parameters: [(any PostgresParameter)?] = []
        if let before = filter.before {
            parameters.append(before)
            clauses.append("id < $\(parameters.count)")
        }
        for (column, value) in [("state", filter.state), ("topic_arn", filter.topicArn), ("deployment_id", filter.deploymentId)] {
            guard let value else { continue }
            parameters.append(value)
            clauses.append("\(column) = $\(parameters.count)")
        }
        parameters.append(filter.limit)
        let sql =
            "SELECT \(Self.deliveryColumns) FROM deliveries WHERE \(clauses.joined(separator: " AND ")) ORDER BY id DESC LIMIT $\(parameters.count)"
        return try rows(sql, parameters).map(deliveryRecord)
    }

    func deliveryStateCounts() throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try rows("SELECT state, COUNT(*) FROM deliveries GROUP BY state") {
            counts[row.string(0)] = row.int(1)
        }
        return counts
    }

    func insertDeliveryAttempt(_ record: DeliveryAttemptRecord) throws {
        try run(
            """
            INSERT INTO delivery_attempts (delivery_id, attempt, time, milliseconds, status, error) VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (delivery_id, attempt) DO UPDATE SET time = excluded.time, milliseconds = excluded.milliseconds,
                status = excluded.status, error = excluded.error
            """, [record.deliveryId, record.attempt, record.time, record.milliseconds, record.status, record.error])
    }

    func deleteDeliveryAttempt(deliveryId: Int64, attempt: Int) throws {
        try run("DELETE FROM delivery_attempts WHERE delivery_id = $1 AND attempt = $2", [deliveryId, attempt])
    }

    func deliveryAttempts(deliveryId: Int64) throws -> [DeliveryAttemptRecord] {
        try rows(
            "SELECT delivery_id, attempt, time, milliseconds, status, error FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt",
            [
                deliveryId
            ]
        ).map {
            DeliveryAttemptRecord(
                deliveryId: $0.int64(0), attempt: $0.int(1), time: $0.double(2), milliseconds: $0.int(3), status: $0.optionalInt(4),
                error: $0.optionalString(5))
        }
    }

    func deleteFinishedDeliveries(before time: Double, limit: Int) throws -> Int {
        // The oldest `limit` rows by id: never a scan of the whole table. Attempts go with them (ON DELETE CASCADE).
        try run(
            "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries ORDER BY id LIMIT $1) AND state != 'pending' AND created < $2",
            [
                limit, time,
            ])
    }
}

/// What a transaction has read of the rows an agent's request reads again and again (the deployment, its group, its
/// targets' status counts, a target, a host command), kept for the rest of the transaction and, in a group
/// (``PostgresStore/batched(_:)``), for the group's later requests: they all run under the write lock, and every
/// change of those rows goes through these transactions, which update or forget the entry (a request that fails
/// rolls back to its savepoint and the group starts a new cache).
final class RowCache {
    var deployments: [String: DeploymentInfo?] = [:]
    var groupIds: [String: String?] = [:]
    var targets: [String: InstanceTarget?] = [:]
    /// Per deployment, its targets' counts by status (those above zero).
    var counts: [String: [String: Int]] = [:]
    var commands: [String: HostCommandRecord?] = [:]
    /// The event stream's last sequence number, once an event was appended.
    var lastEventSequence: Int64?
    /// In a read-only transaction (one snapshot), whether an instance has a command it has not acknowledged.
    var unacknowledged: [String: Bool] = [:]

    /// Forgets everything (a delete that cascades to deployments, targets and commands).
    func removeAll() {
        deployments = [:]
        groupIds = [:]
        targets = [:]
        counts = [:]
        commands = [:]
        lastEventSequence = nil
        unacknowledged = [:]
    }
}
