import ControlPlane
import DeployModel
import DeployStore
import Foundation
import HostCommandModel
import Testing

/// Deployments with traffic control: BlockTraffic and AllowTraffic are traffic steps a driver claims, never agent
/// commands; the hooks around them are the agent's; a step nobody claims fails, naming the missing flag.
@Suite struct TrafficStepTests {
    func fixture(_ clock: ManualClock, _ store: StoreKind, style: DeploymentStyle?, balancers: LoadBalancerInfo?) throws -> (ControlPlane, URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ts-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let plane = ControlPlane(store: try store.make(in: dir), clock: { clock.now })
        _ = try plane.createApplication(CreateApplicationInput(applicationName: "app"))
        for name in ["a", "b"] {
            try plane.registerOnPremisesInstance(RegisterOnPremisesInstanceInput(instanceName: name))
            try plane.addTagsToOnPremisesInstances(AddTagsToOnPremisesInstancesInput(tags: [Tag(key: "k", value: "v")], instanceNames: [name]))
        }
        try plane.addTagsToOnPremisesInstances(
            AddTagsToOnPremisesInstancesInput(tags: [Tag(key: ControlPlane.serverNameTag, value: "web-b")], instanceNames: ["b"]))
        _ = try plane.createDeploymentGroup(
            CreateDeploymentGroupInput(
                applicationName: "app", deploymentGroupName: "g", deploymentConfigName: "CodeDeployDefault.OneAtATime",
                onPremisesInstanceTagFilters: [TagFilter(key: "k", type: .keyOnly)], deploymentStyle: style, loadBalancerInfo: balancers))
        return (plane, dir)
    }

    static let controlled = DeploymentStyle(deploymentType: .inPlace, deploymentOption: .withTrafficControl)
    static let web = LoadBalancerInfo(targetGroupInfoList: [TargetGroupInfo(name: "web")])

    func deploy(_ plane: ControlPlane) throws -> String {
        try plane.createDeployment(
            CreateDeploymentInput(
                applicationName: "app", deploymentGroupName: "g",
                revision: RevisionLocation(revisionType: .s3, s3Location: S3Location(bucket: "bkt", key: "k.zip", bundleType: .zip)))
        ).deploymentId ?? ""
    }

    /// Runs the instance's agent commands until none is left; answers their events.
    func runAgent(_ plane: ControlPlane, _ instance: String) throws -> [String] {
        var seen: [String] = []
        while let command = try plane.pollHostCommand(instanceName: instance) {
            seen.append(command.lifecycleEvent)
            try plane.acknowledgeHostCommand(id: command.id, expectedSeconds: 10)
            try plane.completeHostCommand(id: command.id, report: HostCommandReport(status: .succeeded))
        }
        return seen
    }

