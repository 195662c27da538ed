import DeployModel
import DeployStore
import Foundation
import Synchronization

/// The event stream's entries, in EventBridge's shape for CodeDeploy (`source` `aws.codedeploy`, the
/// `detail-type`s and `detail` members AWS sends), so a consumer written for those events reads these unchanged.
///
/// What deployctl adds, each said in the README: the `state` `CREATED` (a deployment was created; AWS's
/// EventBridge has no such event, its `DeploymentStart` trigger sends `CREATED`), `ROLLBACK` (an automatic rollback
/// deployment was created for this one; `detail.rollbackDeploymentId` names it), and the detail-type
/// `deployctl Lifecycle Event State-change Notification` (a lifecycle event of an instance finished, `SUCCESS` or
/// `FAILURE`, with its error code and message; BlockTraffic and AllowTraffic add `balancerCommands`, every runtime API
/// command sent to the balancer). Instances are named by their on-premises name, as `instanceId`.
enum DeploymentEvents {
    static let source = "aws.codedeploy"
    static let deploymentDetailType = "CodeDeploy Deployment State-change Notification"
    static let instanceDetailType = "CodeDeploy Instance State-change Notification"
    static let lifecycleDetailType = "deployctl Lifecycle Event State-change Notification"

    /// EventBridge's `state` for a deployment status; nil for one that is not announced (Queued, Baking).
    static func state(_ status: DeploymentStatus?) -> String? {
        switch status {
        case .created?: return "CREATED"
        case .inProgress?: return "START"
        case .succeeded?: return "SUCCESS"
        case .failed?: return "FAILURE"
        case .stopped?: return "STOP"
        case .ready?: return "READY"
        default: return nil
        }
    }

    /// EventBridge's `state` for an instance's status; nil for Pending, Skipped and Unknown (not announced).
    static func state(_ status: TargetStatus?) -> String? {
        switch status {
        case .inProgress?: return "START"
        case .succeeded?: return "SUCCESS"
        case .failed?: return "FAILURE"
        case .ready?: return "READY"
        default: return nil
        }
    }
}

/// What an event says about its deployment: the names and ids every detail carries.
struct EventSubject {
    var deploymentId: String
    var applicationName: String
    var groupName: String
    var groupId: String
    /// The group's `triggerConfigurations` (the cache is emptied when a group is updated or deleted).
    var triggers: [TriggerConfig] = []
}

/// The subjects of recent deployments' events, so announcing an instance's change reads nothing more. A deployment's
/// names and group never change once it is created (renaming an application leaves its deployments as they were),
/// so an entry is never stale; the map is emptied when it grows past a bound.
final class EventSubjects: Sendable {
    private let known = Mutex<[String: EventSubject]>([:])

    func subject(_ deploymentId: String, _ make: () throws -> EventSubject?) rethrows -> EventSubject? {
        if let found = known.withLock({ $0[deploymentId] }) { return found }
        guard let made = try make() else { return nil }
        known.withLock { known in
            if known.count >= 1024 { known.removeAll(keepingCapacity: true) }
            known[deploymentId] = made
        }
        return made
    }

    /// Forgets every subject: a group's triggers changed.
    func forget() { known.withLock { $0.removeAll(keepingCapacity: true) } }
}

extension ControlPlane {
    func eventSubject(_ tx: any StoreTransaction, _ info: DeploymentInfo) throws -> EventSubject {
        let id = info.deploymentId ?? ""
        let made = try eventSubjects.subject(id) {
            EventSubject(
                deploymentId: id, applicationName: info.applicationName ?? "", groupName: info.deploymentGroupName ?? "",
                groupId: try tx.groupId(ofDeployment: id) ?? "",
                triggers: try groupTriggers(tx, applicationName: info.applicationName, groupName: info.deploymentGroupName))
        }
        return made ?? EventSubject(deploymentId: id, applicationName: "", groupName: "", groupId: "")
    }

