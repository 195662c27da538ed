import DeployModel
import DeployStore
import Foundation
import HostCommandModel

/// The agent side of the control plane (ARCHITECTURE.md, "A deployment, end to end"): agents poll for the next host command of their instance,
/// acknowledge it, run it, and complete it. Every call also advances the deployments it touches, so no daemon is needed.
/// Who hands a host command back: the instance its access key belongs to, and the deployment the command
/// identifier it sent names.
public struct HostCommandCaller: Sendable, Equatable {
    public var instanceName: String
    public var deploymentId: String

    public init(instanceName: String, deploymentId: String) {
        self.instanceName = instanceName
        self.deploymentId = deploymentId
    }
}

extension ControlPlane: HostCommandService {
    /// How long an agent has to acknowledge a command it polled, and the margin added to its expected duration
    /// (``agentGrace`` when the control plane was given one).
    static let defaultAgentGrace: TimeInterval = 60
    var acknowledgeWindow: TimeInterval { agentGrace }
    /// How long after handing out a command it may be handed out again while still unacknowledged (a poll lost with
    /// its connection). Long enough that an agent that did receive it has acknowledged it (milliseconds later).
    public var redeliveryDelay: TimeInterval { min(5, acknowledgeWindow / 2) }
    var completionMargin: TimeInterval { agentGrace }
    /// The longest an acknowledged event may be expected to run (30 days).
    static let maxExpectedSeconds = 30 * 86_400

    /// The next command for `instanceName`, or nil. The command is leased to the caller until acknowledged.
    public func pollHostCommand(instanceName: String) throws -> HostCommand? {
        // Most polls find nothing: answer those from a read, without taking the write lock.
        guard try mayHaveHostCommand(instanceName: instanceName) else { return nil }
        return try takeHostCommand(instanceName: instanceName)
    }

    /// The write half of ``pollHostCommand(instanceName:)``, for a caller that has just looked
    /// (``lookForHostCommand(instanceName:)``) and found that the instance may have a command: the server, whose
    /// look runs on its reader threads and leaves the one writer only the writes.
    public func takeHostCommand(instanceName: String) throws -> HostCommand? {
        let stamp = now().timeIntervalSince1970
        let redeliverBefore = stamp + acknowledgeWindow - redeliveryDelay
        return try store.write { tx in
            try sweepExpiredCommands(tx)
            for deploymentId in try tx.pollCandidates(instance: instanceName) {
                try advance(tx, deploymentId)
                if let lost = try tx.outstandingCommand(deploymentId: deploymentId, instance: instanceName), !lost.acknowledged,
                    lost.deadline < redeliverBefore
                {
                    // Handed out to a poll whose connection was gone (the agent restarted meanwhile): the agent never
                    // acknowledged it, so it has not run; hand it out again, with a new acknowledgement window.
                    var renewed = lost
                    renewed.deadline = stamp + acknowledgeWindow
                    try tx.deleteCommand(id: lost.id)
                    try tx.insertCommand(renewed)
                    return try hostCommand(tx, id: lost.id, deploymentId: deploymentId, instance: instanceName, event: lost.eventName)
                }
                if let command = try nextCommand(tx, deploymentId: deploymentId, instance: instanceName) { return command }
            }
            return nil
        }
    }

    /// Whether a poll of `instanceName` may find a command now (a read; ``pollHostCommand(instanceName:)`` decides):
    /// a server asks it first on its reader threads, so the polls that find nothing never queue for the writer.
    public func mayHaveHostCommand(instanceName: String) throws -> Bool {
        try store.read { tx in try hasWork(tx, instanceName) }
    }

    /// The store's answer to ``mayHaveHostCommand(instanceName:)`` in `tx`, at the current time.
    private func hasWork(_ tx: any StoreTransaction, _ instanceName: String) throws -> Bool {
        let stamp = now().timeIntervalSince1970
        return try tx.hasWork(instance: instanceName, now: stamp, redeliverBefore: stamp + acknowledgeWindow - redeliveryDelay)
    }

