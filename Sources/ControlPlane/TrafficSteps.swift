import DeployModel
import DeployStore
import Foundation
import HostCommandModel

/// BlockTraffic or AllowTraffic of one instance in a deployment with traffic control: work for the load balancer,
/// never handed to an agent (as on AWS, where these steps are the service's). The control plane records it as an
/// outstanding command of the instance, so the agent waits; a driver — `deployctl server`, or the instance's own
/// `deployctl agent run` on a state file — claims it, drives the balancers and completes it. A step still outstanding
/// when its driver restarts is run again: both actions are idempotent.
public struct TrafficStep: Sendable, Equatable {
    public enum Action: String, Sendable {
        case block = "BlockTraffic"
        case allow = "AllowTraffic"
        /// A step of gradual traffic shifting: server weights in both fleets (TrafficShifting.swift).
        case shift = "TrafficShift"
    }

    /// What AllowTraffic does to the server's weight before it is made ready.
    public enum Weight: Sendable, Equatable {
        /// Weight 0: ready, but no requests until a shift step gives it some (a green server of a shifting deployment).
        case zero
        /// Back to its configured weight (a blue server of a blue/green rollback, after a shift may have lowered it).
        case restore
    }

    public var commandId: String
    public var deploymentId: String
    public var instanceName: String
    public var action: Action
    /// The group's `loadBalancerInfo` names (target groups, then classic load balancers): each is both the name a
    /// balancer was given with `--load-balancer NAME=ADDRESS` and the HAProxy backend the instance is a server of.
    public var targets: [String]
    /// The instance's server in those backends: its `haproxy-server` tag, or its instance name.
    public var serverName: String
    /// Every target instance's server name, so a driver can check them all before it drains the first.
    public var deploymentServers: [String]
    /// AllowTraffic: the weight to set before the server is made ready (nil: leave it).
    public var weight: Weight?
    /// A shift: the percentage of requests green gets from now on, and the servers of each fleet.
    public var greenShare: Int?
    public var greenServers: [String]
    public var blueServers: [String]

    public init(
        commandId: String, deploymentId: String, instanceName: String, action: Action, targets: [String], serverName: String,
        deploymentServers: [String], weight: Weight? = nil, greenShare: Int? = nil, greenServers: [String] = [], blueServers: [String] = []
    ) {
        self.commandId = commandId
        self.deploymentId = deploymentId
        self.instanceName = instanceName
        self.action = action
        self.targets = targets
        self.serverName = serverName
        self.deploymentServers = deploymentServers
        self.weight = weight
        self.greenShare = greenShare
        self.greenServers = greenServers
        self.blueServers = blueServers
    }
}

extension ControlPlane {
    /// The instance tag whose value names the instance's server in the balancer's backends (default: the instance name).
    public static let serverNameTag = "haproxy-server"
    /// Classic load balancer and target group names as AWS bounds them (CloudFormation: 32 characters).
    static let balancerNameLimit = 32

    /// The balancer targets a deployment's traffic events act on, or nil when it has no traffic control (its group is
    /// WITHOUT_TRAFFIC_CONTROL or names no load balancer): then those events are Skipped, as before.
    static func trafficTargets(_ info: DeploymentInfo) -> [String]? {
        guard info.deploymentStyle?.deploymentOption == .withTrafficControl else { return nil }
        let names = Self.balancerNames(info.loadBalancerInfo)
        return names.isEmpty ? nil : names
    }

    /// Target group names, then classic load balancer names, each once.
    static func balancerNames(_ info: LoadBalancerInfo?) -> [String] {
        var names: [String] = []
        for name in (info?.targetGroupInfoList ?? []).compactMap(\.name) + (info?.elbInfoList ?? []).compactMap(\.name) where !names.contains(name) {
            names.append(name)
        }
        return names
    }

