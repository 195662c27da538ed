import DeployModel
import DeployStore
import Foundation

/// One evaluation of a Prometheus or HTTP alarm, as its evaluator (AlarmProbes) saw it.
public struct AlarmObservation: Sendable, Equatable {
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    public var state: String
    public var reason: String
    /// The alarm could not be read (its Prometheus unreachable, or an answer not understood): the deployments that
    /// watch it and do not set `ignorePollAlarmFailure` stop, as AWS's do when CloudWatch cannot be read.
    public var unreadable: Bool

    public init(state: String, reason: String, unreadable: Bool = false) {
        self.state = state
        self.reason = reason
        self.unreadable = unreadable
    }
}

/// A Prometheus or HTTP alarm, with its state before this evaluation.
public struct WatchedAlarm: Sendable, Equatable {
    public var name: String
    public var definition: AlarmDefinition
    public var state: String
}

extension ControlPlane {
    static let activeStatuses = ["Created", "Queued", "InProgress", "Baking", "Ready"]

    /// The deployments in flight (not rollbacks: alarms never stop those) that watch `name`, with whether each ignores
    /// an alarm it cannot read.
    func deploymentsWatching(_ tx: any StoreTransaction, alarm name: String) throws -> [(info: DeploymentInfo, ignoreFailure: Bool)] {
        var found: [(DeploymentInfo, Bool)] = []
        for id in try tx.deploymentIds(matching: DeploymentFilter(statuses: Self.activeStatuses)) {
            guard let info = try tx.deployment(id: id), info.creator != .codeDeployRollback, let watched = try watchedAlarms(tx, info),
                watched.alarms.contains(name)
            else { continue }
            found.append((info, watched.ignoreFailure))
        }
        return found
    }

    /// Every Prometheus and HTTP alarm: what an evaluator polls. All of them, not only those deployments watch now, so
    /// that a new deployment is checked against a fresh state (as CloudWatch's alarms are always evaluated).
    public func evaluatedAlarms() throws -> [WatchedAlarm] {
        try store.read { tx in
            try tx.alarms().compactMap { record in
                let definition = Self.definition(record)
                return definition.kind == .manual ? nil : WatchedAlarm(name: record.name, definition: definition, state: record.state)
            }
        }
    }

    /// Records one evaluation in one transaction: the alarm's new state (when it changed), an `deployctl Alarm
    /// Evaluation` event for each deployment watching it, and what the state means for them — ALARM stops them
    /// (ALARM_ACTIVE, then their rollback if asked), an unreadable alarm stops those that do not ignore poll failures.
    /// Answers the deployments stopped.
    /// An evaluation of another definition than the alarm has now (it was redefined meanwhile) is dropped.
    @discardableResult
    public func recordAlarmEvaluation(name: String, definition: AlarmDefinition, observation: AlarmObservation) throws -> [String] {
        try store.write { tx in
            guard var alarm = try tx.alarm(named: name), Self.alarmStates.contains(observation.state), Self.definition(alarm) == definition
            else { return [] }
            if alarm.state != observation.state || alarm.reason != observation.reason {
                if alarm.state != observation.state { alarm.updated = now().timeIntervalSince1970 }
                alarm.state = observation.state
                alarm.reason = String(observation.reason.prefix(1023))
                try tx.saveAlarm(alarm)
            }
            var stopped: [String] = []
            for (info, ignoreFailure) in try deploymentsWatching(tx, alarm: name) {
                var info = info
                let subject = try eventSubject(tx, info)
                try appendEvent(
                    tx, subject, detailType: "deployctl Alarm Evaluation", resources: [applicationArn(subject.applicationName), groupArn(subject)],
                    detail: [
                        ("region", .string(region)), ("application", .string(subject.applicationName)),
                        ("deploymentId", .string(subject.deploymentId)), ("deploymentGroup", .string(subject.groupName)),
                        ("alarmName", .string(name)), ("state", .string(observation.state)), ("reason", .string(alarm.reason)),
                    ], instanceName: nil)
                if observation.state == "ALARM" {
                    try stopForAlarms(tx, &info, activated: [name])
                    stopped.append(info.deploymentId ?? "")
                } else if observation.unreadable, !ignoreFailure {
                    let error = ErrorInformation(
                        code: .codedeployResourceCannotBeFound,
                        message:
                            "The deployment was stopped because the status of these alarms cannot be retrieved: \(name) (\(observation.reason.prefix(300))). Set ignorePollAlarmFailure to deploy while they cannot be read."
                    )
                    _ = try stop(tx, &info, because: error)
                    stopped.append(info.deploymentId ?? "")
                }
            }
            return stopped
        }
    }
}
