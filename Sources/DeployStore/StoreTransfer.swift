import DeployModel
import Foundation

/// What a store must add to ``StoreTransaction`` to be copied whole (`deployctl migrate`): read a deployment's own
/// columns, take rows with the numbers they already have, and tell or make itself empty.
public protocol TransferableTransaction: StoreTransaction {
    /// The deployment's record as stored (its application and group ids, its creation time).
    func deploymentRecord(id: String) throws -> DeploymentRecord?
    /// Inserts an event with its own sequence number; the stream's next number stays above it.
    func importEvent(_ event: EventRecord) throws
    /// Inserts a delivery with its own id; the next id stays above it.
    func importDelivery(_ record: DeliveryRecord) throws
    /// Moves the stream's last sequence number up to `sequence` (the source may have deleted its newest events).
    func advanceEventSequence(to sequence: Int64) throws
    /// Whether the store holds no application, instance, access key, alarm, topic or deployment.
    func isEmpty() throws -> Bool
    /// Deletes every row (`deployctl migrate --replace`).
    func eraseAll() throws
}

/// Everything one store holds, read in one snapshot, in the order that writing it back keeps every list's order.
public struct StoreSnapshot: Sendable {
    public var applications: [ApplicationRecord] = []
    public var groups: [GroupRecord] = []
    public var configs: [ConfigRecord] = []
    public var resourceTags: [(owner: String, tags: [Tag])] = []
    public var instances: [InstanceRecord] = []
    public var instanceTags: [(owner: String, tags: [Tag])] = []
    public var revisions: [RevisionRecord] = []
    /// Oldest first, each with its targets in position order.
    public var deployments: [(record: DeploymentRecord, targets: [InstanceTarget])] = []
    public var commands: [HostCommandRecord] = []
    public var accessKeys: [AccessKeyRecord] = []
    public var contacts: [AgentContactRecord] = []
    public var events: [EventRecord] = []
    public var lastEventSequence: Int64 = 0
    public var alarms: [AlarmRecord] = []
    public var topics: [TopicRecord] = []
    public var subscriptions: [SubscriptionRecord] = []
    /// Oldest first, each with its attempts.
    public var deliveries: [(record: DeliveryRecord, attempts: [DeliveryAttemptRecord])] = []

    /// Reads the whole store in `tx` (one snapshot).
    public init(reading tx: any TransferableTransaction) throws {
        for name in try tx.applicationNames() {
            guard let application = try tx.application(named: name) else { continue }
            applications.append(application)
            resourceTags.append((application.id, try tx.tags(of: .resource(application.id))))
            for groupName in try tx.groupNames(applicationId: application.id) {
                guard let group = try tx.group(applicationId: application.id, name: groupName) else { continue }
                groups.append(group)
                resourceTags.append((group.id, try tx.tags(of: .resource(group.id))))
            }
            revisions += try tx.revisions(applicationId: application.id)
        }
        for name in try tx.configNames() {
            guard let config = try tx.config(named: name) else { continue }
            configs.append(config)
            resourceTags.append((config.id, try tx.tags(of: .resource(config.id))))
        }
        resourceTags.removeAll { $0.tags.isEmpty }
        for name in try tx.instanceNames(registered: nil) {
            guard let instance = try tx.instance(named: name) else { continue }
            instances.append(instance)
            let tags = try tx.tags(of: .instance(name))
            if !tags.isEmpty { instanceTags.append((name, tags)) }
        }
        for id in try tx.deploymentIds(matching: DeploymentFilter()).reversed() {
            guard let record = try tx.deploymentRecord(id: id) else { continue }
            deployments.append((record, try tx.targets(deploymentId: id)))
        }
        commands = try tx.overdueCommands(now: .infinity)
        accessKeys = try tx.accessKeys(userName: nil)
        contacts = try tx.agentContacts()
        var after: Int64 = 0
        while true {
            let page = try tx.events(EventFilter(after: after, limit: 10_000))
            events += page
            guard let last = page.last, page.count == 10_000 else { break }
            after = last.sequence
        }
        lastEventSequence = try tx.lastEventSequence()
        alarms = try tx.alarms()
        topics = try tx.topics()
        for topic in topics { subscriptions += try tx.subscriptions(topicArn: topic.arn) }
        var before: Int64?
        var newestFirst: [DeliveryRecord] = []
        while true {
            let page = try tx.deliveries(DeliveryFilter(before: before, limit: 10_000))
            newestFirst += page
            guard let last = page.last, page.count == 10_000 else { break }
            before = last.id
        }
        for delivery in newestFirst.reversed() { deliveries.append((delivery, try tx.deliveryAttempts(deliveryId: delivery.id))) }
    }