    /// ``mayHaveHostCommand(instanceName:)``, and whether its answer holds until deployments, targets or host
    /// commands change (`settled`): false while a command of the instance waits for its acknowledgement, since that
    /// command comes due again with time alone.
    public func lookForHostCommand(instanceName: String) throws -> (mayHave: Bool, settled: Bool) {
        try store.read { tx in
            let mayHave = try hasWork(tx, instanceName)
            return (mayHave, mayHave ? false : !(try tx.hasUnacknowledgedCommand(instance: instanceName)))
        }
    }

    /// The agent has started the command and expects it to take at most `expectedSeconds` (its hooks' timeouts).
    public func acknowledgeHostCommand(id: String, expectedSeconds: Int) throws {
        try acknowledgeHostCommand(id: id, caller: nil, expectedSeconds: expectedSeconds)
    }

    /// The same for a caller authenticated as `caller` (the server's command service): a command of another
    /// instance, or of another deployment than the caller's identifier names, is `AccessDeniedException` and
    /// changes nothing.
    public func acknowledgeHostCommand(id: String, caller: HostCommandCaller?, expectedSeconds: Int) throws {
        try store.write { tx in
            try Self.checkOwner(tx, id: id, caller: caller)
            // Bounded: an agent's figure (the sum of its scripts' timeouts) is never trusted to be sane.
            let deadline = now().timeIntervalSince1970 + Double(min(max(expectedSeconds, 1), Self.maxExpectedSeconds)) + completionMargin
            guard try tx.acknowledgeCommand(id: id, deadline: deadline) else {
                throw ServiceError("InvalidHostCommandException", "The host command \(id) is not outstanding (it completed or was failed).")
            }
        }
    }

    /// Shows `note` on the command's event while it runs (in `get-deployment-target` and the `--wait` view).
    public func postHostCommandUpdate(id: String, note: String) throws {
        try postHostCommandUpdate(id: id, caller: nil, note: note)
    }

    /// The same for an authenticated caller (see ``acknowledgeHostCommand(id:caller:expectedSeconds:)``).
    public func postHostCommandUpdate(id: String, caller: HostCommandCaller?, note: String) throws {
        try store.write { tx in
            try Self.checkOwner(tx, id: id, caller: caller)
            guard let command = try tx.command(id: id),
                var target = try tx.target(deploymentId: command.deploymentId, instance: command.instanceName),
                let index = target.lifecycleEvents?.firstIndex(where: { $0.lifecycleEventName == command.eventName && $0.status == .inProgress })
            else {
                throw ServiceError("InvalidHostCommandException", "The host command \(id) is not outstanding (it completed or was failed).")
            }
            target.lifecycleEvents?[index].diagnostics = Diagnostics(message: String(note.prefix(1024)))
            // A note on a running event changes no status: nothing to announce.
            try tx.updateTarget(target)
        }
    }

    /// Records how the command ended and advances the deployment.
    public func completeHostCommand(id: String, report: HostCommandReport) throws {
        try completeHostCommand(id: id, caller: nil, report: report)
    }

    /// The same for an authenticated caller (see ``acknowledgeHostCommand(id:caller:expectedSeconds:)``). Answers the
    /// instances of the deployment when the completion started other targets (OneAtATime, HalfAtATime): their
    /// agents may be holding polls.
    @discardableResult
    public func completeHostCommand(id: String, caller: HostCommandCaller?, report: HostCommandReport) throws -> [String] {
        try store.write { tx in
            try Self.checkOwner(tx, id: id, caller: caller)
            guard let command = try tx.command(id: id) else {
                throw ServiceError("InvalidHostCommandException", "The host command \(id) is not outstanding (it completed or was failed).")
            }
            let pendingBefore = try tx.targetCount(deploymentId: command.deploymentId, status: TargetStatus.pending.rawValue)
            try tx.deleteCommand(id: id)
            try finishEvent(tx, deploymentId: command.deploymentId, instance: command.instanceName, event: command.eventName, report: report)
            try finishTargetIfDone(tx, deploymentId: command.deploymentId, instance: command.instanceName)
            try advance(tx, command.deploymentId)
            guard pendingBefore > 0,
                try tx.targetCount(deploymentId: command.deploymentId, status: TargetStatus.pending.rawValue) < pendingBefore
            else { return [] }
            return try tx.targets(deploymentId: command.deploymentId).compactMap(\.targetId)
        }
    }

