import ControlPlane
import DeployModel
import DeployStore
import Foundation
import HostCommandModel
import Testing

/// Blue/green deployments on registered instances: the phases, the Ready wait and continue-deployment, the
/// termination of the originals, the labels and counts AWS shows, rollback, and bad fleets refused up front.
@Suite struct BlueGreenTests {
    static let web = LoadBalancerInfo(targetGroupInfoList: [TargetGroupInfo(name: "web")])

    func fixture(_ clock: ManualClock, _ store: StoreKind, configuration: BlueGreenDeploymentConfiguration?) throws -> (ControlPlane, URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let plane = ControlPlane(store: try store.make(in: dir), clock: { clock.now })
        _ = try plane.createApplication(CreateApplicationInput(applicationName: "app"))
        for (name, color) in [("b1", "blue"), ("b2", "blue"), ("g1", "green"), ("g2", "green")] {
            try plane.registerOnPremisesInstance(RegisterOnPremisesInstanceInput(instanceName: name))
            try plane.addTagsToOnPremisesInstances(AddTagsToOnPremisesInstancesInput(tags: [Tag(key: "color", value: color)], instanceNames: [name]))
        }
        _ = try plane.createDeploymentGroup(
            CreateDeploymentGroupInput(
                applicationName: "app", deploymentGroupName: "g", deploymentConfigName: "CodeDeployDefault.OneAtATime",
                onPremisesInstanceTagFilters: [TagFilter(key: "color", value: "blue", type: .keyAndValue)],
                deploymentStyle: DeploymentStyle(deploymentType: .blueGreen, deploymentOption: .withTrafficControl),
                blueGreenDeploymentConfiguration: configuration, loadBalancerInfo: Self.web))
        return (plane, dir)
    }

    func deploy(_ plane: ControlPlane, green: String = "green") throws -> String {
        try plane.createDeployment(
            CreateDeploymentInput(
                applicationName: "app", deploymentGroupName: "g",
                revision: RevisionLocation(revisionType: .s3, s3Location: S3Location(bucket: "bkt", key: "k.zip", bundleType: .zip)),
                targetInstances: TargetInstances(tagFilters: [EC2TagFilter(key: "color", value: green, type: .keyAndValue)]))
        ).deploymentId ?? ""
    }

    /// Runs every agent command and traffic step until nothing moves; answers "instance:event" in the order run.
    func drive(_ plane: ControlPlane, failing: Set<String> = []) throws -> [String] {
        var seen: [String] = []
        var moved = true
        while moved {
            moved = false
            for instance in ["b1", "b2", "g1", "g2"] {
                while let command = try plane.pollHostCommand(instanceName: instance) {
                    seen.append("\(instance):\(command.lifecycleEvent)")
                    try plane.acknowledgeHostCommand(id: command.id, expectedSeconds: 10)
                    try plane.completeHostCommand(id: command.id, report: HostCommandReport(status: .succeeded))
                    moved = true
                }
            }
            for step in try plane.trafficSteps() {
                let name = "\(step.instanceName):\(step.action.rawValue)"
                seen.append(name)
                let failed = failing.contains(name)
                _ = try plane.completeTrafficStep(
                    id: step.commandId,
                    report: HostCommandReport(status: failed ? .failed : .succeeded, errorCode: failed ? "UnknownError" : nil, message: "test"))
                moved = true
            }
        }
        return seen
    }

    func info(_ plane: ControlPlane, _ id: String) throws -> DeploymentInfo? {
        try plane.getDeployment(GetDeploymentInput(deploymentId: id)).deploymentInfo
    }

    func target(_ plane: ControlPlane, _ id: String, _ name: String) throws -> InstanceTarget? {
        try plane.getDeploymentTarget(GetDeploymentTargetInput(deploymentId: id, targetId: name)).deploymentTarget?.instanceTarget
    }

    static let install = ["ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall", "ApplicationStart", "ValidateService"]