    /// The subject of a deployment known only by its id (one read when it is not cached).
    func eventSubject(_ tx: any StoreTransaction, deploymentId: String) throws -> EventSubject? {
        try eventSubjects.subject(deploymentId) {
            guard let info = try tx.deployment(id: deploymentId) else { return nil }
            return EventSubject(
                deploymentId: deploymentId, applicationName: info.applicationName ?? "", groupName: info.deploymentGroupName ?? "",
                groupId: try tx.groupId(ofDeployment: deploymentId) ?? "",
                triggers: try groupTriggers(tx, applicationName: info.applicationName, groupName: info.deploymentGroupName))
        }
    }

    /// The triggers of a deployment's group as it is now (none when the group is gone).
    func groupTriggers(_ tx: any StoreTransaction, applicationName: String?, groupName: String?) throws -> [TriggerConfig] {
        guard let applicationName, let groupName, let app = try tx.application(named: applicationName),
            let group = try tx.group(applicationId: app.id, name: groupName)
        else { return [] }
        return group.info.triggerConfigurations ?? []
    }

    func applicationArn(_ name: String) -> String { "arn:aws:codedeploy:\(region):\(account):application:\(name)" }

    func groupArn(_ subject: EventSubject) -> String {
        "arn:aws:codedeploy:\(region):\(account):deploymentgroup:\(subject.applicationName)/\(subject.groupName)"
    }

    /// Appends one event in EventBridge's envelope (member order as AWS's examples) to the stream of `tx`.
    func appendEvent(
        _ tx: any StoreTransaction, _ subject: EventSubject, detailType: String, resources: [String], detail: [(String, JSONValue)],
        instanceName: String? = nil
    ) throws {
        let stamp = now()
        let body = JSONValue.members([
            ("account", .string(account)), ("region", .string(region)), ("detail-type", .string(detailType)),
            ("source", .string(DeploymentEvents.source)), ("version", .string("0")), ("time", .string(Timestamp.seconds(stamp))),
            ("id", .string(Identifier.uuid())), ("resources", .array(resources.map { .string($0) })), ("detail", .members(detail)),
        ])
        try tx.appendEvent(
            EventRecord(
                time: stamp.timeIntervalSince1970, deploymentId: subject.deploymentId, applicationName: subject.applicationName,
                instanceName: instanceName, body: body.compact()))
    }

    /// A deployment's state changed (or, for `ROLLBACK`, a rollback of it was created).
    func announceDeployment(_ tx: any StoreTransaction, _ info: DeploymentInfo, state: String, extra: [(String, JSONValue)] = []) throws {
        let subject = try eventSubject(tx, info)
        try appendEvent(
            tx, subject, detailType: DeploymentEvents.deploymentDetailType,
            resources: [applicationArn(subject.applicationName), groupArn(subject)],
            detail: [
                ("instanceGroupId", .string(subject.groupId)), ("region", .string(region)), ("application", .string(subject.applicationName)),
                ("deploymentId", .string(subject.deploymentId)), ("state", .string(state)), ("deploymentGroup", .string(subject.groupName)),
            ] + extra)
        // ROLLBACK is this deployment's news about another one, whose own CREATED sends DeploymentRollback.
        if !subject.triggers.isEmpty, state != "ROLLBACK" {
            try publishTriggers(
                tx, TriggerMessages.forDeployment(info, triggers: subject.triggers, region: region, account: account),
                deploymentId: subject.deploymentId)
        }
    }

    /// Saves the deployment and announces its status when it changed from `previous`.
    func saveDeployment(_ tx: any StoreTransaction, _ info: DeploymentInfo, previous: DeploymentStatus?) throws {
        try tx.updateDeployment(info)
        if info.status != previous, let state = DeploymentEvents.state(info.status) { try announceDeployment(tx, info, state: state) }
    }

