import DeployModel
import DeployStore
import Foundation
import HostCommandModel

/// Gradual traffic shifting for blue/green server deployments (AWS offers canary and linear shifting for Lambda and
/// ECS only). A Server deployment configuration may carry a `trafficRoutingConfig`; a blue/green deployment with a
/// TimeBasedCanary or TimeBasedLinear one admits its green servers at weight 0, then moves the share of requests
/// they get in steps — canary: the percentage, then 100 % after the interval; linear: the percentage more every
/// interval — by setting HAProxy server weights in both fleets (a `TrafficShift` step a driver runs, like
/// BlockTraffic). Only after 100 % are the blue servers drained. Between steps the deployment is InProgress, so the
/// alarms it watches can stop it; its rollback then gives blue its weight back and drains green.
///
/// Where the shift stands is the deployment's first status message (`deploymentStatusMessages`, which AWS shows as
/// they are): "Traffic shifting: 10% of requests on the replacement (green) instances since <time>".
extension ControlPlane {
    static let shiftEvent = TrafficStep.Action.shift.rawValue
    static let shiftPrefix = "Traffic shifting: "

    /// The shares green gets, in order, and the minutes each lasts; nil when the configuration shifts all at once.
    static func shiftPlan(_ routing: TrafficRoutingConfig?) -> (percents: [Int], minutes: Int)? {
        switch routing?.type {
        case .timeBasedCanary?:
            guard let percent = routing?.timeBasedCanary?.canaryPercentage, let minutes = routing?.timeBasedCanary?.canaryInterval else {
                return nil
            }
            return ([percent, 100], minutes)
        case .timeBasedLinear?:
            guard let percent = routing?.timeBasedLinear?.linearPercentage, percent > 0, let minutes = routing?.timeBasedLinear?.linearInterval
            else { return nil }
            return (Array(stride(from: percent, to: 100, by: percent)) + [100], minutes)
        default:
            return nil
        }
    }

    /// The deployment's shift plan, from its configuration.
    func shiftPlan(_ tx: any StoreTransaction, _ info: DeploymentInfo) throws -> (percents: [Int], minutes: Int)? {
        guard Self.isBlueGreen(info), info.creator != .codeDeployRollback else { return nil }
        return Self.shiftPlan(try findConfig(tx, info.deploymentConfigName ?? "")?.info.trafficRoutingConfig)
    }

    /// Where the shift stands: the share green has and since when; nil before the first step.
    static func shiftState(_ info: DeploymentInfo) -> (percent: Int, since: Date)? {
        guard let phase = info.phase(shiftPrefix), let percent = phase.text.split(separator: " ").first.flatMap({ Int($0.dropLast()) })
        else { return nil }
        return (percent, phase.since)
    }

    /// The share the next step gives green, or nil when the shift is done.
    static func nextShare(_ plan: (percents: [Int], minutes: Int), after current: Int?) -> Int? {
        guard let current else { return plan.percents.first }
        return plan.percents.first { $0 > current }
    }

    /// Between the green fleet's AllowTraffic and the blue fleet's BlockTraffic: issues the next shift step when its
    /// time has come. Answers whether the shift is still under way (the blue fleet waits).
    func moveShift(_ tx: any StoreTransaction, _ info: DeploymentInfo, green: [InstanceTarget]) throws -> Bool {
        guard let plan = try shiftPlan(tx, info) else { return false }
        let id = info.deploymentId ?? ""
        let state = Self.shiftState(info)
        guard Self.nextShare(plan, after: state?.percent) != nil else { return false }
        if try !tx.commands(eventNames: [Self.shiftEvent]).filter({ $0.deploymentId == id }).isEmpty { return true }
        if let state, now() < state.since.addingTimeInterval(Double(plan.minutes) * 60) { return true }
        guard let carrier = green.first(where: { $0.instanceLabel == .green && $0.status == .succeeded })?.targetId else { return false }
        // The step is carried by a green instance's name (it is done with its own events): a driver claims it.
        try tx.insertCommand(
            HostCommandRecord(
                id: "ts-" + Identifier.uuid(), deploymentId: id, instanceName: carrier, eventName: Self.shiftEvent, acknowledged: true,
                deadline: now().timeIntervalSince1970 + acknowledgeWindow))
        return true
    }

    /// Records a finished shift step: its share from now on, or the deployment's failure.
    func finishShift(_ tx: any StoreTransaction, deploymentId: String, report: HostCommandReport) throws {
        guard var info = try findDeployment(tx, deploymentId), info.status == .inProgress, let plan = try shiftPlan(tx, info),
            let share = Self.nextShare(plan, after: Self.shiftState(info)?.percent)
        else { return }
        guard report.status == .succeeded else {
            try failBlueGreen(
                tx, &info, code: .healthConstraints, message: "Traffic shifting to \(share)% failed: \(report.message ?? "")", previous: .inProgress)
            return
        }
        info.setPhase(Self.shiftPrefix, "\(share)% of requests on the replacement (green) instances", since: now(), first: true)
        try tx.updateDeployment(info)
        try appendShiftEvent(tx, info, share: share, report: report)
    }

    /// The event stream's record of a shift step (`deployctl Traffic Shift Notification`), with the commands sent.
    func appendShiftEvent(_ tx: any StoreTransaction, _ info: DeploymentInfo, share: Int, report: HostCommandReport) throws {
        let subject = try eventSubject(tx, info)
        try appendEvent(
            tx, subject, detailType: "deployctl Traffic Shift Notification", resources: [applicationArn(subject.applicationName), groupArn(subject)],
            detail: [
                ("region", .string(region)), ("application", .string(subject.applicationName)), ("deploymentId", .string(subject.deploymentId)),
                ("deploymentGroup", .string(subject.groupName)), ("greenPercent", .int(share)), ("message", .string(report.message ?? "")),
                ("balancerCommands", .array((report.logTail ?? "").split(separator: "\n").map { .string(String($0)) })),
            ], instanceName: nil)
    }

    /// Shift steps whose interval is over (for the server's clock).
    func shiftDue(_ tx: any StoreTransaction, _ info: DeploymentInfo) throws -> Bool {
        guard let plan = try shiftPlan(tx, info), let state = Self.shiftState(info), Self.nextShare(plan, after: state.percent) != nil else {
            return false
        }
        return now() >= state.since.addingTimeInterval(Double(plan.minutes) * 60)
    }
}