    // MARK: Internals

    /// Refuses a command that is outstanding but not the caller's: another instance's, or another deployment's
    /// than the identifier the caller handed back names. A command that is not outstanding passes (the operation
    /// answers it as it does any finished command: it changes nothing).
    static func checkOwner(_ tx: any StoreTransaction, id: String, caller: HostCommandCaller?) throws {
        guard let caller, let command = try tx.command(id: id) else { return }
        guard command.instanceName == caller.instanceName, command.deploymentId == caller.deploymentId else {
            throw ServiceError(
                "AccessDeniedException",
                "The host command \(id.prefix(64)) is \(command.instanceName)'s in deployment \(command.deploymentId), not a command of instance \(caller.instanceName.prefix(100)) in deployment \(caller.deploymentId.prefix(40))."
            )
        }
    }

    func targetRow(_ tx: any StoreTransaction, deploymentId: String, instance: String) throws -> InstanceTarget? {
        try tx.target(deploymentId: deploymentId, instance: instance)
    }

    /// Fails the host commands whose agent did not acknowledge or complete them in time, and advances their
    /// deployments. Every operation that reads or writes a deployment calls this first, so a dead agent never
    /// leaves a deployment InProgress (and its group blocked) when no other agent polls. Costs one read when
    /// nothing is overdue.
    /// Fails the host commands whose agent did not acknowledge or complete them in time; answers how many.
    @discardableResult
    public func expireOverdueCommands() throws -> Int {
        let stamp = now().timeIntervalSince1970
        let overdue = try store.read { tx in
            try tx.hasOverdueCommands(now: stamp)
        }
        guard overdue else { return 0 }
        return try store.write { tx in try sweepExpiredCommands(tx) }
    }

    /// For read operations: expiry is applied when the state file can be written; a reader that may only read
    /// (a read-only file) still gets its answer.
    func expireOverdueCommandsIfWritable() {
        guard expiresOnRead else { return }
        _ = try? expireOverdueCommands()
        _ = try? expireBlueGreenWaits()
        _ = try? expireBakes()
    }

    /// Fails commands whose agent did not acknowledge or complete them in time.
    @discardableResult
    func sweepExpiredCommands(_ tx: any StoreTransaction) throws -> Int {
        let overdue = try tx.overdueCommands(now: now().timeIntervalSince1970)
        for command in overdue {
            let instance = command.instanceName
            let event = command.eventName
            let acknowledged = command.acknowledged
            try tx.deleteCommand(id: command.id)
            let message =
                TrafficStep.Action(rawValue: event) != nil
                ? try expiredTrafficStepMessage(tx, command)
                : acknowledged
                    ? "The agent on \(instance) did not complete \(event) within its hooks' timeouts plus \(Int(completionMargin)) s; it is presumed gone. Restart it; the next deployment will work."
                    : "The agent on \(instance) did not acknowledge \(event) within \(Int(acknowledgeWindow)) s; it is presumed gone."
            try finishEvent(
                tx, deploymentId: command.deploymentId, instance: instance, event: event,
                report: HostCommandReport(status: .failed, errorCode: "UnknownError", message: message))
            try advance(tx, command.deploymentId)
        }
        return overdue.count
    }

