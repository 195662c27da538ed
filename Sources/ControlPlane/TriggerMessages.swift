import DeployModel
import Foundation

/// A trigger's notification as CodeDeploy publishes it to its SNS topic: the `Subject` and the `Message`, a JSON
/// document in a string, byte for byte in the form real CodeDeploy sends (captured messages, not the user guide's
/// sample): Java date strings, `completeTime` null until the end, UPPER_SNAKE statuses, and `deploymentOverview`,
/// `errorInformation` and `rollbackInformation` as JSON inside strings, with PascalCase keys inside.
public struct TriggerNotification: Sendable, Equatable {
    public var triggerName: String
    public var targetArn: String
    public var eventType: TriggerEventType
    public var subject: String
    public var message: String
}

/// Builds trigger notifications; `publishTriggers` (Topics.swift) queues them for their topic's subscriptions.
public enum TriggerMessages {
    /// The message status of a deployment status (`CREATED`, `IN_PROGRESS`, `SUCCEEDED`, `FAILED`, `STOPPED`, `READY`).
    static func status(_ status: DeploymentStatus?) -> String {
        switch status {
        case .created?: return "CREATED"
        case .queued?: return "QUEUED"
        case .inProgress?: return "IN_PROGRESS"
        case .baking?: return "BAKING"
        case .succeeded?: return "SUCCEEDED"
        case .failed?: return "FAILED"
        case .stopped?: return "STOPPED"
        case .ready?: return "READY"
        case nil: return "unknown"
        }
    }

    /// The trigger event a deployment's new status fires, when it fires one.
    static func eventType(_ status: DeploymentStatus?) -> TriggerEventType? {
        switch status {
        case .created?, .inProgress?: return .deploymentStart
        case .succeeded?: return .deploymentSuccess
        case .failed?: return .deploymentFailure
        case .stopped?: return .deploymentStop
        case .ready?: return .deploymentReady
        default: return nil
        }
    }

    /// The trigger event an instance's new status fires, when it fires one.
    static func eventType(_ status: TargetStatus?) -> TriggerEventType? {
        switch status {
        case .inProgress?: return .instanceStart
        case .succeeded?: return .instanceSuccess
        case .failed?: return .instanceFailure
        case .ready?: return .instanceReady
        default: return nil
        }
    }

