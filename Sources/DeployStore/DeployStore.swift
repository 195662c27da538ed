import DeployModel
import Foundation

/// Where the control plane keeps its state, in domain terms (ARCHITECTURE.md). The rules (`ControlPlane`) call
/// these methods and never see SQL; `DeployStoreSQLite` implements them on the state file, ``MemoryStore`` in memory
/// for tests, and a PostgreSQL store can implement them for several servers.
///
/// **Transactions.** `write` runs its body as one transaction: it commits whole or leaves nothing, and write
/// transactions of one store are serialized. `read` sees one consistent snapshot and never waits for a writer.
///
/// **Invariants each write transaction relies on** (a store built on row locks must give the same guarantees):
/// - *One dispatch per host command*: `pollHostCommand` checks `hasCommand(deploymentId:instance:)` and inserts the
///   command in the same transaction; at most one outstanding command exists per (deployment, instance) — a
///   PostgreSQL store takes the target row `FOR UPDATE` (or relies on the unique key) for it.
/// - *One active deployment per group*: `activeDeploymentId(groupId:)` and `insertDeployment` run in one transaction.
/// - *Each command completes once*: `command(id:)` and `deleteCommand(id:)` run in one transaction; a second
///   complete finds nothing.
/// - *Expiry is idempotent*: `overdueCommands(now:)` and `deleteCommand` in one transaction, so two sweepers
///   (agents, the CLI, server timers) fail an expired command once (`FOR UPDATE SKIP LOCKED` on PostgreSQL).
public protocol DeployStore: Sendable {
    func read<T>(_ body: (any StoreTransaction) throws -> T) throws -> T
    func write<T>(_ body: (any StoreTransaction) throws -> T) throws -> T
    /// Group commit: the writes `body` makes on this thread commit together when it returns, each still whole or
    /// nothing (a failed one leaves no trace and throws; the others stay), and reads inside see them. A store
    /// without it runs `body` as is, each write its own transaction.
    func batched<T>(_ body: () throws -> T) throws -> T
}

extension DeployStore {
    public func batched<T>(_ body: () throws -> T) throws -> T { try body() }
}

/// The domain operations of one transaction. Orderings are part of the contract: lists of names are sorted by name,
/// deployments are newest first (creation time, then creation order), targets in their position order.
public protocol StoreTransaction {
    // MARK: Applications
    func application(named name: String) throws -> ApplicationRecord?
    func applicationNames() throws -> [String]
    func insertApplication(_ record: ApplicationRecord) throws
    func renameApplication(id: String, to name: String) throws
    /// Removes the application, its deployment groups and the tags of both.
    func deleteApplication(id: String) throws

    // MARK: Deployment groups
    func group(applicationId: String, name: String) throws -> GroupRecord?
    func groupNames(applicationId: String) throws -> [String]
    /// "application/group" of every group whose configuration is `configName`, sorted.
    func groupPaths(usingConfig configName: String) throws -> [String]
    func insertGroup(_ record: GroupRecord) throws
    func updateGroup(_ record: GroupRecord) throws
    /// Removes the group and its tags.
    func deleteGroup(id: String) throws

    // MARK: Deployment configurations (custom ones)
    func config(named name: String) throws -> ConfigRecord?
    func configNames() throws -> [String]
    func insertConfig(_ record: ConfigRecord) throws
    /// Removes the configuration and its tags.
    func deleteConfig(id: String) throws

    // MARK: Tags
    /// In the order they were first set.
    func tags(of owner: TagOwner) throws -> [Tag]
    /// Sets the tags (new keys go last, existing keys keep their place and take the new value); returns how many
    /// tags the owner has now.
    @discardableResult func upsertTags(_ tags: [(key: String, value: String)], on owner: TagOwner) throws -> Int
    /// Removes the tag with `key` (and `value`, when given).
    func removeTag(key: String, value: String?, from owner: TagOwner) throws