    /// When an instance's last event has succeeded and only traffic events remain (skipped without traffic control), its target is done
    /// now, so the deployment starts its next targets at once rather than at this agent's next poll.
    func finishTargetIfDone(_ tx: any StoreTransaction, deploymentId: String, instance: String) throws {
        guard var target = try targetRow(tx, deploymentId: deploymentId, instance: instance), target.status == .inProgress,
            try findDeployment(tx, deploymentId).flatMap(Self.trafficTargets) == nil
        else { return }
        let previous = target
        var events = target.lifecycleEvents ?? []
        let remaining = events.filter { $0.status == .pending || $0.status == .inProgress }
        guard remaining.allSatisfy({ $0.status == .pending && LifecycleEventName.traffic.contains($0.lifecycleEventName ?? "") }) else { return }
        let stamp = now()
        for index in events.indices where events[index].status == .pending {
            events[index].status = .skipped
            events[index].endTime = stamp
        }
        target.lifecycleEvents = events
        target.status = .succeeded
        target.lastUpdatedAt = stamp
        try saveTarget(tx, target, previous: previous)
    }

    /// The next event of the instance's target, if its target is in flight and nothing of it is outstanding.
    func nextCommand(_ tx: any StoreTransaction, deploymentId: String, instance: String) throws -> HostCommand? {
        guard let info = try findDeployment(tx, deploymentId), info.status == .inProgress,
            var target = try targetRow(tx, deploymentId: deploymentId, instance: instance), target.status == .inProgress
        else { return nil }
        // One dispatch per host command: checked and inserted in the same write transaction (DeployStore).
        if try tx.hasCommand(deploymentId: deploymentId, instance: instance) { return nil }
        let previous = target
        var events = target.lifecycleEvents ?? []
        let stamp = now()
        let controlled = Self.trafficTargets(info) != nil
        // Without traffic control the traffic events have nothing to act on: they are skipped here.
        while !controlled, let index = events.firstIndex(where: { $0.status == .pending }),
            LifecycleEventName.traffic.contains(events[index].lifecycleEventName ?? "")
        {
            events[index].status = .skipped
            events[index].endTime = stamp
        }
        target.lifecycleEvents = events
        if controlled, let index = events.firstIndex(where: { $0.status == .pending }),
            TrafficStep.Action(rawValue: events[index].lifecycleEventName ?? "") != nil
        {
            // The balancer's step, not the agent's: a driver claims it (TrafficSteps.swift).
            try startTrafficStep(tx, target: &target, index: index, stamp: stamp)
            try saveTarget(tx, target, previous: previous)
            return nil
        }
        guard let index = events.firstIndex(where: { $0.status == .pending }) else {
            target.status = .succeeded
            target.lastUpdatedAt = stamp
            try saveTarget(tx, target, previous: previous)
            try advance(tx, deploymentId)
            return nil
        }
        let event = events[index].lifecycleEventName ?? ""
        events[index].status = .inProgress
        events[index].startTime = stamp
        target.lifecycleEvents = events
        target.lastUpdatedAt = stamp
        try saveTarget(tx, target, previous: previous)
        let id = "hc-" + Identifier.uuid()
        try tx.insertCommand(
            HostCommandRecord(
                id: id, deploymentId: deploymentId, instanceName: instance, eventName: event,
                deadline: stamp.timeIntervalSince1970 + acknowledgeWindow))
        return try hostCommand(tx, id: id, deploymentId: deploymentId, instance: instance, event: event)
    }

    /// The command as the agent receives it.
    func hostCommand(_ tx: any StoreTransaction, id: String, deploymentId: String, instance: String, event: String) throws -> HostCommand {
        let info = try requireDeployment(tx, deploymentId)
        let bundle = Self.bundleLocation(info)
        return HostCommand(
            id: id, deploymentId: deploymentId, instanceName: instance, lifecycleEvent: event, applicationName: info.applicationName ?? "",
            deploymentGroupName: info.deploymentGroupName ?? "", deploymentGroupId: try groupId(tx, deploymentId) ?? "", bundle: bundle,
            fileExistsBehavior: info.fileExistsBehavior?.rawValue, ignoreApplicationStopFailures: info.ignoreApplicationStopFailures ?? false)
    }