    /// Java's `Date.toString()` in UTC, as the messages carry times: `Fri Oct 14 08:46:19 UTC 2022`.
    public static func javaDate(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&t, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : String(value) }
        return
            "\(days[Int(parts.tm_wday)]) \(months[Int(parts.tm_mon)]) \(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) UTC \(Int(parts.tm_year) + 1900)"
    }

    /// Epoch seconds with milliseconds, as a string (`1446744188.595`): the instance message's times.
    static func epoch(_ date: Date?) -> JSONValue {
        guard let date else { return .null }
        return .string(String(format: "%.3f", (date.timeIntervalSince1970 * 1000).rounded() / 1000))
    }

    /// `<STATUS>: AWS CodeDeploy <deployment> in <region> to <application>`.
    static func subject(status: String, deploymentId: String, region: String, applicationName: String) -> String {
        "\(status): AWS CodeDeploy \(deploymentId) in \(region) to \(applicationName)"
    }

    /// The message of a deployment event for one trigger. `deploymentOverview` is left out while the deployment is
    /// created or starting; `errorInformation` is there when it failed or stopped; `rollbackInformation` when it is a
    /// rollback (AWS's own sentence) or has one, and `{}` on a failure without one.
    public static func deploymentMessage(_ info: DeploymentInfo, triggerName: String, region: String, account: String) -> String {
        let status = status(info.status)
        var members: [(String, JSONValue)] = [
            ("region", .string(region)), ("accountId", .string(account)), ("eventTriggerName", .string(triggerName)),
            ("applicationName", .string(info.applicationName ?? "")), ("deploymentId", .string(info.deploymentId ?? "")),
            ("deploymentGroupName", .string(info.deploymentGroupName ?? "")),
            ("createTime", info.createTime.map { .string(javaDate($0)) } ?? .null),
            ("completeTime", info.completeTime.map { .string(javaDate($0)) } ?? .null),
        ]
        if status != "CREATED", status != "IN_PROGRESS", let overview = info.deploymentOverview {
            let counts = JSONValue.members([
                ("Succeeded", .int(overview.succeeded ?? 0)), ("Failed", .int(overview.failed ?? 0)), ("Skipped", .int(overview.skipped ?? 0)),
                ("InProgress", .int(overview.inProgress ?? 0)), ("Pending", .int(overview.pending ?? 0)),
            ])
            members.append(("deploymentOverview", .string(counts.compact())))
        }
        members.append(("status", .string(status)))
        if status == "FAILED" || status == "STOPPED", let error = info.errorInformation {
            let inner = JSONValue.members([("ErrorCode", .string(error.code?.rawValue ?? "")), ("ErrorMessage", .string(error.message ?? ""))])
            members.append(("errorInformation", .string(inner.compact())))
        }
        if let triggering = info.rollbackInfo?.rollbackTriggeringDeploymentId, let id = info.deploymentId {
            let inner = JSONValue.members([
                ("RollbackMessage", .string("Deployment \(id) is triggered to roll back deployment \(triggering).")),
                ("RollbackTriggeringDeploymentId", .string(triggering)),
            ])
            members.append(("rollbackInformation", .string(inner.compact())))
        } else if let rollback = info.rollbackInfo {
            var inner: [(String, JSONValue)] = []
            if let message = rollback.rollbackMessage { inner.append(("RollbackMessage", .string(message))) }
            if let id = rollback.rollbackDeploymentId { inner.append(("RollbackDeploymentId", .string(id))) }
            members.append(("rollbackInformation", .string(JSONValue.members(inner).compact())))
        } else if status == "FAILED" {
            members.append(("rollbackInformation", .string("{}")))
        }
        return JSONValue.members(members).compact()
    }

    /// The message of an instance event for one trigger, in the user guide's form (no real capture exists):
    /// `instanceId` is the instance's ARN, times are epoch strings, `lifecycleEvents` lists the events that started.
    public static func instanceMessage(
        _ target: InstanceTarget, deploymentId: String, triggerName: String, region: String, account: String
    ) -> String {
        let events = (target.lifecycleEvents ?? []).filter { $0.startTime != nil }.map { event in
            JSONValue.members([
                ("LifecycleEvent", .string(event.lifecycleEventName ?? "")), ("LifecycleEventStatus", .string(event.status?.rawValue ?? "")),
                ("StartTime", epoch(event.startTime)), ("EndTime", epoch(event.endTime)),
            ])
        }
        return JSONValue.members([
            ("region", .string(region)), ("accountId", .string(account)), ("eventTriggerName", .string(triggerName)),
            ("deploymentId", .string(deploymentId)), ("instanceId", .string(target.targetArn ?? target.targetId ?? "")),
            ("lastUpdatedAt", epoch(target.lastUpdatedAt)), ("instanceStatus", .string(target.status?.rawValue ?? "")),
            ("lifecycleEvents", .array(events)),
        ]).compact()
    }

    /// The notifications a deployment's new status sends: one per trigger of the group that lists its event.
    public static func forDeployment(_ info: DeploymentInfo, triggers: [TriggerConfig], region: String, account: String)
        -> [TriggerNotification]
    {
        guard let type = eventType(info.status) else { return [] }
        // A rollback deployment's creation is the failed deployment's DeploymentRollback as well.
        let types: Set<TriggerEventType> =
            info.status == .created && info.rollbackInfo?.rollbackTriggeringDeploymentId != nil ? [type, .deploymentRollback] : [type]
        return triggers.compactMap { trigger in
            guard let listed = trigger.triggerEvents, let fired = listed.first(where: types.contains) else { return nil }
            let name = trigger.triggerName ?? ""
            return TriggerNotification(
                triggerName: name, targetArn: trigger.triggerTargetArn ?? "", eventType: fired,
                subject: subject(
                    status: status(info.status), deploymentId: info.deploymentId ?? "", region: region, applicationName: info.applicationName ?? ""),
                message: deploymentMessage(info, triggerName: name, region: region, account: account))
        }
    }

    /// The notifications an instance's new status sends.
    public static func forInstance(
        _ target: InstanceTarget, deploymentId: String, applicationName: String, triggers: [TriggerConfig], region: String, account: String
    ) -> [TriggerNotification] {
        guard let type = eventType(target.status) else { return [] }
        return triggers.compactMap { trigger in
            guard trigger.triggerEvents?.contains(type) == true else { return nil }
            let name = trigger.triggerName ?? ""
            return TriggerNotification(
                triggerName: name, targetArn: trigger.triggerTargetArn ?? "", eventType: type,
                subject: subject(
                    status: (target.status?.rawValue ?? "").uppercased(), deploymentId: deploymentId, region: region,
                    applicationName: applicationName),
                message: instanceMessage(target, deploymentId: deploymentId, triggerName: name, region: region, account: account))
        }
    }
}