    /// Checks a Server group's traffic control: WITH_TRAFFIC_CONTROL needs at least one load balancer name, each a name
    /// HAProxy can carry as a backend; target group pairs are ECS's.
    static func validateTrafficControl(_ info: DeploymentGroupInfo) throws {
        let balancers = info.loadBalancerInfo
        if balancers?.targetGroupPairInfoList?.isEmpty == false {
            throw ServiceError(
                "InvalidLoadBalancerInfoException",
                "targetGroupPairInfoList is for ECS deployment groups; a Server group names its HAProxy backends in targetGroupInfoList or elbInfoList."
            )
        }
        let lists = (balancers?.targetGroupInfoList ?? []).map(\.name) + (balancers?.elbInfoList ?? []).map(\.name)
        guard lists.count <= 20 else {
            throw ServiceError("InvalidLoadBalancerInfoException", "At most 10 target groups and 10 load balancers may be named; got \(lists.count).")
        }
        for name in lists {
            guard let name, !name.isEmpty, name.count <= balancerNameLimit,
                name.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) && $0.isASCII || "-_.".unicodeScalars.contains($0) })
            else {
                throw ServiceError(
                    "InvalidLoadBalancerInfoException",
                    "An invalid load balancer name, or no load balancer name, was specified: '\((name ?? "").prefix(64))' (expected 1 to \(balancerNameLimit) letters, digits, '-', '_' or '.', the name of an HAProxy backend)."
                )
            }
        }
        if info.deploymentStyle?.deploymentOption == .withTrafficControl, lists.isEmpty {
            throw ServiceError(
                "InvalidLoadBalancerInfoException",
                "An invalid load balancer name, or no load balancer name, was specified: WITH_TRAFFIC_CONTROL needs loadBalancerInfo with a targetGroupInfoList or elbInfoList name (an HAProxy backend)."
            )
        }
    }

    /// The instance's server name in the balancer's backends.
    func serverName(_ tx: any StoreTransaction, instance: String) throws -> String {
        try instanceTags(tx, instance).first(where: { $0.key == Self.serverNameTag })?.value.flatMap { $0.isEmpty ? nil : $0 } ?? instance
    }

    /// Marks the target's next event, a traffic event of a deployment with traffic control, InProgress and records it
    /// as the instance's outstanding command for a driver to claim within ``acknowledgeWindow``.
    func startTrafficStep(_ tx: any StoreTransaction, target: inout InstanceTarget, index: Int, stamp: Date) throws {
        var events = target.lifecycleEvents ?? []
        let event = events[index].lifecycleEventName ?? ""
        events[index].status = .inProgress
        events[index].startTime = stamp
        events[index].diagnostics = Diagnostics(message: "Waiting for the load balancer's driver to take this step")
        target.lifecycleEvents = events
        target.lastUpdatedAt = stamp
        // Acknowledged from the start: the agent's redelivery of lost commands never applies to it.
        try tx.insertCommand(
            HostCommandRecord(
                id: "ts-" + Identifier.uuid(), deploymentId: target.deploymentId ?? "", instanceName: target.targetId ?? "", eventName: event,
                acknowledged: true, deadline: stamp.timeIntervalSince1970 + acknowledgeWindow))
    }

    /// Why a traffic step expired: nothing claimed it (no driver knows the balancer), or its driver stopped mid-step.
    func expiredTrafficStepMessage(_ tx: any StoreTransaction, _ command: HostCommandRecord) throws -> String {
        let targets = try findDeployment(tx, command.deploymentId).flatMap(Self.trafficTargets) ?? []
        let flags = targets.map { "--load-balancer \($0)=unix:/run/haproxy/admin.sock" }.joined(separator: " ")
        return
            "No process drove the load balancer for \(command.eventName) of \(command.instanceName) in time. deployctl server (or, on a state file, the instance's deployctl agent run) must be started with \(flags) (the address of each balancer's runtime API)."
    }

    /// The traffic steps outstanding, of one instance or of all; soonest deadline first.
    public func trafficSteps(instanceName: String? = nil) throws -> [TrafficStep] {
        try store.read { tx in
            var steps: [TrafficStep] = []
            for command in try tx.commands(eventNames: [TrafficStep.Action.block, .allow, .shift].map(\.rawValue))
            where instanceName == nil || command.instanceName == instanceName {
                guard let action = TrafficStep.Action(rawValue: command.eventName), let info = try findDeployment(tx, command.deploymentId),
                    let targets = Self.trafficTargets(info)
                else { continue }
                let all = try tx.targets(deploymentId: command.deploymentId)
                var step = TrafficStep(
                    commandId: command.id, deploymentId: command.deploymentId, instanceName: command.instanceName, action: action,
                    targets: targets, serverName: try serverName(tx, instance: command.instanceName),
                    deploymentServers: try all.compactMap(\.targetId).map { try serverName(tx, instance: $0) })
                let label = all.first { $0.targetId == command.instanceName }?.instanceLabel
                let shifting = try shiftPlan(tx, info)
                switch action {
                case .allow:
                    if info.creator == .codeDeployRollback, label == .blue, Self.isBlueGreen(info) { step.weight = .restore }
                    if shifting != nil, label == .green { step.weight = .zero }
                case .shift:
                    guard let shifting, let share = Self.nextShare(shifting, after: Self.shiftState(info)?.percent) else { continue }
                    step.greenShare = share
                    step.greenServers = try all.filter { $0.instanceLabel == .green && $0.status == .succeeded }.compactMap(\.targetId).map {
                        try serverName(tx, instance: $0)
                    }
                    step.blueServers = try all.filter { $0.instanceLabel == .blue }.compactMap(\.targetId).map { try serverName(tx, instance: $0) }
                case .block:
                    break
                }
                steps.append(step)
            }
            return steps
        }
    }

    /// A driver takes the step and expects to end it within `expectedSeconds` (its drain or health-check timeout);
    /// after that (plus the agent grace) the step fails as a vanished driver's.
    public func claimTrafficStep(id: String, expectedSeconds: Int) throws {
        try acknowledgeHostCommand(id: id, caller: nil, expectedSeconds: expectedSeconds)
    }

    /// Shows what the driver is doing on the step's event while it runs.
    public func noteTrafficStep(id: String, note: String) throws {
        try postHostCommandUpdate(id: id, caller: nil, note: note)
    }

    /// Records how the step ended and advances the deployment; answers the instances whose agents may now have work
    /// (the step's own, and any target the completion started).
    public func completeTrafficStep(id: String, report: HostCommandReport) throws -> [String] {
        guard let command = try store.read({ tx in try tx.command(id: id) }) else { return [] }
        if command.eventName == Self.shiftEvent {
            // No lifecycle event of its own: the deployment records the new share, then moves on.
            return try store.write { tx in
                guard try tx.command(id: id) != nil else { return [] }
                try tx.deleteCommand(id: id)
                try finishShift(tx, deploymentId: command.deploymentId, report: report)
                try advance(tx, command.deploymentId)
                return try tx.targets(deploymentId: command.deploymentId).compactMap(\.targetId)
            }
        }
        let started = try completeHostCommand(id: id, caller: nil, report: report)
        return [command.instanceName] + started
    }
}