    // MARK: On-premises instances
    func instance(named name: String) throws -> InstanceRecord?
    /// Sorted; `registered` nil for all.
    func instanceNames(registered: Bool?) throws -> [String]
    /// Registers the instance, replacing a previous record of that name and its tags.
    func insertInstance(_ record: InstanceRecord) throws
    func updateInstance(_ record: InstanceRecord) throws

    // MARK: Deployments and targets
    func deployment(id: String) throws -> DeploymentInfo?
    func groupId(ofDeployment id: String) throws -> String?
    func insertDeployment(_ record: DeploymentRecord) throws
    /// Saves the deployment's info (its status included).
    func updateDeployment(_ info: DeploymentInfo) throws
    /// A deployment of the group that is Created, Queued, InProgress, Baking or Ready.
    func activeDeploymentId(groupId: String) throws -> String?
    /// The group's newest deployment, with `status` when given, other than `excluding`.
    func newestDeployment(groupId: String, status: String?, excluding: String?) throws -> DeploymentInfo?
    /// Newest first.
    func deploymentIds(matching filter: DeploymentFilter) throws -> [String]
    func insertTarget(_ target: InstanceTarget, deploymentId: String, position: Int) throws
    func targets(deploymentId: String) throws -> [InstanceTarget]
    /// How many targets of the deployment are in `status` (without reading them).
    func targetCount(deploymentId: String, status: String) throws -> Int
    /// How many targets of the deployment are in each status (an aggregate: no row per target reaches Swift).
    func targetStatusCounts(deploymentId: String) throws -> [String: Int]
    /// Each target's id and status, in position order (without reading the targets' events).
    func targetStatuses(deploymentId: String) throws -> [(targetId: String, status: String)]
    func target(deploymentId: String, instance: String) throws -> InstanceTarget?
    func updateTarget(_ target: InstanceTarget) throws
    /// The status of the instance's target in the group's newest deployment that has one.
    func newestTargetStatus(groupId: String, instance: String) throws -> String?

    // MARK: Host commands
    /// Whether a poll of `instance` may find something: an overdue command anywhere, a target with nothing
    /// outstanding, or a command of the instance never acknowledged whose deadline is before `redeliverBefore` (its
    /// poll was lost with the connection that carried it; it is handed out again).
    func hasWork(instance: String, now: Double, redeliverBefore: Double) throws -> Bool
    /// Whether a command of `instance` was handed out and not acknowledged yet (it may be handed out again once its
    /// redelivery time comes: a look that found nothing may find it later without any write).
    func hasUnacknowledgedCommand(instance: String) throws -> Bool
    /// Deployments that may have a command for the instance (Created, or InProgress with its target InProgress),
    /// oldest first.
    func pollCandidates(instance: String) throws -> [String]
    func insertCommand(_ command: HostCommandRecord) throws
    func command(id: String) throws -> HostCommandRecord?
    func deleteCommand(id: String) throws
    /// Marks the command acknowledged with a new deadline; false when it is not outstanding.
    func acknowledgeCommand(id: String, deadline: Double) throws -> Bool
    func hasOverdueCommands(now: Double) throws -> Bool
    func overdueCommands(now: Double) throws -> [HostCommandRecord]
    func hasCommand(deploymentId: String, instance: String) throws -> Bool
    /// The command outstanding for (deployment, instance), if any.
    func outstandingCommand(deploymentId: String, instance: String) throws -> HostCommandRecord?
    /// Instances with an outstanding command of the deployment.
    func commandInstances(deploymentId: String) throws -> [String]
    /// Outstanding commands for these events (the traffic steps a balancer driver runs), soonest deadline first.
    func commands(eventNames: [String]) throws -> [HostCommandRecord]

    // MARK: Application revisions
    func revision(applicationId: String, key: String) throws -> RevisionRecord?
    /// In registration order.
    func revisions(applicationId: String) throws -> [RevisionRecord]
    func insertRevision(_ record: RevisionRecord) throws
    func updateRevision(_ record: RevisionRecord) throws

