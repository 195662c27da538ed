import ArtifactStore
import ControlPlane
import DeployModel
import DeployStore
import Foundation
import HostCommandModel
import Testing

/// A clock the test moves by hand.
final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var value = Date(timeIntervalSince1970: 1_800_000_000)
    var now: Date { lock.withLock { value } }
    func advance(_ seconds: TimeInterval) { lock.withLock { value += seconds } }
}

@Suite struct HostCommandTests {
    func fixture(_ clock: ManualClock, _ store: StoreKind) throws -> (ControlPlane, URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let plane = ControlPlane(store: try store.make(in: dir), clock: { clock.now })
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

    @Test(arguments: StoreKind.selected) func eventsAreHandedOutInOrderOneTargetAtATimeAndTheDeploymentEnds(_ store: StoreKind) throws {
        let clock = ManualClock()
        let (plane, dir) = try fixture(clock, store)
        defer { try? FileManager.default.removeItem(at: dir) }
        let id = try deploy(plane)
        var seen: [String] = []
        for instance in ["a", "b"] {
            #expect(try plane.pollHostCommand(instanceName: instance == "a" ? "b" : "a") == nil, "only one target at a time")
            while let command = try plane.pollHostCommand(instanceName: instance) {
                seen.append("\(instance):\(command.lifecycleEvent)")
                #expect(command.bundle == .s3(bucket: "bkt", key: "k.zip", version: nil, eTag: nil, bundleType: "zip"))
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

    /// Issue 9, item 7: with no agent polling at all, reading or writing a deployment applies expiry, so a dead
    /// agent neither leaves the deployment InProgress nor blocks the group's next deployment.
    /// A look that found nothing holds (a server may skip the next look until the store changes) only while no
    /// command of the instance waits for its acknowledgement: that one comes due again with time alone.
    @Test(arguments: StoreKind.selected) func aLookThatFindsNothingHoldsOnlyWhileNoCommandAwaitsItsAcknowledgement(_ store: StoreKind) throws {
        let clock = ManualClock()
        let (plane, dir) = try fixture(clock, store)
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try plane.lookForHostCommand(instanceName: "a") == (mayHave: false, settled: true))
        _ = try deploy(plane)
        #expect(try plane.lookForHostCommand(instanceName: "a").mayHave)
        let command = try #require(try plane.pollHostCommand(instanceName: "a"))
        // Handed out, not acknowledged: nothing now, but not settled.
        #expect(try plane.lookForHostCommand(instanceName: "a") == (mayHave: false, settled: false))
        clock.advance(plane.redeliveryDelay + 1)
        #expect(try plane.lookForHostCommand(instanceName: "a").mayHave)
        try plane.acknowledgeHostCommand(id: command.id, expectedSeconds: 10)
        #expect(try plane.lookForHostCommand(instanceName: "a") == (mayHave: false, settled: true))
    }

    @Test(arguments: StoreKind.selected) func expiryNeedsNoPollingAgent(_ store: StoreKind) throws {
        let clock = ManualClock()
        let (plane, dir) = try fixture(clock, store)
        defer { try? FileManager.default.removeItem(at: dir) }
        let id = try deploy(plane)
        let command = try #require(try plane.pollHostCommand(instanceName: "a"))
        try plane.acknowledgeHostCommand(id: command.id, expectedSeconds: 30)
        #expect(throws: ServiceError.self) { try deploy(plane) }
        clock.advance(91)
        // Only get-deployment is called: the command is failed on the control plane's own clock.
        let info = try #require(try plane.getDeployment(GetDeploymentInput(deploymentId: id)).deploymentInfo)
        #expect(info.status == .failed, "\(String(describing: info.status))")
        let event = try plane.getDeploymentInstance(GetDeploymentInstanceInput(deploymentId: id, instanceId: "a")).instanceSummary?
            .lifecycleEvents?.first { $0.lifecycleEventName == command.lifecycleEvent }
        #expect(event?.diagnostics?.message?.contains("presumed gone") == true)
        // The group is free again.
        let next = try deploy(plane)
        #expect(next != id)
    }

    /// A stopped deployment whose running event's agent died: once the command expires, no target is left
    /// InProgress, whichever call comes first.
    @Test(arguments: StoreKind.selected) func aStoppedDeploymentLeavesNoTargetInProgressOnceItsEventsExpire(_ store: StoreKind) throws {
        let clock = ManualClock()
        let (plane, dir) = try fixture(clock, store)
        defer { try? FileManager.default.removeItem(at: dir) }
        let id = try deploy(plane)
        let command = try #require(try plane.pollHostCommand(instanceName: "a"))
        try plane.acknowledgeHostCommand(id: command.id, expectedSeconds: 30)
        let stop = try plane.stopDeployment(StopDeploymentInput(deploymentId: id))
        #expect(stop.status == .pending)
        clock.advance(91)
        let summaries =
            try plane.batchGetDeploymentInstances(BatchGetDeploymentInstancesInput(deploymentId: id, instanceIds: ["a", "b"]))
            .instancesSummary ?? []
        #expect(summaries.count == 2)
        #expect(!summaries.contains { $0.status == .inProgress }, "\(summaries.map { String(describing: $0.status) })")
        let info = try #require(try plane.getDeployment(GetDeploymentInput(deploymentId: id)).deploymentInfo)
        #expect(info.status == .stopped)
        #expect(info.deploymentOverview?.inProgress == 0)
    }

    @Test(arguments: StoreKind.selected) func aCommandWhoseAgentVanishedIsFailedAfterItsTimeoutPlusAMargin(_ store: StoreKind) throws {
        let clock = ManualClock()
        let (plane, dir) = try fixture(clock, store)
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

    @Test(arguments: StoreKind.selected) func targetInstancesAndIgnoreApplicationStopFailuresReachTheAgent(_ store: StoreKind) throws {
        let clock = ManualClock()
        let (plane, dir) = try fixture(clock, store)
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

    /// `agent list`: Never until an agent is heard from (a local lease or a server's recorded call), Online within
    /// 90 s, Quiet after, Running while an acknowledged command is out; a contact never moves back in time.
    @Test(arguments: StoreKind.selected) func agentPresenceFollowsContactsLeasesAndRunningCommands(_ store: StoreKind) throws {
        let clock = ManualClock()
        let (plane, dir) = try fixture(clock, store)
        defer { try? FileManager.default.removeItem(at: dir) }
        func statuses() throws -> [String] { try plane.agentPresence().map { "\($0.instanceName) \($0.status.rawValue)" } }
        #expect(try statuses() == ["a Never", "b Never"])
        try plane.acquireAgentLease(instanceName: "a", agent: AgentIdentity(holder: "h1", hostName: "vm", pid: 42))
        let seen = clock.now.timeIntervalSince1970
        try plane.recordAgentContacts([AgentContactRecord(instanceName: "b", lastSeen: seen, address: "10.0.0.2", agent: "aws-sdk-ruby3")])
        #expect(try statuses() == ["a Online", "b Online"])
        let b = try #require(try plane.agentPresence(instanceNames: ["b"]).first)
        #expect(b.address == "10.0.0.2" && b.agent == "aws-sdk-ruby3" && b.lastSeen == Date(timeIntervalSince1970: seen))
        #expect(try plane.agentPresence(instanceNames: ["a"]).first?.address == "local")
        // An older contact (a late write) does not move it back.
        try plane.recordAgentContacts([AgentContactRecord(instanceName: "b", lastSeen: seen - 500, address: "old", agent: "old")])
        #expect(try plane.agentPresence(instanceNames: ["b"]).first?.address == "10.0.0.2")
        clock.advance(91)
        #expect(try statuses() == ["a Quiet", "b Quiet"])
        _ = try deploy(plane)
        let command = try #require(try plane.pollHostCommand(instanceName: "a"))
        try plane.acknowledgeHostCommand(id: command.id, expectedSeconds: 30)
        let a = try #require(try plane.agentPresence(instanceNames: ["a"]).first)
        #expect(a.status == .running && a.lifecycleEventName == command.lifecycleEvent)
        // Contacts the server holds in memory count before they are written.
        let pending = AgentContactRecord(instanceName: "b", lastSeen: clock.now.timeIntervalSince1970, address: "10.0.0.3", agent: "deployctl")
        #expect(try plane.agentPresence(instanceNames: ["b"], pending: [pending]).first?.status == .online)
        #expect(throws: ServiceError("InstanceNotRegisteredException", "The on-premises instance zz is not registered.")) {
            try plane.agentPresence(instanceNames: ["zz"])
        }
    }

    /// Issue 22, item 1: a caller authenticated as one instance never acknowledges, notes or completes another
    /// instance's command, nor its own through another deployment's identifier; nothing changes when refused.
    @Test(arguments: StoreKind.selected) func aCommandIsOnlyItsOwnInstancesToHandBack(_ store: StoreKind) throws {
        let clock = ManualClock()
        let (plane, dir) = try fixture(clock, store)
        defer { try? FileManager.default.removeItem(at: dir) }
        let id = try deploy(plane)
        let command = try #require(try plane.pollHostCommand(instanceName: "a"))
        let intruders = [
            HostCommandCaller(instanceName: "b", deploymentId: id), HostCommandCaller(instanceName: "a", deploymentId: "d-OTHER0000"),
        ]
        for caller in intruders {
            #expect(
                serviceErrorCode { try plane.acknowledgeHostCommand(id: command.id, caller: caller, expectedSeconds: 10) } == "AccessDeniedException")
            #expect(serviceErrorCode { try plane.postHostCommandUpdate(id: command.id, caller: caller, note: "x") } == "AccessDeniedException")
            #expect(
                serviceErrorCode { try plane.completeHostCommand(id: command.id, caller: caller, report: HostCommandReport(status: .succeeded)) }
                    == "AccessDeniedException")
        }
        let target = try plane.getDeploymentTarget(GetDeploymentTargetInput(deploymentId: id, targetId: "a"))
        #expect(
            target.deploymentTarget?.instanceTarget?.lifecycleEvents?.first { $0.lifecycleEventName == command.lifecycleEvent }?.status == .inProgress
        )
        let owner = HostCommandCaller(instanceName: "a", deploymentId: id)
        try plane.acknowledgeHostCommand(id: command.id, caller: owner, expectedSeconds: 10)
        try plane.completeHostCommand(id: command.id, caller: owner, report: HostCommandReport(status: .succeeded))
        let done = try plane.getDeploymentTarget(GetDeploymentTargetInput(deploymentId: id, targetId: "a"))
        #expect(
            done.deploymentTarget?.instanceTarget?.lifecycleEvents?.first { $0.lifecycleEventName == command.lifecycleEvent }?.status == .succeeded)
    }
}