    /// Where an agent fetches the deployment's bundle.
    static func bundleLocation(_ info: DeploymentInfo) -> BundleLocation {
        let bundle: BundleLocation
        switch info.revision?.revisionType {
        case .s3?:
            let s3 = info.revision?.s3Location
            bundle = .s3(
                bucket: s3?.bucket ?? "", key: s3?.key ?? "", version: s3?.version,
                eTag: s3?.eTag?.replacingOccurrences(of: "\"", with: ""), bundleType: s3?.bundleType?.rawValue)
        default:
            bundle = .unsupported(
                "\(info.revision?.revisionType?.rawValue ?? "This") revisions cannot be fetched by deployctl yet; push the bundle and deploy its S3 location."
            )
        }
        return bundle
    }

    /// The specification of a deployment for one of its instances (the command service's GetDeploymentSpecification);
    /// an instance that is not a target of the deployment gets nothing.
    public func deploymentSpecification(deploymentId: String, instanceName: String) throws -> DeploymentSpecification {
        try store.read { tx in
            guard let info = try findDeployment(tx, deploymentId), try targetRow(tx, deploymentId: deploymentId, instance: instanceName) != nil else {
                throw ServiceError(
                    "InvalidDeploymentIdException", "The deployment \(deploymentId.prefix(40)) has no target \(instanceName.prefix(100)).")
            }
            return DeploymentSpecification(
                deploymentId: deploymentId, applicationName: info.applicationName ?? "", deploymentGroupName: info.deploymentGroupName ?? "",
                deploymentGroupId: try groupId(tx, deploymentId) ?? "", creator: info.creator?.rawValue ?? "user", bundle: Self.bundleLocation(info),
                fileExistsBehavior: info.fileExistsBehavior?.rawValue, ignoreApplicationStopFailures: info.ignoreApplicationStopFailures ?? false)
        }
    }

    func groupId(_ tx: any StoreTransaction, _ deploymentId: String) throws -> String? {
        try tx.groupId(ofDeployment: deploymentId)
    }

    /// Records an event's end on its target; a failure fails the target and skips its remaining events.
    func finishEvent(_ tx: any StoreTransaction, deploymentId: String, instance: String, event: String, report: HostCommandReport) throws {
        guard var target = try targetRow(tx, deploymentId: deploymentId, instance: instance) else { return }
        let previous = target
        var events = target.lifecycleEvents ?? []
        let stamp = now()
        guard let index = events.firstIndex(where: { $0.lifecycleEventName == event }) else { return }
        events[index].status = LifecycleEventStatus(rawValue: report.status.rawValue) ?? .failed
        events[index].endTime = stamp
        if events[index].startTime == nil { events[index].startTime = stamp }
        let code = report.errorCode.flatMap { LifecycleErrorCode(rawValue: $0) } ?? (report.errorCode == nil ? nil : .scriptFailed)
        events[index].diagnostics = Diagnostics(
            errorCode: code ?? (report.status == .failed ? .unknownError : .success), scriptName: report.scriptName ?? "",
            message: report.message ?? (report.status == .failed ? "Failed" : "Succeeded"), logTail: String((report.logTail ?? "").suffix(2048)))
        let deployment = try findDeployment(tx, deploymentId)
        let stopped = deployment?.status == .stopped
        if report.status == .failed {
            for i in events.indices where events[i].status == .pending {
                events[i].status = .skipped
                events[i].endTime = stamp
            }
            target.status = .failed
        } else if stopped {
            for i in events.indices where events[i].status == .pending {
                events[i].status = .skipped
                events[i].endTime = stamp
            }
            target.status = .skipped
        } else if !events.contains(where: { $0.status == .pending || $0.status == .inProgress }) {
            target.status = .succeeded
        } else if event == "ValidateService", target.instanceLabel == .green, let deployment, Self.isBlueGreen(deployment) {
            // Installed: the replacement waits, Ready, until traffic is rerouted (BlueGreen.swift).
            target.status = .ready
        }
        target.lifecycleEvents = events
        target.lastUpdatedAt = stamp
        try saveTarget(tx, target, previous: previous)
        if stopped, let deployment { try saveDeployment(tx, withOverview(tx, deployment), previous: deployment.status) }
    }

