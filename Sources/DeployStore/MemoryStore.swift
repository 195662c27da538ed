import DeployModel
import Foundation

/// A ``DeployStore`` in memory, for tests and for runs that need no file: the same contract as the SQLite store.
/// A write works on a copy of the tables that replaces them only when the body returns, so a throwing body leaves
/// nothing behind; one lock serializes writers, and readers get a consistent snapshot.
public final class MemoryStore: DeployStore, @unchecked Sendable {
    private let lock = NSLock()
    private var tables = MemoryTables()

    public init() {}

    public func read<T>(_ body: (any StoreTransaction) throws -> T) throws -> T {
        let snapshot = lock.withLock { tables }
        return try body(MemoryTransaction(box: TablesBox(snapshot), writable: false))
    }

    public func write<T>(_ body: (any StoreTransaction) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        let box = TablesBox(tables)
        let result = try body(MemoryTransaction(box: box, writable: true))
        tables = box.tables
        return result
    }
}

/// Thrown by a write inside `read`.
public struct ReadOnlyTransaction: Error, CustomStringConvertible {
    public var description: String { "a write was attempted inside a read transaction" }
}

struct MemoryTables {
    struct Deployment {
        var record: DeploymentRecord
        var sequence: Int
    }

    var applications: [String: ApplicationRecord] = [:]
    var groups: [String: GroupRecord] = [:]
    var configs: [String: ConfigRecord] = [:]
    var tags: [TagOwner: [(key: String, value: String)]] = [:]
    var instances: [String: InstanceRecord] = [:]
    var deployments: [String: Deployment] = [:]
    var targets: [String: [(position: Int, target: InstanceTarget)]] = [:]
    var commands: [String: HostCommandRecord] = [:]
    var revisions: [String: [RevisionRecord]] = [:]
    var leases: [String: LeaseRecord] = [:]
    var contacts: [String: AgentContactRecord] = [:]
    var accessKeys: [String: AccessKeyRecord] = [:]
    var sequence = 0
    var events: [EventRecord] = []
    var alarms: [String: AlarmRecord] = [:]
    var lastEventSequence: Int64 = 0
    var topics: [String: TopicRecord] = [:]
    var subscriptions: [SubscriptionRecord] = []
    var deliveries: [Int64: DeliveryRecord] = [:]
    var deliveryAttempts: [DeliveryAttemptRecord] = []
    var lastDeliveryId: Int64 = 0
}

final class TablesBox {
    var tables: MemoryTables
    init(_ tables: MemoryTables) { self.tables = tables }
}

struct MemoryTransaction: StoreTransaction {
    let box: TablesBox
    let writable: Bool

    var t: MemoryTables { box.tables }

    func change(_ body: (inout MemoryTables) throws -> Void) throws {
        guard writable else { throw ReadOnlyTransaction() }
        try body(&box.tables)
    }

    static let activeStatuses: Set<String> = ["Created", "Queued", "InProgress", "Baking", "Ready"]

    // MARK: Applications

    func application(named name: String) throws -> ApplicationRecord? { t.applications.values.first { $0.name == name } }
    func applicationNames() throws -> [String] { t.applications.values.map(\.name).sorted() }
    func insertApplication(_ record: ApplicationRecord) throws { try change { $0.applications[record.id] = record } }
    func renameApplication(id: String, to name: String) throws { try change { $0.applications[id]?.name = name } }
    func deleteApplication(id: String) throws {
        try change { tables in
            for group in tables.groups.values where group.applicationId == id {
                tables.groups[group.id] = nil
                tables.tags[.resource(group.id)] = nil
            }
            tables.applications[id] = nil
            tables.tags[.resource(id)] = nil
            tables.revisions[id] = nil
        }
    }

    // MARK: Groups

    func group(applicationId: String, name: String) throws -> GroupRecord? {
        t.groups.values.first { $0.applicationId == applicationId && $0.name == name }
    }
    func groupNames(applicationId: String) throws -> [String] { t.groups.values.filter { $0.applicationId == applicationId }.map(\.name).sorted() }
    func groupPaths(usingConfig configName: String) throws -> [String] {
        t.groups.values.filter { $0.configName == configName }.map { (t.applications[$0.applicationId]?.name ?? "") + "/" + $0.name }.sorted()
    }
    func insertGroup(_ record: GroupRecord) throws { try change { $0.groups[record.id] = record } }
    func updateGroup(_ record: GroupRecord) throws { try change { $0.groups[record.id] = record } }
    func deleteGroup(id: String) throws {
        try change {
            $0.groups[id] = nil
            $0.tags[.resource(id)] = nil
        }
    }