    @Test(arguments: StoreKind.selected) func greenIsInstalledThenTakesTrafficThenBlueIsDrained(_ store: StoreKind) throws {
        let clock = ManualClock()
        let (plane, dir) = try fixture(clock, store, configuration: nil)
        defer { try? FileManager.default.removeItem(at: dir) }
        let id = try deploy(plane)
        let seen = try drive(plane)
        let allow = ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
        let block = ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]
        // One at a time for the green install; then both rerouted; only then the originals blocked.
        #expect(Array(seen.prefix(14)) == Self.install.map { "g1:\($0)" } + Self.install.map { "g2:\($0)" })
        #expect(Set(seen[14..<20]) == Set(["g1", "g2"].flatMap { name in allow.map { "\(name):\($0)" } }))
        #expect(Set(seen.suffix(6)) == Set(["b1", "b2"].flatMap { name in block.map { "\(name):\($0)" } }))
        let done = try info(plane, id)
        #expect(done?.status == .succeeded)
        #expect(done?.deploymentOverview == DeploymentOverview(pending: 0, inProgress: 0, succeeded: 4, failed: 0, skipped: 0, ready: 0))
        #expect(try target(plane, id, "g1")?.instanceLabel == .green)
        #expect(try target(plane, id, "b1")?.instanceLabel == .blue)
        #expect(try target(plane, id, "g1")?.lifecycleEvents?.map(\.lifecycleEventName) == Self.install + allow)
        #expect(try target(plane, id, "b1")?.lifecycleEvents?.map(\.lifecycleEventName) == block)
        let green = try plane.listDeploymentTargets(ListDeploymentTargetsInput(deploymentId: id, targetFilters: ["ServerInstanceLabel": ["Green"]]))
        #expect(green.targetIds == ["g1", "g2"])
        let instances = try plane.listDeploymentInstances(ListDeploymentInstancesInput(deploymentId: id, instanceTypeFilter: [.blue]))
        #expect(instances.instancesList == ["b1", "b2"])
        #expect(
            try plane.getDeploymentInstance(GetDeploymentInstanceInput(deploymentId: id, instanceId: "g2")).instanceSummary?.instanceType == .green)
    }

    @Test(arguments: StoreKind.selected) func aReadyDeploymentWaitsForContinueOrIsStoppedAfterItsWait(_ store: StoreKind) throws {
        let clock = ManualClock()
        let configuration = BlueGreenDeploymentConfiguration(
            deploymentReadyOption: DeploymentReadyOption(actionOnTimeout: .stopDeployment, waitTimeInMinutes: 10))
        let (plane, dir) = try fixture(clock, store, configuration: configuration)
        defer { try? FileManager.default.removeItem(at: dir) }
        let id = try deploy(plane)
        #expect(try drive(plane).count == 14)
        var waiting = try info(plane, id)
        #expect(waiting?.status == .ready)
        #expect(waiting?.deploymentOverview?.ready == 2 && waiting?.deploymentOverview?.pending == 2)
        #expect(try target(plane, id, "g1")?.status == .ready)
        #expect(throws: ServiceError.self) {
            try plane.continueDeployment(ContinueDeploymentInput(deploymentId: id, deploymentWaitType: .terminationWait))
        }
        try plane.continueDeployment(ContinueDeploymentInput(deploymentId: id, deploymentWaitType: .readyWait))
        #expect(try drive(plane).count == 12)
        waiting = try info(plane, id)
        #expect(waiting?.status == .succeeded)
        // Continued too late: already completed.
        let late = #expect(throws: ServiceError.self) { try plane.continueDeployment(ContinueDeploymentInput(deploymentId: id)) }
        #expect(late?.code == "DeploymentAlreadyCompletedException")

        // The next one is not continued: Stopped once its ten minutes are over, its green instances never rerouted.
        let second = try deploy(plane)
        _ = try drive(plane)
        #expect(try info(plane, second)?.status == .ready)
        clock.advance(9 * 60)
        #expect(try plane.expireBlueGreenWaits() == 0)
        clock.advance(61)
        #expect(try plane.expireBlueGreenWaits() == 1)
        let stopped = try info(plane, second)
        #expect(stopped?.status == .stopped)
        #expect(stopped?.errorInformation?.code == .timeout)
        #expect(try target(plane, second, "g1")?.lifecycleEvents?.first { $0.lifecycleEventName == "AllowTraffic" }?.status == .skipped)
        #expect(try target(plane, second, "b1")?.status == .skipped)
    }

    @Test(arguments: StoreKind.selected) func terminateRunsTheOriginalsApplicationStopAfterItsWait(_ store: StoreKind) throws {
        let clock = ManualClock()
        let configuration = BlueGreenDeploymentConfiguration(
            terminateBlueInstancesOnDeploymentSuccess: BlueInstanceTerminationOption(action: .terminate, terminationWaitTimeInMinutes: 5))
        let (plane, dir) = try fixture(clock, store, configuration: configuration)
        defer { try? FileManager.default.removeItem(at: dir) }
        let id = try deploy(plane)
        _ = try drive(plane)
        var waiting = try info(plane, id)
        #expect(waiting?.status == .inProgress && waiting?.instanceTerminationWaitTimeStarted == true)
        clock.advance(5 * 60 + 1)
        #expect(try plane.expireBlueGreenWaits() == 1)
        #expect(try drive(plane) == ["b1:ApplicationStop", "b2:ApplicationStop"])
        waiting = try info(plane, id)
        #expect(waiting?.status == .succeeded)

        // TERMINATION_WAIT ends the wait at once.
        let second = try deploy(plane)
        _ = try drive(plane)
        #expect(try info(plane, second)?.instanceTerminationWaitTimeStarted == true)
        try plane.continueDeployment(ContinueDeploymentInput(deploymentId: second, deploymentWaitType: .terminationWait))
        #expect(try drive(plane) == ["b1:ApplicationStop", "b2:ApplicationStop"])
        #expect(try info(plane, second)?.status == .succeeded)
    }

    @Test(arguments: StoreKind.selected) func aFailedRerouteRollsTrafficBackToBlue(_ store: StoreKind) throws {
        let clock = ManualClock()
        let (plane, dir) = try fixture(clock, store, configuration: nil)
        defer { try? FileManager.default.removeItem(at: dir) }
        // A first, successful release, so there is a revision to roll back to.
        _ = try deploy(plane)
        _ = try drive(plane)
        _ = try plane.updateDeploymentGroup(
            UpdateDeploymentGroupInput(
                applicationName: "app", currentDeploymentGroupName: "g",
                autoRollbackConfiguration: AutoRollbackConfiguration(enabled: true, events: [.deploymentFailure])))
        let id = try deploy(plane)
        let seen = try drive(plane, failing: ["g1:AllowTraffic", "g2:AllowTraffic"])
        let failed = try info(plane, id)
        #expect(failed?.status == .failed)
        let rollback = try #require(failed?.rollbackInfo?.rollbackDeploymentId)
        // The rollback reinstalls nothing: blue is allowed traffic again, then green drained.
        let after = Array(seen.drop { $0 != "b1:BeforeAllowTraffic" })
        let allow = ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
        let block = ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]
        #expect(after.count == 12)
        #expect(Set(after.prefix(6)) == Set(["b1", "b2"].flatMap { name in allow.map { "\(name):\($0)" } }))
        #expect(Set(after.suffix(6)) == Set(["g1", "g2"].flatMap { name in block.map { "\(name):\($0)" } }))
        let rolledBack = try info(plane, rollback)
        #expect(rolledBack?.status == .succeeded && rolledBack?.creator == .codeDeployRollback)
        #expect(try target(plane, rollback, "b1")?.instanceLabel == .blue)
    }

    @Test(arguments: StoreKind.selected) func aCanaryShiftsWeightsInStepsBeforeBlueIsDrained(_ store: StoreKind) throws {
        let clock = ManualClock()
        let (plane, dir) = try fixture(clock, store, configuration: nil)
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try plane.createDeploymentConfig(
            CreateDeploymentConfigInput(
                deploymentConfigName: "Canary10",
                trafficRoutingConfig: TrafficRoutingConfig(
                    type: .timeBasedCanary, timeBasedCanary: TimeBasedCanary(canaryPercentage: 10, canaryInterval: 1)),
                computePlatform: .server))
        _ = try plane.updateDeploymentGroup(
            UpdateDeploymentGroupInput(applicationName: "app", currentDeploymentGroupName: "g", deploymentConfigName: "Canary10"))
        let id = try deploy(plane)
        // Green is installed all at once, then admitted at weight 0.
        var allows: [TrafficStep] = []
        var shift: TrafficStep?
        for _ in 0..<10 {
            for instance in ["g1", "g2"] {
                while let command = try plane.pollHostCommand(instanceName: instance) {
                    try plane.acknowledgeHostCommand(id: command.id, expectedSeconds: 10)
                    try plane.completeHostCommand(id: command.id, report: HostCommandReport(status: .succeeded))
                }
            }
            for step in try plane.trafficSteps() {
                if step.action == .shift {
                    shift = step
                    continue
                }
                allows.append(step)
                _ = try plane.completeTrafficStep(id: step.commandId, report: HostCommandReport(status: .succeeded))
            }
            if shift != nil { break }
        }
        #expect(allows.map(\.action) == [.allow, .allow] && allows.allSatisfy { $0.weight == .zero })
        let first = try #require(shift)
        #expect(first.greenShare == 10 && first.greenServers == ["g1", "g2"] && first.blueServers == ["b1", "b2"])
        _ = try plane.completeTrafficStep(id: first.commandId, report: HostCommandReport(status: .succeeded, message: "10%"))
        var info = try self.info(plane, id)
        #expect(info?.deploymentStatusMessages?.first?.hasPrefix("Traffic shifting: 10% of requests") == true)
        // Blue waits out the canary interval; then the last step, then blue is drained.
        #expect(try plane.trafficSteps().isEmpty && plane.pollHostCommand(instanceName: "b1") == nil)
        clock.advance(30)
        #expect(try plane.expireBlueGreenWaits() == 0)
        clock.advance(31)
        #expect(try plane.expireBlueGreenWaits() == 1)
        let last = try #require(try plane.trafficSteps().first)
        #expect(last.action == .shift && last.greenShare == 100)
        _ = try plane.completeTrafficStep(id: last.commandId, report: HostCommandReport(status: .succeeded))
        #expect(try drive(plane).filter { $0.hasPrefix("b1:") } == ["b1:BeforeBlockTraffic", "b1:BlockTraffic", "b1:AfterBlockTraffic"])
        info = try self.info(plane, id)
        #expect(info?.status == .succeeded)
        #expect(info?.deploymentStatusMessages?.first?.hasPrefix("Traffic shifting: 100%") == true)
        // A shifting configuration needs a blue/green group.
        _ = try plane.createDeploymentGroup(
            CreateDeploymentGroupInput(
                applicationName: "app", deploymentGroupName: "inplace", deploymentConfigName: "Canary10",
                onPremisesInstanceTagFilters: [TagFilter(key: "color", value: "blue", type: .keyAndValue)]))
        let refused = #expect(throws: ServiceError.self) {
            _ = try plane.createDeployment(
                CreateDeploymentInput(
                    applicationName: "app", deploymentGroupName: "inplace",
                    revision: RevisionLocation(revisionType: .s3, s3Location: S3Location(bucket: "bkt", key: "k.zip", bundleType: .zip))))
        }
        #expect(refused?.message.contains("needs a BLUE_GREEN deployment group") == true)
    }

    @Test func badFleetsAreRefusedBeforeAnythingStarts() throws {
        let clock = ManualClock()
        let (plane, dir) = try fixture(clock, .memory, configuration: nil)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases: [(TargetInstances?, String)] = [
            (nil, "names its replacement (green) instances"),
            (
                TargetInstances(tagFilters: [EC2TagFilter(key: "color", value: "purple", type: .keyAndValue)]),
                "not currently applied to any instances"
            ),
            (TargetInstances(tagFilters: [EC2TagFilter(key: "color", type: .keyOnly)]), "which the deployment group's tags select too"),
        ]
        for (targets, expected) in cases {
            let error = #expect(throws: ServiceError.self) {
                _ = try plane.createDeployment(
                    CreateDeploymentInput(
                        applicationName: "app", deploymentGroupName: "g",
                        revision: RevisionLocation(revisionType: .s3, s3Location: S3Location(bucket: "bkt", key: "k.zip", bundleType: .zip)),
                        targetInstances: targets))
            }
            #expect(error?.code == "InvalidTargetInstancesException")
            #expect(error?.message.contains(expected) == true, "\(error?.message ?? "")")
        }
        #expect(try plane.listDeployments(ListDeploymentsInput()).deployments?.isEmpty == true)
        // Groups: blue/green needs traffic control, and deployctl makes no machines.
        for (style, configuration, code) in [
            (DeploymentStyle(deploymentType: .blueGreen, deploymentOption: .withoutTrafficControl), nil, "InvalidDeploymentStyleException"),
            (
                DeploymentStyle(deploymentType: .blueGreen, deploymentOption: .withTrafficControl),
                BlueGreenDeploymentConfiguration(greenFleetProvisioningOption: GreenFleetProvisioningOption(action: .copyAutoScalingGroup)),
                "InvalidBlueGreenDeploymentConfigurationException"
            ),
            (
                DeploymentStyle(deploymentType: .blueGreen, deploymentOption: .withTrafficControl),
                BlueGreenDeploymentConfiguration(
                    deploymentReadyOption: DeploymentReadyOption(actionOnTimeout: .stopDeployment, waitTimeInMinutes: 3000)),
                "InvalidBlueGreenDeploymentConfigurationException"
            ),
        ] {
            let error = #expect(throws: ServiceError.self) {
                _ = try plane.createDeploymentGroup(
                    CreateDeploymentGroupInput(
                        applicationName: "app", deploymentGroupName: "other", deploymentStyle: style,
                        blueGreenDeploymentConfiguration: configuration, loadBalancerInfo: Self.web))
            }
            #expect(error?.code == code)
        }
    }
}
