import ArtifactStore
import ControlPlane
import DeployModel
import DeployStore
import Foundation
import Testing

/// A clock the test moves by hand.
final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var value = Date(timeIntervalSince1970: 1_800_000_000)
    var now: Date { lock.withLock { value } }
    func advance(_ seconds: TimeInterval) { lock.withLock { value += seconds } }
}

@Suite struct HostCommandTests {
    func fixture(_ clock: ManualClock) throws -> (ControlPlane, URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("state.db").path
        let plane = ControlPlane(state: try StateFile(path: path), artifacts: ArtifactStore(besideStateFile: path), clock: { clock.now })
        _ = try plane.createApplication(CreateApplicationInput(applicationName: "app"))
        for name in ["a", "b"] {
            try plane.registerOnPremisesInstance(RegisterOnPremisesInstanceInput(instanceName: name))
            try plane.addTagsToOnPremisesInstances(AddTagsToOnPremisesInstancesInput(tags: [Tag(key: "k", value: "v")], instanceNames: [name]))
        }
        _ = try plane.createDeploymentGroup(
            CreateDeploymentGroupInput(
                applicationName: "app", deploymentGroupName: "g", deploymentConfigName: "CodeDeployDefault.OneAtATime",
                onPremisesInstanceTagFilters: [TagFilter(key: "k", type: .keyOnly)]))
        return (plane, dir)
    }

    func deploy(_ plane: ControlPlane) throws -> String {
        try plane.createDeployment(
            CreateDeploymentInput(
                applicationName: "app", deploymentGroupName: "g",
                revision: RevisionLocation(revisionType: .s3, s3Location: S3Location(bucket: "bkt", key: "k.zip", bundleType: .zip)))
        ).deploymentId ?? ""
    }

    @Test func eventsAreHandedOutInOrderOneTargetAtATimeAndTheDeploymentEnds() throws {
        let clock = ManualClock()
        let (plane, dir) = try fixture(clock)
        defer { try? FileManager.default.removeItem(at: dir) }
        let id = try deploy(plane)
        var seen: [String] = []
        for instance in ["a", "b"] {
            #expect(try plane.pollHostCommand(instanceName: instance == "a" ? "b" : "a") == nil, "only one target at a time")
            while let command = try plane.pollHostCommand(instanceName: instance) {
                seen.append("\(instance):\(command.lifecycleEvent)")
                #expect(command.bundleProblem?.contains("not in the artifact store") == true)
                try plane.acknowledgeHostCommand(id: command.id, expectedSeconds: 10)
                try plane.completeHostCommand(id: command.id, report: HostCommandReport(status: .succeeded))
            }
        }
        let events = ["ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall", "ApplicationStart", "ValidateService"]
        #expect(seen == events.map { "a:\($0)" } + events.map { "b:\($0)" })
        let info = try plane.getDeployment(GetDeploymentInput(deploymentId: id)).deploymentInfo
        #expect(info?.status == .succeeded)
        #expect(info?.deploymentOverview?.succeeded == 2)
        #expect(info?.startTime != nil && info?.completeTime != nil)
        let target = try plane.getDeploymentTarget(GetDeploymentTargetInput(deploymentId: id, targetId: "a")).deploymentTarget?.instanceTarget
        #expect(target?.lifecycleEvents?.first { $0.lifecycleEventName == "AllowTraffic" }?.status == .skipped)
    }

    @Test func aCommandWhoseAgentVanishedIsFailedAfterItsTimeoutPlusAMargin() throws {
        let clock = ManualClock()
        let (plane, dir) = try fixture(clock)
        defer { try? FileManager.default.removeItem(at: dir) }
        let id = try deploy(plane)
        while let done = try plane.pollHostCommand(instanceName: "a") {
            try plane.completeHostCommand(id: done.id, report: HostCommandReport(status: .succeeded))
        }
        let command = try #require(try plane.pollHostCommand(instanceName: "b"))
        try plane.acknowledgeHostCommand(id: command.id, expectedSeconds: 30)
        clock.advance(60)
        #expect(try plane.pollHostCommand(instanceName: "a") == nil)
        #expect(try plane.getDeployment(GetDeploymentInput(deploymentId: id)).deploymentInfo?.status == .inProgress)
        clock.advance(31)
        _ = try plane.pollHostCommand(instanceName: "a")
        let info = try #require(try plane.getDeployment(GetDeploymentInput(deploymentId: id)).deploymentInfo)
        // OneAtATime: a failure on the last instance still succeeds, as on AWS.
        #expect(info.status == .succeeded)
        let event = try plane.getDeploymentTarget(GetDeploymentTargetInput(deploymentId: id, targetId: "b")).deploymentTarget?.instanceTarget?
            .lifecycleEvents?.first { $0.lifecycleEventName == command.lifecycleEvent }
        #expect(event?.status == .failed)
        #expect(event?.diagnostics?.message?.contains("presumed gone") == true)
        #expect(throws: ServiceError.self) { try plane.completeHostCommand(id: command.id, report: HostCommandReport(status: .succeeded)) }
        // The instance whose last deployment failed goes first next time.
        let next = try deploy(plane)
        #expect(try plane.listDeploymentTargets(ListDeploymentTargetsInput(deploymentId: next)).targetIds == ["b", "a"])
        #expect(try plane.pollHostCommand(instanceName: "a") == nil)
        #expect(try plane.pollHostCommand(instanceName: "b") != nil)
    }

    @Test func targetInstancesAndIgnoreApplicationStopFailuresReachTheAgent() throws {
        let clock = ManualClock()
        let (plane, dir) = try fixture(clock)
        defer { try? FileManager.default.removeItem(at: dir) }
        try plane.addTagsToOnPremisesInstances(AddTagsToOnPremisesInstancesInput(tags: [Tag(key: "only", value: "me")], instanceNames: ["b"]))
        let id =
            try plane.createDeployment(
                CreateDeploymentInput(
                    applicationName: "app", deploymentGroupName: "g",
                    revision: RevisionLocation(revisionType: .s3, s3Location: S3Location(bucket: "bkt", key: "k.zip", bundleType: .zip)),
                    ignoreApplicationStopFailures: true,
                    targetInstances: TargetInstances(tagFilters: [EC2TagFilter(key: "only", value: "me", type: .keyAndValue)]))
            ).deploymentId ?? ""
        #expect(try plane.listDeploymentTargets(ListDeploymentTargetsInput(deploymentId: id)).targetIds == ["b"])
        #expect(try plane.pollHostCommand(instanceName: "a") == nil)
        let command = try #require(try plane.pollHostCommand(instanceName: "b"))
        #expect(command.ignoreApplicationStopFailures)
        #expect(command.lifecycleEvent == "ApplicationStop")
    }
}