    /// The deployment's overview counts from its targets.
    func withOverview(_ tx: any StoreTransaction, _ info: DeploymentInfo) throws -> DeploymentInfo {
        var info = info
        // Counted in SQL: a deployment to 1,000 instances must not read 1,000 targets on every event.
        let counts = try tx.targetStatusCounts(deploymentId: info.deploymentId ?? "")
        func count(_ status: TargetStatus) -> Int { counts[status.rawValue] ?? 0 }
        info.deploymentOverview = DeploymentOverview(
            pending: count(.pending), inProgress: count(.inProgress), succeeded: count(.succeeded), failed: count(.failed),
            skipped: count(.skipped), ready: count(.ready))
        return info
    }

    /// Moves a deployment on: starts the targets the configuration allows, or ends it (and rolls back if asked).
    /// Target statuses that never start again; any other counts as pending.
    static let settledStatuses: Set<String> = [TargetStatus.inProgress, .succeeded, .failed, .skipped].reduce(into: []) { $0.insert($1.rawValue) }

    func advance(_ tx: any StoreTransaction, _ deploymentId: String) throws {
        guard var info = try findDeployment(tx, deploymentId), info.status == .created || info.status == .inProgress else { return }
        if Self.isBlueGreen(info) {
            try advanceBlueGreen(tx, info)
            return
        }
        let stamp = now()
        if info.status == .created {
            info.status = .inProgress
            info.startTime = stamp
            try announceDeployment(tx, info, state: "START")
        }
        let counts = try tx.targetStatusCounts(deploymentId: deploymentId)
        let config = try findConfig(tx, info.deploymentConfigName ?? "CodeDeployDefault.OneAtATime")
        let rule = Orchestrator.Rule(config?.info.minimumHealthyHosts) ?? .oneAtATime
        let statuses: [(targetId: String, status: String)]
        let decision: Orchestrator.Decision
        if counts.contains(where: { $0.value > 0 && !Self.settledStatuses.contains($0.key) }) {
            // Some target may start (any other status counts as pending): the order of targets matters.
            statuses = try tx.targetStatuses(deploymentId: deploymentId)
            let states: [Orchestrator.TargetState] = statuses.map {
                switch TargetStatus(rawValue: $0.status) {
                case .inProgress?: return .inProgress
                case .succeeded?: return .succeeded
                case .failed?: return .failed
                case .skipped?: return .skipped
                default: return .pending
                }
            }
            decision = Orchestrator.decide(rule, targets: states)
        } else {
            // Nothing pending: the counts decide, and no target is started (nor skipped), so none is named.
            statuses = []
            func count(_ status: TargetStatus) -> Int { counts[status.rawValue] ?? 0 }
            decision = Orchestrator.decideWithNothingPending(
                rule, failed: count(.failed), inProgress: count(.inProgress), succeeded: count(.succeeded), skipped: count(.skipped))
        }
        if decision.start.isEmpty, decision.outcome == .running, info.status == .inProgress, info.startTime != stamp {
            // Nothing to start and nothing ended: only the counts can have moved.
            let counted = try withOverview(tx, info)
            if counted.deploymentOverview != info.deploymentOverview { try saveDeployment(tx, counted, previous: info.status) }
            return
        }
        for index in decision.start {
            guard var target = try targetRow(tx, deploymentId: deploymentId, instance: statuses[index].targetId) else { continue }
            let previous = target
            target.status = .inProgress
            target.lastUpdatedAt = stamp
            try saveTarget(tx, target, previous: previous)
        }
        switch decision.outcome {
        case .running:
            break
        case .succeeded:
            try succeedOrBake(tx, &info, at: stamp)
        case .failed(let code, let message):
            info.status = .failed
            info.completeTime = stamp
            info.errorInformation = ErrorInformation(code: code, message: message)
            for entry in statuses where entry.status == TargetStatus.pending.rawValue {
                guard let target = try targetRow(tx, deploymentId: deploymentId, instance: entry.targetId), target.status == .pending else {
                    continue
                }
                try skip(tx, target, at: stamp)
            }
        }
        info = try withOverview(tx, info)
        // START was announced above when the deployment started in this call.
        try saveDeployment(tx, info, previous: .inProgress)
        if case .failed = decision.outcome {
            try rollBackIfConfigured(tx, info, event: .deploymentFailure)
        }
    }