    // MARK: Configs

    func config(named name: String) throws -> ConfigRecord? { t.configs.values.first { $0.name == name } }
    func configNames() throws -> [String] { t.configs.values.map(\.name).sorted() }
    func insertConfig(_ record: ConfigRecord) throws { try change { $0.configs[record.id] = record } }
    func deleteConfig(id: String) throws {
        try change {
            $0.configs[id] = nil
            $0.tags[.resource(id)] = nil
        }
    }

    // MARK: Tags

    func tags(of owner: TagOwner) throws -> [Tag] { (t.tags[owner] ?? []).map { Tag(key: $0.key, value: $0.value) } }
    func upsertTags(_ tags: [(key: String, value: String)], on owner: TagOwner) throws -> Int {
        var count = 0
        try change { tables in
            var list = tables.tags[owner] ?? []
            for (key, value) in tags {
                if let index = list.firstIndex(where: { $0.key == key }) {
                    list[index].value = value
                } else {
                    list.append((key, value))
                }
            }
            tables.tags[owner] = list
            count = list.count
        }
        return count
    }
    func removeTag(key: String, value: String?, from owner: TagOwner) throws {
        try change { $0.tags[owner]?.removeAll { $0.key == key && (value == nil || $0.value == value) } }
    }

    // MARK: Instances

    func instance(named name: String) throws -> InstanceRecord? { t.instances[name] }
    func instanceNames(registered: Bool?) throws -> [String] {
        t.instances.values.filter { registered == nil || $0.registered == registered }.map(\.name).sorted()
    }
    func insertInstance(_ record: InstanceRecord) throws {
        try change {
            $0.instances[record.name] = record
            $0.tags[.instance(record.name)] = nil
        }
    }
    func updateInstance(_ record: InstanceRecord) throws { try change { $0.instances[record.name] = record } }

    // MARK: Deployments

    func deployment(id: String) throws -> DeploymentInfo? { t.deployments[id]?.record.info }
    func groupId(ofDeployment id: String) throws -> String? { t.deployments[id]?.record.groupId }
    func insertDeployment(_ record: DeploymentRecord) throws {
        try change {
            $0.sequence += 1
            $0.deployments[record.id] = .init(record: record, sequence: $0.sequence)
        }
    }
    func updateDeployment(_ info: DeploymentInfo) throws { try change { $0.deployments[info.deploymentId ?? ""]?.record.info = info } }

    /// Newest first: creation time, then creation order.
    var newestFirst: [MemoryTables.Deployment] {
        t.deployments.values.sorted {
            ($0.record.createTime, $0.sequence) > ($1.record.createTime, $1.sequence)
        }
    }

    func activeDeploymentId(groupId: String) throws -> String? {
        newestFirst.first { $0.record.groupId == groupId && Self.activeStatuses.contains($0.record.info.status?.rawValue ?? "") }?.record.id
    }
    func newestDeployment(groupId: String, status: String?, excluding: String?) throws -> DeploymentInfo? {
        newestFirst.first {
            $0.record.groupId == groupId && (status == nil || $0.record.info.status?.rawValue == status) && $0.record.id != excluding
        }?.record.info
    }
    func deploymentIds(matching filter: DeploymentFilter) throws -> [String] {
        newestFirst.filter { d in
            (filter.groupId == nil || d.record.groupId == filter.groupId)
                && (filter.statuses.isEmpty || filter.statuses.contains(d.record.info.status?.rawValue ?? ""))
                && (filter.createdFrom.map { d.record.createTime >= $0 } ?? true) && (filter.createdTo.map { d.record.createTime <= $0 } ?? true)
        }.map(\.record.id)
    }