    /// Saves the target and announces what changed from `previous`: its status (an instance event) and each of its
    /// lifecycle events that has finished, Succeeded or Failed (a lifecycle event).
    func saveTarget(_ tx: any StoreTransaction, _ target: InstanceTarget, previous: InstanceTarget) throws {
        try tx.updateTarget(target)
        let statusChanged = target.status != previous.status ? DeploymentEvents.state(target.status) : nil
        let finished = (target.lifecycleEvents ?? []).enumerated().filter { index, event in
            (event.status == .succeeded || event.status == .failed) && previous.lifecycleEvents?[safe: index]?.status != event.status
        }.map(\.element)
        guard statusChanged != nil || !finished.isEmpty, let deploymentId = target.deploymentId,
            let subject = try eventSubject(tx, deploymentId: deploymentId)
        else { return }
        let instance = target.targetId ?? ""
        let resources = [target.targetArn ?? instance, groupArn(subject), applicationArn(subject.applicationName)]
        for event in finished {
            var detail: [(String, JSONValue)] = [
                ("instanceId", .string(instance)), ("region", .string(region)), ("application", .string(subject.applicationName)),
                ("deploymentId", .string(subject.deploymentId)), ("instanceGroupId", .string(subject.groupId)),
                ("deploymentGroup", .string(subject.groupName)), ("lifecycleEvent", .string(event.lifecycleEventName ?? "")),
                ("state", .string(event.status == .succeeded ? "SUCCESS" : "FAILURE")),
            ]
            if let diagnostics = event.diagnostics, event.status == .failed {
                detail.append(("errorCode", .string(diagnostics.errorCode?.rawValue ?? "")))
                detail.append(("message", .string(diagnostics.message ?? "")))
            }
            if let diagnostics = event.diagnostics, TrafficStep.Action(rawValue: event.lifecycleEventName ?? "") != nil {
                // What was done to the balancer, command by command (TrafficDriver's transcript).
                if event.status == .succeeded { detail.append(("message", .string(diagnostics.message ?? ""))) }
                detail.append(("balancerCommands", .array((diagnostics.logTail ?? "").split(separator: "\n").map { .string(String($0)) })))
            }
            try appendEvent(
                tx, subject, detailType: DeploymentEvents.lifecycleDetailType, resources: resources, detail: detail, instanceName: instance)
        }
        if let state = statusChanged {
            try appendEvent(
                tx, subject, detailType: DeploymentEvents.instanceDetailType, resources: resources,
                detail: [
                    ("instanceId", .string(instance)), ("region", .string(region)), ("state", .string(state)),
                    ("application", .string(subject.applicationName)), ("deploymentId", .string(subject.deploymentId)),
                    ("instanceGroupId", .string(subject.groupId)), ("deploymentGroup", .string(subject.groupName)),
                ], instanceName: instance)
            if !subject.triggers.isEmpty {
                let fired = TriggerMessages.forInstance(
                    target, deploymentId: subject.deploymentId, applicationName: subject.applicationName, triggers: subject.triggers, region: region,
                    account: account)
                try publishTriggers(tx, fired, deploymentId: subject.deploymentId)
            }
        }
    }
}

extension Array {
    fileprivate subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}

extension ControlPlane: EventStreamSource {
    /// The events after `query.after`, oldest first; with `query.wait`, a read that finds none looks again every
    /// quarter second until one is there or the wait is over (another process may be the writer).
    public func listEvents(_ query: StreamEventQuery) async throws -> [StreamEvent] {
        let deadline = Date().addingTimeInterval(min(max(0, query.wait), StreamEventQuery.maxWait))
        while true {
            let found = try events(query)
            if !found.isEmpty || Date() >= deadline { return found }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    /// One read of the stream.
    public func events(_ query: StreamEventQuery) throws -> [StreamEvent] {
        let filter = EventFilter(
            after: query.after, deploymentId: query.deploymentId, applicationName: query.applicationName,
            since: query.since?.timeIntervalSince1970, limit: min(max(1, query.limit), StreamEventQuery.maxLimit))
        return try store.read { tx in
            try tx.events(filter).map { record in
                StreamEvent(sequence: record.sequence, event: (try? JSONValue.parse(record.body)) ?? .string(record.body))
            }
        }
    }
}