    /// Marks a target that will not run Skipped, with its pending events.
    func skip(_ tx: any StoreTransaction, _ target: InstanceTarget, at stamp: Date) throws {
        var target = target
        let previous = target
        target.status = .skipped
        target.lastUpdatedAt = stamp
        target.lifecycleEvents = target.lifecycleEvents?.map { event in
            var event = event
            if event.status == .pending {
                event.status = .skipped
                event.endTime = stamp
            }
            return event
        }
        try saveTarget(tx, target, previous: previous)
    }

    /// Starts a deployment of the group's last successful revision when the configuration asks for it.
    func rollBackIfConfigured(_ tx: any StoreTransaction, _ failed: DeploymentInfo, event: AutoRollbackEvent, force: Bool = false) throws {
        guard force || (failed.autoRollbackConfiguration?.enabled == true && failed.autoRollbackConfiguration?.events?.contains(event) == true)
        else { return }
        guard let failedId = failed.deploymentId, let groupId = try groupId(tx, failedId) else { return }
        var failedInfo = failed
        guard
            let previous = try tx.newestDeployment(groupId: groupId, status: "Succeeded", excluding: failedId), let revision = previous.revision
        else {
            failedInfo.rollbackInfo = RollbackInfo(
                rollbackMessage: "Automatic rollback was not performed: the group has no earlier successful deployment.")
            try saveDeployment(tx, failedInfo, previous: failed.status)
            return
        }
        let rollingBack = Self.isBlueGreen(failed) ? try tx.targets(deploymentId: failedId) : nil
        let rollbackId = try insertDeployment(
            tx,
            CreateDeploymentInput(
                applicationName: failed.applicationName ?? "", deploymentGroupName: failed.deploymentGroupName, revision: revision,
                deploymentConfigName: failed.deploymentConfigName, description: "Rollback of \(failedId)",
                ignoreApplicationStopFailures: failed.ignoreApplicationStopFailures,
                autoRollbackConfiguration: AutoRollbackConfiguration(enabled: false, events: []),
                fileExistsBehavior: failed.fileExistsBehavior),
            creator: .codeDeployRollback,
            rollbackInfo: RollbackInfo(
                rollbackTriggeringDeploymentId: failedId,
                rollbackMessage: "Automatic rollback of \(failedId) to the revision of \(previous.deploymentId ?? "")"),
            rollingBack: rollingBack)
        failedInfo.rollbackInfo = RollbackInfo(
            rollbackDeploymentId: rollbackId,
            rollbackMessage: "Automatic rollback to the revision of \(previous.deploymentId ?? "") started as \(rollbackId)")
        try saveDeployment(tx, failedInfo, previous: failed.status)
        try announceDeployment(tx, failedInfo, state: "ROLLBACK", extra: [("rollbackDeploymentId", .string(rollbackId))])
    }
}

extension ControlPlane {
    /// Whether the agent of `instanceName` may read `s3://bucket/key`: only the bundle of a deployment in flight on
    /// that instance (what AWS's agent fetches with GetObject during DownloadBundle), nothing else in the store.
    public func instanceMayRead(instanceName: String, bucket: String, key: String) throws -> Bool {
        try store.read { tx in
            for deploymentId in try tx.pollCandidates(instance: instanceName) {
                guard let info = try findDeployment(tx, deploymentId), case .s3(let b, let k, _, _, _) = Self.bundleLocation(info) else { continue }
                if b == bucket, k == key { return true }
            }
            return false
        }
    }
}