    func insertTarget(_ target: InstanceTarget, deploymentId: String, position: Int) throws {
        try change { $0.targets[deploymentId, default: []].append((position, target)) }
    }
    func targets(deploymentId: String) throws -> [InstanceTarget] {
        (t.targets[deploymentId] ?? []).sorted { $0.position < $1.position }.map(\.target)
    }
    func targetStatusCounts(deploymentId: String) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for entry in t.targets[deploymentId] ?? [] { counts[entry.target.status?.rawValue ?? "Pending", default: 0] += 1 }
        return counts
    }
    func targetStatuses(deploymentId: String) throws -> [(targetId: String, status: String)] {
        (t.targets[deploymentId] ?? []).sorted { $0.position < $1.position }.map {
            ($0.target.targetId ?? "", $0.target.status?.rawValue ?? "Pending")
        }
    }
    func targetCount(deploymentId: String, status: String) throws -> Int {
        (t.targets[deploymentId] ?? []).filter { ($0.target.status?.rawValue ?? "Pending") == status }.count
    }
    func target(deploymentId: String, instance: String) throws -> InstanceTarget? {
        t.targets[deploymentId]?.first { $0.target.targetId == instance }?.target
    }
    func updateTarget(_ target: InstanceTarget) throws {
        try change { tables in
            guard let deployment = target.deploymentId,
                let index = tables.targets[deployment]?.firstIndex(where: { $0.target.targetId == target.targetId })
            else { return }
            tables.targets[deployment]?[index].target = target
        }
    }
    func newestTargetStatus(groupId: String, instance: String) throws -> String? {
        for d in newestFirst where d.record.groupId == groupId {
            if let target = t.targets[d.record.id]?.first(where: { $0.target.targetId == instance }) {
                return target.target.status?.rawValue ?? "Pending"
            }
        }
        return nil
    }

    // MARK: Host commands

    func hasWork(instance: String, now: Double, redeliverBefore: Double) throws -> Bool {
        if try hasOverdueCommands(now: now) { return true }
        if t.commands.values.contains(where: { $0.instanceName == instance && !$0.acknowledged && $0.deadline < redeliverBefore }) { return true }
        return try pollCandidates(instance: instance).contains { id in
            t.deployments[id]?.record.info.status == .created
                || !(t.commands.values.contains { $0.deploymentId == id && $0.instanceName == instance })
        }
    }
    func hasUnacknowledgedCommand(instance: String) throws -> Bool {
        t.commands.values.contains { $0.instanceName == instance && !$0.acknowledged }
    }
    func pollCandidates(instance: String) throws -> [String] {
        t.deployments.values.filter { d in
            guard let target = t.targets[d.record.id]?.first(where: { $0.target.targetId == instance })?.target else { return false }
            return d.record.info.status == .created || (d.record.info.status == .inProgress && target.status == .inProgress)
        }.sorted { ($0.record.createTime, $0.sequence) < ($1.record.createTime, $1.sequence) }.map(\.record.id)
    }
    func insertCommand(_ command: HostCommandRecord) throws { try change { $0.commands[command.id] = command } }
    func command(id: String) throws -> HostCommandRecord? { t.commands[id] }
    func deleteCommand(id: String) throws { try change { $0.commands[id] = nil } }
    func acknowledgeCommand(id: String, deadline: Double) throws -> Bool {
        guard t.commands[id] != nil else { return false }
        try change {
            $0.commands[id]?.acknowledged = true
            $0.commands[id]?.deadline = deadline
        }
        return true
    }
    func hasOverdueCommands(now: Double) throws -> Bool { t.commands.values.contains { $0.deadline < now } }
    func overdueCommands(now: Double) throws -> [HostCommandRecord] {
        t.commands.values.filter { $0.deadline < now }.sorted { ($0.deadline, $0.id) < ($1.deadline, $1.id) }
    }
    func outstandingCommand(deploymentId: String, instance: String) throws -> HostCommandRecord? {
        t.commands.values.first { $0.deploymentId == deploymentId && $0.instanceName == instance }
    }
    func hasCommand(deploymentId: String, instance: String) throws -> Bool {
        t.commands.values.contains { $0.deploymentId == deploymentId && $0.instanceName == instance }
    }
    func commandInstances(deploymentId: String) throws -> [String] {
        t.commands.values.filter { $0.deploymentId == deploymentId }.map(\.instanceName).sorted()
    }
    func commands(eventNames: [String]) throws -> [HostCommandRecord] {
        t.commands.values.filter { eventNames.contains($0.eventName) }.sorted { ($0.deadline, $0.id) < ($1.deadline, $1.id) }
    }

    // MARK: Revisions

    func revision(applicationId: String, key: String) throws -> RevisionRecord? { t.revisions[applicationId]?.first { $0.key == key } }
    func revisions(applicationId: String) throws -> [RevisionRecord] { t.revisions[applicationId] ?? [] }
    func insertRevision(_ record: RevisionRecord) throws { try change { $0.revisions[record.applicationId, default: []].append(record) } }
    func updateRevision(_ record: RevisionRecord) throws {
        try change { tables in
            guard let index = tables.revisions[record.applicationId]?.firstIndex(where: { $0.key == record.key }) else { return }
            tables.revisions[record.applicationId]?[index] = record
        }
    }

    // MARK: Access keys

    func accessKey(id: String) throws -> AccessKeyRecord? { t.accessKeys[id] }
    func accessKeys(userName: String?) throws -> [AccessKeyRecord] {
        t.accessKeys.values.filter { userName == nil || $0.userName == userName }.sorted {
            ($0.userName, $0.createDate, $0.accessKeyId) < ($1.userName, $1.createDate, $1.accessKeyId)
        }
    }
    func insertAccessKey(_ record: AccessKeyRecord) throws { try change { $0.accessKeys[record.accessKeyId] = record } }
    func updateAccessKey(_ record: AccessKeyRecord) throws { try change { $0.accessKeys[record.accessKeyId] = record } }
    func deleteAccessKey(id: String) throws { try change { $0.accessKeys[id] = nil } }

    // MARK: Leases

    func lease(instance: String) throws -> LeaseRecord? { t.leases[instance] }
    func saveLease(_ record: LeaseRecord) throws { try change { $0.leases[record.instanceName] = record } }
    func deleteLease(instance: String, holder: String) throws {
        try change { if $0.leases[instance]?.holder == holder { $0.leases[instance] = nil } }
    }

    // MARK: Agent contacts

    func recordAgentContact(_ record: AgentContactRecord) throws {
        try change { tables in
            if let known = tables.contacts[record.instanceName], known.lastSeen > record.lastSeen { return }
            tables.contacts[record.instanceName] = record
        }
    }
    func agentContacts() throws -> [AgentContactRecord] { t.contacts.values.sorted { $0.instanceName < $1.instanceName } }
    func runningEvents() throws -> [String: String] {
        var running: [String: String] = [:]
        for command in t.commands.values where command.acknowledged { running[command.instanceName] = command.eventName }
        return running
    }

    // MARK: The event stream

    func appendEvent(_ event: EventRecord) throws -> Int64 {
        var sequence: Int64 = 0
        try change { tables in
            tables.lastEventSequence += 1
            sequence = tables.lastEventSequence
            var stored = event
            stored.sequence = sequence
            tables.events.append(stored)
        }
        return sequence
    }

    func events(_ filter: EventFilter) throws -> [EventRecord] {
        let start = t.events.partitioningIndex { $0.sequence > filter.after }
        var found: [EventRecord] = []
        for event in t.events[start...] where found.count < filter.limit {
            if let id = filter.deploymentId, event.deploymentId != id { continue }
            if let name = filter.applicationName, event.applicationName != name { continue }
            if let since = filter.since, event.time < since { continue }
            found.append(event)
        }
        return found
    }

    func lastEventSequence() throws -> Int64 { t.lastEventSequence }

    // MARK: Alarms

    func alarm(named name: String) throws -> AlarmRecord? { t.alarms[name] }
    func alarms() throws -> [AlarmRecord] { t.alarms.values.sorted { $0.name < $1.name } }
    func saveAlarm(_ record: AlarmRecord) throws { try change { $0.alarms[record.name] = record } }
    func deleteAlarm(named name: String) throws { try change { $0.alarms[name] = nil } }

    func deleteEvents(before time: Double, limit: Int) throws -> Int {
        let count = t.events.prefix(limit).prefix { $0.time < time }.count
        if count > 0 { try change { $0.events.removeFirst(count) } }
        return count
    }
}

extension Array {
    /// The first index whose element satisfies `belongs`, for a predicate false then true along the array.
    fileprivate func partitioningIndex(where belongs: (Element) -> Bool) -> Int {
        var low = startIndex
        var high = endIndex
        while low < high {
            let middle = (low + high) / 2
            if belongs(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