    // MARK: Access keys
    func accessKey(id: String) throws -> AccessKeyRecord?
    /// Every key, or those of one user; by user name, then creation.
    func accessKeys(userName: String?) throws -> [AccessKeyRecord]
    func insertAccessKey(_ record: AccessKeyRecord) throws
    func updateAccessKey(_ record: AccessKeyRecord) throws
    func deleteAccessKey(id: String) throws

    // MARK: Agent leases
    func lease(instance: String) throws -> LeaseRecord?
    /// Inserts or replaces.
    func saveLease(_ record: LeaseRecord) throws
    func deleteLease(instance: String, holder: String) throws

    // MARK: Agent contacts
    /// Inserts or moves forward (a contact older than the one recorded changes nothing).
    func recordAgentContact(_ record: AgentContactRecord) throws
    /// Every instance's last contact, by instance name.
    func agentContacts() throws -> [AgentContactRecord]
    /// Instances with an acknowledged (running) command, and its event.
    func runningEvents() throws -> [String: String]

    // MARK: The event stream
    /// Appends an event to the stream (the outbox) in this transaction, and answers its sequence number: larger than
    /// every number before it, never reused. It is visible to readers when, and only if, the transaction commits.
    @discardableResult func appendEvent(_ event: EventRecord) throws -> Int64
    /// The events after `filter.after`, oldest first, at most `filter.limit`.
    func events(_ filter: EventFilter) throws -> [EventRecord]
    /// The sequence number of the newest event (0 when there is none).
    func lastEventSequence() throws -> Int64
    // MARK: Alarms
    func alarm(named name: String) throws -> AlarmRecord?
    /// By name.
    func alarms() throws -> [AlarmRecord]
    /// Inserts or replaces.
    func saveAlarm(_ record: AlarmRecord) throws
    func deleteAlarm(named name: String) throws

    // MARK: Topics, subscriptions and deliveries (triggers' SNS face)
    func topic(arn: String) throws -> TopicRecord?
    /// By ARN.
    func topics() throws -> [TopicRecord]
    func insertTopic(_ record: TopicRecord) throws
    /// Removes the topic and its subscriptions (their pending deliveries fail when they come due).
    func deleteTopic(arn: String) throws
    func subscription(arn: String) throws -> SubscriptionRecord?
    /// In creation order.
    func subscriptions(topicArn: String) throws -> [SubscriptionRecord]
    /// Inserts or replaces.
    func saveSubscription(_ record: SubscriptionRecord) throws
    func deleteSubscription(arn: String) throws
    /// Inserts the delivery and answers its id.
    @discardableResult func insertDelivery(_ record: DeliveryRecord) throws -> Int64
    func updateDelivery(_ record: DeliveryRecord) throws
    /// Pending deliveries due at `now`, oldest first, at most `limit`.
    func dueDeliveries(now: Double, limit: Int) throws -> [DeliveryRecord]
    /// The id of the subscription's oldest pending delivery: its deliveries go in order, so none overtakes it.
    func firstPendingDelivery(subscriptionArn: String) throws -> Int64?
    /// The soonest `nextAttempt` of a pending delivery.
    func nextDeliveryTime() throws -> Double?
    func deliveries(_ filter: DeliveryFilter) throws -> [DeliveryRecord]
    /// How many deliveries are in each state.
    func deliveryStateCounts() throws -> [String: Int]
    /// Inserts or replaces (delivery, attempt).
    func insertDeliveryAttempt(_ record: DeliveryAttemptRecord) throws
    func deleteDeliveryAttempt(deliveryId: Int64, attempt: Int) throws
    /// In attempt order.
    func deliveryAttempts(deliveryId: Int64) throws -> [DeliveryAttemptRecord]
    /// Deletes delivered and failed deliveries (and their attempts) published before `time`, at most `limit`.
    @discardableResult func deleteFinishedDeliveries(before time: Double, limit: Int) throws -> Int

    /// Deletes the oldest events written before `time`, at most `limit` of them (looking at no more than `limit`
    /// rows, so it costs nothing when there is nothing to delete); answers how many went.
    @discardableResult func deleteEvents(before time: Double, limit: Int) throws -> Int
}
