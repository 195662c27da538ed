import DeployModel
import DeployStore
import Foundation
import HostCommandModel

/// Blue/green deployments for servers you own (AWS offers them on EC2 only). The deployment group's tags select the
/// original (blue) fleet; `targetInstances.tagFilters` on create-deployment select the replacement (green) fleet among
/// the registered on-premises instances (AWS's DISCOVER_EXISTING). The deployment goes through phases, each decided
/// from its targets' statuses (so nothing but the targets is stored):
///
/// 1. **Install**: the green targets run the install events under the deployment configuration's minimum healthy
///    hosts; each ends its install `Ready` (a target status, and a `READY` instance event).
/// 2. **Ready**: with `deploymentReadyOption.actionOnTimeout` STOP_DEPLOYMENT the deployment waits, `Ready`, until
///    `continue-deployment --deployment-wait-type READY_WAIT`, or is Stopped after `waitTimeInMinutes`; with
///    CONTINUE_DEPLOYMENT (the default) it goes on at once.
/// 3. **Reroute**: every ready green target runs BeforeAllowTraffic, AllowTraffic (its server made ready once its
///    checks pass), AfterAllowTraffic; then every blue target BeforeBlockTraffic, BlockTraffic, AfterBlockTraffic —
///    green takes traffic before blue stops taking it. A blue target that cannot be blocked fails the deployment.
/// 4. **Termination** (`terminateBlueInstancesOnDeploymentSuccess` TERMINATE): deployctl does not own the machines,
///    so "terminate" means: after `terminationWaitTimeInMinutes` (or `continue-deployment --deployment-wait-type
///    TERMINATION_WAIT`), each blue instance runs its ApplicationStop hooks (an event added to its target then); its
///    server stays in maintenance and the instance stays registered. KEEP_ALIVE (the default) ends at phase 3.
///
/// A rollback of a blue/green deployment reinstalls nothing: it routes traffic back to the blue instances at once
/// (their AllowTraffic events), then drains the green ones (BlockTraffic), which are left drained.
extension ControlPlane {
    static let greenEvents = [
        "ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall", "ApplicationStart", "ValidateService",
        "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic",
    ]
    static let allowEvents = ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
    static let blockEvents = ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]
    /// AWS's limit on both waits: two days.
    static let maxBlueGreenWaitMinutes = 2880

    static func isBlueGreen(_ info: DeploymentInfo) -> Bool { info.deploymentStyle?.deploymentType == .blueGreen }

    /// Checks a Server group's blue/green settings: traffic control, discovered (not copied) green fleets, waits
    /// within AWS's two days.
    static func validateBlueGreen(_ info: DeploymentGroupInfo) throws {
        guard info.deploymentStyle?.deploymentType == .blueGreen else { return }
        guard info.deploymentStyle?.deploymentOption == .withTrafficControl else {
            throw ServiceError(
                "InvalidDeploymentStyleException",
                "A BLUE_GREEN deployment group needs deploymentOption WITH_TRAFFIC_CONTROL and a load balancer: traffic moves from the blue servers to the green ones in it."
            )
        }
        let configuration = info.blueGreenDeploymentConfiguration
        if configuration?.greenFleetProvisioningOption?.action == .copyAutoScalingGroup {
            throw ServiceError(
                "InvalidBlueGreenDeploymentConfigurationException",
                "COPY_AUTO_SCALING_GROUP creates machines, which deployctl cannot: use DISCOVER_EXISTING and name the green instances with create-deployment --target-instances."
            )
        }
        for (name, minutes) in [
            ("deploymentReadyOption.waitTimeInMinutes", configuration?.deploymentReadyOption?.waitTimeInMinutes),
            (
                "terminateBlueInstancesOnDeploymentSuccess.terminationWaitTimeInMinutes",
                configuration?.terminateBlueInstancesOnDeploymentSuccess?.terminationWaitTimeInMinutes
            ),
        ] {
            if let minutes, !(0...maxBlueGreenWaitMinutes).contains(minutes) {
                throw ServiceError(
                    "InvalidBlueGreenDeploymentConfigurationException",
                    "\(name) must be 0 to \(maxBlueGreenWaitMinutes) minutes (two days); got \(minutes).")
            }
        }
    }

    /// The blue (the group's tags) and green (`targetInstances`) fleets of a new blue/green deployment; refuses a green
    /// selection that is missing, empty or overlaps blue before anything starts.
    func blueGreenFleets(_ tx: any StoreTransaction, group: DeploymentGroupInfo, input: CreateDeploymentInput) throws -> (
        blue: [InstanceInfo], green: [InstanceInfo]
    ) {
        guard let filters = input.targetInstances?.tagFilters, !filters.isEmpty else {
            throw ServiceError(
                "InvalidTargetInstancesException",
                "A blue/green deployment names its replacement (green) instances: give --target-instances 'tagFilters=[{Key=...,Value=...,Type=KEY_AND_VALUE}]' (on-premises instance tags)."
            )
        }
        let blue = try selectTargets(tx, group: group, override: nil)
        let green = try selectTargets(tx, group: group, override: input.targetInstances)
        guard !green.isEmpty else {
            throw ServiceError(
                "InvalidTargetInstancesException",
                "A specified tag is not currently applied to any instances: targetInstances selects no registered on-premises instance for the green fleet."
            )
        }
        let blueNames = Set(blue.compactMap(\.instanceName))
        let both = green.compactMap(\.instanceName).filter { blueNames.contains($0) }
        guard both.isEmpty else {
            throw ServiceError(
                "InvalidTargetInstancesException",
                "targetInstances selects \(both.prefix(10).joined(separator: ", ")), which the deployment group's tags select too (the blue fleet): green instances must be others."
            )
        }
        return (blue, green)
    }

    /// The targets of a blue/green deployment, green first. A rollback's targets come from the deployment it rolls
    /// back: its blue instances are allowed traffic again, its green ones blocked.
    func blueGreenTargets(
        id: String, created: Date, fleets: (blue: [InstanceInfo], green: [InstanceInfo])?, rollingBack: [InstanceTarget]?
    ) -> [InstanceTarget] {
        func target(_ name: String, _ arn: String?, _ label: TargetLabel, _ events: [String]) -> InstanceTarget {
            InstanceTarget(
                deploymentId: id, targetId: name, targetArn: arn, status: .pending, lastUpdatedAt: created,
                lifecycleEvents: events.map { LifecycleEvent(lifecycleEventName: $0, status: .pending) }, instanceLabel: label)
        }
        if let rollingBack {
            // Blue first: traffic goes back to the originals before the replacements are drained.
            let blue = rollingBack.filter { $0.instanceLabel == .blue }.map { target($0.targetId ?? "", $0.targetArn, .blue, Self.allowEvents) }
            let green = rollingBack.filter { $0.instanceLabel == .green }.map {
                target($0.targetId ?? "", $0.targetArn, .green, Self.blockEvents)
            }
            return blue + green
        }
        let green = (fleets?.green ?? []).map { target($0.instanceName ?? "", $0.instanceArn, .green, Self.greenEvents) }
        let blue = (fleets?.blue ?? []).map { target($0.instanceName ?? "", $0.instanceArn, .blue, Self.blockEvents) }
        return green + blue
    }

    /// Which fleet a blue/green deployment moves first: green (installed, then allowed traffic), or, in a rollback,
    /// blue (allowed traffic again).
    static func firstFleet(_ info: DeploymentInfo) -> TargetLabel { info.creator == .codeDeployRollback ? .blue : .green }

    /// Moves a blue/green deployment on by its phase (see the type's comment). Called by ``advance(_:_:)``.
    func advanceBlueGreen(_ tx: any StoreTransaction, _ info: DeploymentInfo) throws {
        var info = info
        let stamp = now()
        let previousStatus = info.status
        if info.status == .created {
            info.status = .inProgress
            info.startTime = stamp
            try announceDeployment(tx, info, state: "START")
        }
        let targets = try tx.targets(deploymentId: info.deploymentId ?? "")
        let firstLabel = Self.firstFleet(info)
        let first = targets.filter { $0.instanceLabel == firstLabel }
        let second = targets.filter { $0.instanceLabel != firstLabel }
        if try moveFirstFleet(tx, &info, first, previous: previousStatus) { return }
        if try moveSecondFleet(tx, &info, second, firstLabel: firstLabel, previous: previousStatus) { return }
        try succeedOrBake(tx, &info, at: stamp)
        info = try withOverview(tx, info)
        try saveDeployment(tx, info, previous: previousStatus ?? .inProgress)
    }

    /// Phases 1 and 2, and the first fleet's part of 3: the configuration's rule over the first fleet (Ready counted as
    /// done), then the Ready wait or the reroute. Answers whether the deployment stops here for now.
    func moveFirstFleet(_ tx: any StoreTransaction, _ info: inout DeploymentInfo, _ first: [InstanceTarget], previous: DeploymentStatus?) throws
        -> Bool
    {
        let config = try findConfig(tx, info.deploymentConfigName ?? "CodeDeployDefault.OneAtATime")
        // A shifting configuration without minimumHealthyHosts installs green all at once (it takes no traffic yet).
        let rule =
            Orchestrator.Rule(config?.info.minimumHealthyHosts)
            ?? (config?.info.trafficRoutingConfig != nil ? .fleetPercent(0) : .oneAtATime)
        let states: [Orchestrator.TargetState] = first.map {
            switch $0.status {
            case .inProgress?: return .inProgress
            case .succeeded?, .ready?: return .succeeded
            case .failed?: return .failed
            case .skipped?: return .skipped
            default: return .pending
            }
        }
        let decision = Orchestrator.decide(rule, targets: states)
        let stamp = now()
        for index in decision.start {
            var target = first[index]
            let before = target
            target.status = .inProgress
            target.lastUpdatedAt = stamp
            try saveTarget(tx, target, previous: before)
        }
        if case .failed(let code, let message) = decision.outcome {
            try failBlueGreen(tx, &info, code: code, message: message, previous: previous)
            return true
        }
        guard decision.outcome == .succeeded else {
            try saveProgress(tx, info, previous: previous)
            return true
        }
        // Every green target has installed (or failed within the rule); those Ready wait for traffic.
        let ready = first.filter { $0.status == .ready }
        guard !ready.isEmpty else { return false }
        if info.blueGreenDeploymentConfiguration?.deploymentReadyOption?.actionOnTimeout == .stopDeployment {
            // Waits for continue-deployment (or the end of waitTimeInMinutes: expireBlueGreenWaits).
            info.status = .ready
            info = try withOverview(tx, info)
            try saveDeployment(tx, info, previous: previous)
            return true
        }
        try reroute(tx, &info, ready: ready, previous: previous)
        return true
    }

    /// Phases 3 and 4 for the second fleet: started all at once once the first is settled (any failure fails the
    /// deployment), then the originals' termination wait and their ApplicationStop. Answers whether the deployment
    /// stops here for now.
    func moveSecondFleet(
        _ tx: any StoreTransaction, _ info: inout DeploymentInfo, _ second: [InstanceTarget], firstLabel: TargetLabel, previous: DeploymentStatus?
    ) throws -> Bool {
        if let failed = second.first(where: { $0.status == .failed }) {
            try failBlueGreen(
                tx, &info, code: .healthConstraints,
                message:
                    "The \(firstLabel == .green ? "original (blue)" : "replacement (green)") instance \(failed.targetId ?? "") could not be blocked from traffic: a blue/green deployment fails when any of them fails.",
                previous: previous)
            return true
        }
        // Gradual shifting: weights move before the blue fleet is drained (TrafficShifting.swift).
        if second.contains(where: { $0.status == .pending }), try moveShift(tx, info, green: try tx.targets(deploymentId: info.deploymentId ?? "")) {
            try saveProgress(tx, info, previous: previous)
            return true
        }
        let stamp = now()
        let waiting = second.filter { $0.status == .pending }
        for var target in waiting {
            let before = target
            target.status = .inProgress
            target.lastUpdatedAt = stamp
            try saveTarget(tx, target, previous: before)
        }
        if !waiting.isEmpty || second.contains(where: { $0.status == .inProgress }) {
            try saveProgress(tx, info, previous: previous)
            return true
        }
        guard info.creator != .codeDeployRollback,
            info.blueGreenDeploymentConfiguration?.terminateBlueInstancesOnDeploymentSuccess?.action == .terminate,
            !second.isEmpty, !second.contains(where: { $0.lifecycleEvents?.contains { $0.lifecycleEventName == "ApplicationStop" } == true })
        else { return false }
        if info.instanceTerminationWaitTimeStarted != true {
            info.instanceTerminationWaitTimeStarted = true
            info.deploymentStatusMessages = [
                "Traffic is on the replacement instances; the original instances' ApplicationStop runs after \(terminationWaitMinutes(info)) minute(s) (continue-deployment --deployment-wait-type TERMINATION_WAIT to run it now)."
            ]
        }
        if stamp >= terminationDue(info, blue: second) { try terminateOriginals(tx, second, at: stamp) }
        try saveProgress(tx, info, previous: previous)
        return true
    }

    func terminationWaitMinutes(_ info: DeploymentInfo) -> Int {
        info.blueGreenDeploymentConfiguration?.terminateBlueInstancesOnDeploymentSuccess?.terminationWaitTimeInMinutes ?? 5
    }

    /// When the originals' termination wait ends: from the last of them leaving traffic.
    func terminationDue(_ info: DeploymentInfo, blue: [InstanceTarget]) -> Date {
        let blocked = blue.compactMap(\.lastUpdatedAt).max() ?? now()
        return blocked.addingTimeInterval(Double(terminationWaitMinutes(info)) * 60)
    }

    /// Gives each original instance its ApplicationStop (the "termination" of machines deployctl does not own).
    func terminateOriginals(_ tx: any StoreTransaction, _ blue: [InstanceTarget], at stamp: Date) throws {
        for var target in blue where target.status == .succeeded {
            let previous = target
            target.status = .inProgress
            target.lastUpdatedAt = stamp
            target.lifecycleEvents = (target.lifecycleEvents ?? []) + [LifecycleEvent(lifecycleEventName: "ApplicationStop", status: .pending)]
            try saveTarget(tx, target, previous: previous)
        }
    }

    /// Starts traffic rerouting: the Ready green targets go on to their AllowTraffic events.
    func reroute(_ tx: any StoreTransaction, _ info: inout DeploymentInfo, ready: [InstanceTarget], previous: DeploymentStatus?) throws {
        let stamp = now()
        for var target in ready {
            let before = target
            target.status = .inProgress
            target.lastUpdatedAt = stamp
            try saveTarget(tx, target, previous: before)
        }
        info.status = .inProgress
        try saveProgress(tx, info, previous: previous)
    }

    func saveProgress(_ tx: any StoreTransaction, _ info: DeploymentInfo, previous: DeploymentStatus?) throws {
        let counted = try withOverview(tx, info)
        if counted != info || previous != info.status { try saveDeployment(tx, counted, previous: previous) }
    }

    /// Fails a blue/green deployment: targets not started are skipped, Ready ones too (they never got traffic).
    func failBlueGreen(
        _ tx: any StoreTransaction, _ info: inout DeploymentInfo, code: ErrorCode, message: String, previous: DeploymentStatus?
    ) throws {
        let stamp = now()
        for target in try tx.targets(deploymentId: info.deploymentId ?? "") where target.status == .pending || target.status == .ready {
            try skip(tx, target, at: stamp)
        }
        info.status = .failed
        info.completeTime = stamp
        info.errorInformation = ErrorInformation(code: code, message: message)
        info = try withOverview(tx, info)
        try saveDeployment(tx, info, previous: previous ?? .inProgress)
        try rollBackIfConfigured(tx, info, event: .deploymentFailure)
    }

    /// ContinueDeployment: READY_WAIT reroutes a Ready deployment's traffic now; TERMINATION_WAIT ends the wait
    /// before the original instances' termination.
    public func continueBlueGreen(_ input: ContinueDeploymentInput) throws {
        try store.write { tx in
            var info = try requireDeployment(tx, input.deploymentId)
            let id = info.deploymentId ?? ""
            try Self.refuseIfCompleted(info)
            let waitType = input.deploymentWaitType ?? .readyWait
            guard Self.isBlueGreen(info) else {
                // As AWS answers for an in-place deployment: never Ready; no termination wait to skip.
                throw ServiceError(
                    waitType == .readyWait ? "DeploymentIsNotInReadyStateException" : "UnsupportedActionForDeploymentTypeException",
                    "The deployment \(id) is an in-place deployment (\(info.status?.rawValue ?? "")): only a blue/green deployment waits to be continued."
                )
            }
            switch waitType {
            case .readyWait:
                guard info.status == .ready else {
                    throw ServiceError(
                        "DeploymentIsNotInReadyStateException",
                        "The deployment \(id) does not have a status of Ready and can't continue yet (it is \(info.status?.rawValue ?? "unknown")).")
                }
                let ready = try tx.targets(deploymentId: id).filter { $0.status == .ready }
                try reroute(tx, &info, ready: ready, previous: .ready)
            case .terminationWait:
                guard info.instanceTerminationWaitTimeStarted == true, info.status == .inProgress else {
                    throw ServiceError(
                        "DeploymentIsNotInReadyStateException",
                        "The deployment \(id) is not waiting to terminate its original instances (that wait starts once traffic is on the replacement instances, with terminateBlueInstancesOnDeploymentSuccess TERMINATE)."
                    )
                }
                let blue = try tx.targets(deploymentId: id).filter { $0.instanceLabel == .blue }
                try terminateOriginals(tx, blue, at: now())
                try saveProgress(tx, info, previous: info.status)
            }
        }
    }

    /// Blue/green deployments whose wait has run out: Ready ones past `waitTimeInMinutes` (STOP_DEPLOYMENT: Stopped),
    /// and those whose originals' termination wait is over. Run on the server's clock and before reads.
    @discardableResult
    public func expireBlueGreenWaits() throws -> Int {
        let stamp = now()
        let due = try store.read { tx -> [String] in
            var due: [String] = []
            for id in try tx.deploymentIds(matching: DeploymentFilter(statuses: ["Ready", "InProgress"])) {
                guard let info = try findDeployment(tx, id), Self.isBlueGreen(info) else { continue }
                if info.status == .ready {
                    let targets = try tx.targets(deploymentId: id)
                    let readySince = targets.filter { $0.status == .ready }.compactMap(\.lastUpdatedAt).max() ?? stamp
                    let wait = Double(info.blueGreenDeploymentConfiguration?.deploymentReadyOption?.waitTimeInMinutes ?? 0) * 60
                    if stamp >= readySince.addingTimeInterval(wait) { due.append(id) }
                } else if try shiftDue(tx, info) {
                    due.append(id)
                } else if info.instanceTerminationWaitTimeStarted == true {
                    let blue = try tx.targets(deploymentId: id).filter { $0.instanceLabel == .blue }
                    if !blue.contains(where: { $0.status != .succeeded }), stamp >= terminationDue(info, blue: blue) { due.append(id) }
                }
            }
            return due
        }
        guard !due.isEmpty else { return 0 }
        try store.write { tx in
            for id in due {
                guard var info = try findDeployment(tx, id) else { continue }
                if info.status == .ready {
                    let wait = info.blueGreenDeploymentConfiguration?.deploymentReadyOption?.waitTimeInMinutes ?? 0
                    _ = try stop(
                        tx, &info,
                        because: ErrorInformation(
                            code: .timeout,
                            message:
                                "Traffic was not rerouted within the \(wait) minute(s) of deploymentReadyOption.waitTimeInMinutes (STOP_DEPLOYMENT): continue-deployment did not come in time."
                        ))
                } else {
                    try advance(tx, id)
                }
            }
        }
        return due.count
    }
}