    /// Writes everything into `tx`, which must be empty.
    public func write(into tx: any TransferableTransaction) throws {
        for application in applications { try tx.insertApplication(application) }
        for config in configs { try tx.insertConfig(config) }
        for group in groups { try tx.insertGroup(group) }
        for (owner, tags) in resourceTags { try tx.upsertTags(tags.map { ($0.key ?? "", $0.value ?? "") }, on: .resource(owner)) }
        for instance in instances { try tx.insertInstance(instance) }
        for (owner, tags) in instanceTags { try tx.upsertTags(tags.map { ($0.key ?? "", $0.value ?? "") }, on: .instance(owner)) }
        for revision in revisions { try tx.insertRevision(revision) }
        for (record, targets) in deployments {
            try tx.insertDeployment(record)
            for (position, target) in targets.enumerated() { try tx.insertTarget(target, deploymentId: record.id, position: position) }
        }
        for command in commands { try tx.insertCommand(command) }
        for key in accessKeys { try tx.insertAccessKey(key) }
        for contact in contacts { try tx.recordAgentContact(contact) }
        for event in events { try tx.importEvent(event) }
        try tx.advanceEventSequence(to: lastEventSequence)
        for alarm in alarms { try tx.saveAlarm(alarm) }
        for topic in topics { try tx.insertTopic(topic) }
        for subscription in subscriptions { try tx.saveSubscription(subscription) }
        for (delivery, attempts) in deliveries {
            try tx.importDelivery(delivery)
            for attempt in attempts { try tx.insertDeliveryAttempt(attempt) }
        }
    }