    @Test(arguments: StoreKind.selected) func trafficStepsAreTheDriversAndTheHooksAroundThemTheAgents(_ store: StoreKind) throws {
        let clock = ManualClock()
        let (plane, dir) = try fixture(clock, store, style: Self.controlled, balancers: Self.web)
        defer { try? FileManager.default.removeItem(at: dir) }
        let id = try deploy(plane)
        #expect(try runAgent(plane, "a") == ["BeforeBlockTraffic"])
        // The agent waits: its instance has an outstanding step, which only a driver sees.
        #expect(try plane.mayHaveHostCommand(instanceName: "a") == false)
        var steps = try plane.trafficSteps()
        #expect(steps.count == 1)
        let block = try #require(steps.first)
        #expect(block.action == .block && block.instanceName == "a" && block.targets == ["web"] && block.serverName == "a")
        #expect(block.deploymentServers == ["a", "web-b"], "the haproxy-server tag names b's server")
        #expect(try plane.trafficSteps(instanceName: "b").isEmpty)
        try plane.claimTrafficStep(id: block.commandId, expectedSeconds: 300)
        // Claimed, it outlives the agent grace (60 s) up to its own limit.
        clock.advance(200)
        _ = try plane.expireOverdueCommands()
        #expect(try plane.trafficSteps().map(\.commandId) == [block.commandId])
        let woken = try plane.completeTrafficStep(
            id: block.commandId, report: HostCommandReport(status: .succeeded, message: "Drained web/a", logTail: "set server web/a state drain"))
        #expect(woken.first == "a")
        #expect(
            try runAgent(plane, "a") == [
                "AfterBlockTraffic", "ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall", "ApplicationStart",
                "ValidateService", "BeforeAllowTraffic",
            ])
        steps = try plane.trafficSteps(instanceName: "a")
        #expect(steps.map(\.action) == [.allow])
        _ = try plane.completeTrafficStep(id: steps[0].commandId, report: HostCommandReport(status: .succeeded, message: "ready"))
        #expect(try runAgent(plane, "a") == ["AfterAllowTraffic"])
        // One at a time: b starts once a has finished, with its server's name.
        #expect(try runAgent(plane, "b") == ["BeforeBlockTraffic"])
        #expect(try plane.trafficSteps().map(\.serverName) == ["web-b"])
        let target = try plane.getDeploymentTarget(GetDeploymentTargetInput(deploymentId: id, targetId: "a")).deploymentTarget?.instanceTarget
        let blockEvent = target?.lifecycleEvents?.first { $0.lifecycleEventName == "BlockTraffic" }
        #expect(blockEvent?.status == .succeeded)
        #expect(blockEvent?.diagnostics?.logTail == "set server web/a state drain")
        #expect(target?.status == .succeeded)
        // The event stream carries the commands.
        let stream = try plane.events(StreamEventQuery(deploymentId: id))
        #expect(stream.contains { "\($0.event)".contains("set server web/a state drain") })
    }

    @Test(arguments: StoreKind.selected) func aFailedStepFailsTheTargetAndLeavesTheRestUndone(_ store: StoreKind) throws {
        let clock = ManualClock()
        let (plane, dir) = try fixture(clock, store, style: Self.controlled, balancers: Self.web)
        defer { try? FileManager.default.removeItem(at: dir) }
        let id = try deploy(plane)
        _ = try runAgent(plane, "a")
        let step = try #require(try plane.trafficSteps().first)
        _ = try plane.completeTrafficStep(
            id: step.commandId,
            report: HostCommandReport(status: .failed, errorCode: "UnknownError", message: "BlockTraffic: HAProxy at unix:/x has no server 'a'"))
        #expect(try runAgent(plane, "a").isEmpty)
        let info = try plane.getDeployment(GetDeploymentInput(deploymentId: id)).deploymentInfo
        #expect(info?.status == .failed)
        let target = try plane.getDeploymentTarget(GetDeploymentTargetInput(deploymentId: id, targetId: "a")).deploymentTarget?.instanceTarget
        #expect(target?.lifecycleEvents?.first { $0.lifecycleEventName == "ApplicationStop" }?.status == .skipped)
        #expect(target?.lifecycleEvents?.first { $0.lifecycleEventName == "BlockTraffic" }?.diagnostics?.message?.contains("no server 'a'") == true)
    }

    @Test(arguments: StoreKind.selected) func aStepNobodyClaimsFailsNamingTheFlag(_ store: StoreKind) throws {
        let clock = ManualClock()
        let (plane, dir) = try fixture(clock, store, style: Self.controlled, balancers: Self.web)
        defer { try? FileManager.default.removeItem(at: dir) }
        let id = try deploy(plane)
        _ = try runAgent(plane, "a")
        clock.advance(61)
        #expect(try plane.expireOverdueCommands() == 1)
        let target = try plane.getDeploymentTarget(GetDeploymentTargetInput(deploymentId: id, targetId: "a")).deploymentTarget?.instanceTarget
        let message = target?.lifecycleEvents?.first { $0.lifecycleEventName == "BlockTraffic" }?.diagnostics?.message ?? ""
        #expect(message.contains("--load-balancer web=unix:/run/haproxy/admin.sock"), "\(message)")
        #expect(try plane.getDeployment(GetDeploymentInput(deploymentId: id)).deploymentInfo?.status == .failed)
    }

    @Test(arguments: StoreKind.selected) func withoutTrafficControlNothingChanges(_ store: StoreKind) throws {
        let clock = ManualClock()
        // Load balancers named but WITHOUT_TRAFFIC_CONTROL: AWS ignores them, and so does deployctl.
        let style = DeploymentStyle(deploymentType: .inPlace, deploymentOption: .withoutTrafficControl)
        let (plane, dir) = try fixture(clock, store, style: style, balancers: Self.web)
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try deploy(plane)
        #expect(try runAgent(plane, "a").first == "ApplicationStop")
        #expect(try plane.trafficSteps().isEmpty)
    }

    @Test func badTrafficControlIsRefusedWhenTheGroupIsMade() throws {
        let clock = ManualClock()
        let cases: [(LoadBalancerInfo?, String)] = [
            (nil, "WITH_TRAFFIC_CONTROL needs loadBalancerInfo"),
            (LoadBalancerInfo(targetGroupInfoList: []), "WITH_TRAFFIC_CONTROL needs loadBalancerInfo"),
            (LoadBalancerInfo(targetGroupInfoList: [TargetGroupInfo(name: "web;disable server x")]), "'web;disable server x'"),
            (LoadBalancerInfo(elbInfoList: [ELBInfo(name: String(repeating: "w", count: 33))]), "1 to 32"),
            (LoadBalancerInfo(targetGroupInfoList: [TargetGroupInfo(name: nil)]), "no load balancer name"),
            (
                LoadBalancerInfo(targetGroupPairInfoList: [
                    TargetGroupPairInfo(targetGroups: [TargetGroupInfo(name: "b"), TargetGroupInfo(name: "g")])
                ]),
                "for ECS"
            ),
        ]
        for (balancers, expected) in cases {
            let error = #expect(throws: ServiceError.self) {
                _ = try fixture(clock, .memory, style: Self.controlled, balancers: balancers)
            }
            #expect(error?.code == "InvalidLoadBalancerInfoException")
            #expect(error?.message.contains(expected) == true, "\(error?.message ?? "")")
        }
    }
}