    /// How many records of each kind, and a checksum of their contents (FNV-1a, 64 bits, over a canonical line per
    /// record, in the snapshot's order): two stores with the same inventory hold the same records in the same orders.
    public var inventory: [(kind: String, count: Int, checksum: String)] {
        func entry(_ kind: String, _ lines: [String]) -> (String, Int, String) {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for line in lines {
                for byte in line.utf8 + [10] {
                    hash ^= UInt64(byte)
                    hash = hash &* 0x100_0000_01b3
                }
            }
            return (kind, lines.count, String(hash, radix: 16))
        }
        func time(_ date: Date?) -> String { date.map { String($0.timeIntervalSince1970) } ?? "-" }
        func json<T: Encodable>(_ value: T) -> String { (try? storedJSON(value)) ?? "?" }
        return [
            entry("applications", applications.map { "\($0.id)|\($0.name)|\($0.computePlatform)|\(time($0.createTime))" }),
            entry("deployment groups", groups.map { "\($0.id)|\($0.applicationId)|\($0.name)|\($0.configName)|\(json($0.info))" }),
            entry("deployment configs", configs.map { "\($0.id)|\($0.name)|\(json($0.info))|\(time($0.createTime))" }),
            entry("tags", (resourceTags + instanceTags).map { "\($0.owner)|\(json($0.tags))" }),
            entry("instances", instances.map { "\($0.name)|\($0.registered)|\(json($0.info))" }),
            entry(
                "revisions",
                revisions.map {
                    "\($0.applicationId)|\($0.key)|\(json($0.location))|\($0.description ?? "-")|\($0.deploymentGroups)|\(time($0.firstUsedTime))|\(time($0.lastUsedTime))|\(time($0.registerTime))"
                }),
            entry(
                "deployments",
                deployments.map {
                    "\($0.record.id)|\($0.record.applicationId)|\($0.record.groupId)|\(time($0.record.createTime))|\(json($0.record.info))"
                }),
            entry("deployment targets", deployments.flatMap { deployment in deployment.targets.map { "\(deployment.record.id)|\(json($0))" } }),
            entry(
                "host commands", commands.map { "\($0.id)|\($0.deploymentId)|\($0.instanceName)|\($0.eventName)|\($0.acknowledged)|\($0.deadline)" }),
            entry(
                "access keys",
                accessKeys.map { "\($0.accessKeyId)|\($0.userName)|\($0.secretAccessKey)|\($0.status)|\($0.role)|\(time($0.createDate))" }),
            entry("agent contacts", contacts.map { "\($0.instanceName)|\($0.lastSeen)|\($0.address)|\($0.agent)" }),
            entry(
                "events",
                events.map { "\($0.sequence)|\($0.time)|\($0.deploymentId)|\($0.applicationName)|\($0.instanceName ?? "-")|\($0.body)" }
                    + ["last \(lastEventSequence)"]),
            entry("alarms", alarms.map { "\($0.name)|\($0.kind)|\($0.state)|\($0.reason)|\($0.updated)|\($0.definition)" }),
            entry("topics", topics.map { "\($0.arn)|\($0.name)|\($0.created)" }),
            entry(
                "subscriptions",
                subscriptions.map {
                    "\($0.arn)|\($0.topicArn)|\($0.protocolName)|\($0.endpoint)|\($0.confirmed)|\($0.token)|\($0.secret)|\($0.owner)|\($0.created)"
                }),
            entry(
                "deliveries",
                deliveries.map { delivery, attempts in
                    let d = delivery
                    let head =
                        "\(d.id)|\(d.messageId)|\(d.type)|\(d.topicArn)|\(d.subscriptionArn)|\(d.endpoint)|\(d.subject ?? "-")|\(d.message)|\(d.created)"
                    let tail = "\(d.state)|\(d.attempts)|\(d.nextAttempt)|\(d.lastError ?? "-")|\(d.origin)|\(d.deploymentId ?? "-")"
                    let tried = attempts.map { "\($0.attempt)|\($0.time)|\($0.milliseconds)|\($0.status ?? -1)|\($0.error ?? "-")" }
                    return ([head, tail] + tried).joined(separator: "|")
                }),
        ]
    }
}

/// Copies one store into another in one write transaction on the target, then reads the target back and compares
/// inventories (`deployctl migrate`).
public enum StoreTransfer {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// What was copied: each kind's count and checksum, equal on both sides.
    public typealias Report = [(kind: String, count: Int, checksum: String)]

    /// Copies `source` into `target`, and reads the target back inside the same transaction: a copy that does not
    /// verify is rolled back. A target that holds anything is refused unless `replacing`, which erases it in that
    /// transaction too (so a failed copy leaves it as it was).
    public static func copy(from source: any DeployStore, to target: any DeployStore, replacing: Bool) throws -> Report {
        let snapshot = try source.read { tx in try StoreSnapshot(reading: try transferable(tx, "the source")) }
        let expected = snapshot.inventory
        try target.write { tx in
            let tx = try transferable(tx, "the target")
            if try !tx.isEmpty() {
                guard replacing else {
                    throw Failure(
                        description:
                            "the target already holds applications, instances, keys or deployments; give --replace to erase it first (in the same transaction)"
                    )
                }
                try tx.eraseAll()
            }
            try snapshot.write(into: tx)
            let copied = try StoreSnapshot(reading: tx).inventory
            for (want, got) in zip(expected, copied) where want.count != got.count || want.checksum != got.checksum {
                throw Failure(
                    description:
                        "verification failed for \(want.kind): the source has \(want.count) (checksum \(want.checksum)), the copy \(got.count) (checksum \(got.checksum)); nothing was written"
                )
            }
        }
        return expected
    }

    private static func transferable(_ tx: any StoreTransaction, _ side: String) throws -> any TransferableTransaction {
        guard let tx = tx as? any TransferableTransaction else {
            throw Failure(description: "\(side) cannot be copied whole (only state files and PostgreSQL databases can)")
        }
        return tx
    }
}
