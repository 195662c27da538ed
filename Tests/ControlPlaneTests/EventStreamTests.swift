import ControlPlane
import DeployModel
import DeployStore
import Foundation
import HostCommandModel
import Synchronization
import Testing

/// The event stream (issue 24's outbox): every state change is announced once, in order, in the transaction that
/// made it, in EventBridge's shape; on both stores.
@Suite struct EventStreamTests {
    func fixture(_ store: StoreKind, instances: [String] = ["a", "b"]) throws -> (ControlPlane, URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ev-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let plane = ControlPlane(store: try store.make(in: dir), region: "eu-west-3", account: "123456789012")
        _ = try plane.createApplication(CreateApplicationInput(applicationName: "shop"))
        for name in instances {
            try plane.registerOnPremisesInstance(RegisterOnPremisesInstanceInput(instanceName: name))
            try plane.addTagsToOnPremisesInstances(AddTagsToOnPremisesInstancesInput(tags: [Tag(key: "k", value: "v")], instanceNames: [name]))
        }
        _ = try plane.createDeploymentGroup(
            CreateDeploymentGroupInput(
                applicationName: "shop", deploymentGroupName: "web", deploymentConfigName: "CodeDeployDefault.OneAtATime",
                onPremisesInstanceTagFilters: [TagFilter(key: "k", type: .keyOnly)],
                autoRollbackConfiguration: AutoRollbackConfiguration(enabled: true, events: [.deploymentFailure])))
        return (plane, dir)
    }

    func deploy(_ plane: ControlPlane, key: String = "v1.zip") throws -> String {
        try plane.createDeployment(
            CreateDeploymentInput(
                applicationName: "shop", deploymentGroupName: "web",
                revision: RevisionLocation(revisionType: .s3, s3Location: S3Location(bucket: "bkt", key: key, bundleType: .zip)))
        ).deploymentId ?? ""
    }

    /// Runs every command of every instance; `fail` names an instance whose AfterInstall fails.
    func runAgents(_ plane: ControlPlane, _ instances: [String], fail: String? = nil) throws {
        var progressed = true
        while progressed {
            progressed = false
            for instance in instances {
                while let command = try plane.pollHostCommand(instanceName: instance) {
                    progressed = true
                    let failed = instance == fail && command.lifecycleEvent == "AfterInstall"
                    try plane.completeHostCommand(
                        id: command.id,
                        report: failed
                            ? HostCommandReport(status: .failed, errorCode: "ScriptFailed", scriptName: "check.sh", message: "exit code 3")
                            : HostCommandReport(status: .succeeded))
                }
            }
        }
    }

    /// `kind state` for each event: `deployment START`, `instance a SUCCESS`, `lifecycle a AfterInstall FAILURE`.
    func summary(_ events: [StreamEvent]) -> [String] {
        events.map { event in
            let detail = event.event["detail"]
            let state = detail?["state"]?.stringValue ?? "?"
            switch event.event["detail-type"]?.stringValue {
            case "CodeDeploy Deployment State-change Notification"?: return "deployment \(state)"
            case "CodeDeploy Instance State-change Notification"?: return "instance \(detail?["instanceId"]?.stringValue ?? "") \(state)"
            default: return "lifecycle \(detail?["instanceId"]?.stringValue ?? "") \(detail?["lifecycleEvent"]?.stringValue ?? "") \(state)"
            }
        }
    }

    static let ran = ["ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall", "ApplicationStart", "ValidateService"]

    @Test(arguments: StoreKind.selected) func aDeploymentIsAnnouncedInOrderInEventBridgesShape(_ store: StoreKind) throws {
        let (plane, dir) = try fixture(store)
        defer { try? FileManager.default.removeItem(at: dir) }
        let id = try deploy(plane)
        try runAgents(plane, ["a", "b"])
        let events = try plane.events(StreamEventQuery(deploymentId: id))
        var expected = ["deployment CREATED", "deployment START", "instance a START"]
        expected += Self.ran.map { "lifecycle a \($0) SUCCESS" } + ["instance a SUCCESS", "instance b START"]
        expected += Self.ran.map { "lifecycle b \($0) SUCCESS" } + ["instance b SUCCESS", "deployment SUCCESS"]
        #expect(summary(events) == expected)
        #expect(events.map(\.sequence) == events.map(\.sequence).sorted())
        #expect(Set(events.map(\.sequence)).count == events.count)

        let created = try #require(events.first?.event)
        #expect(created.objectKeys == ["account", "region", "detail-type", "source", "version", "time", "id", "resources", "detail"])
        #expect(created["source"] == .string("aws.codedeploy"))
        #expect(created["account"] == .string("123456789012"))
        #expect(
            created["resources"]
                == .array([
                    .string("arn:aws:codedeploy:eu-west-3:123456789012:application:shop"),
                    .string("arn:aws:codedeploy:eu-west-3:123456789012:deploymentgroup:shop/web"),
                ]))
        let detail = try #require(created["detail"])
        #expect(detail.objectKeys == ["instanceGroupId", "region", "application", "deploymentId", "state", "deploymentGroup"])
        let groupId = try plane.getDeploymentGroup(GetDeploymentGroupInput(applicationName: "shop", deploymentGroupName: "web"))
            .deploymentGroupInfo?.deploymentGroupId
        #expect(detail["instanceGroupId"]?.stringValue == groupId)
        #expect(created["time"]?.stringValue?.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"#, options: .regularExpression) != nil)
        let instance = try #require(events.first { $0.event["detail-type"] == .string("CodeDeploy Instance State-change Notification") })
        #expect(
            instance.event["detail"]?.objectKeys == [
                "instanceId", "region", "state", "application", "deploymentId", "instanceGroupId", "deploymentGroup",
            ])
    }

    @Test(arguments: StoreKind.selected) func aFailureCarriesItsErrorAndItsRollbackIsAnnounced(_ store: StoreKind) throws {
        let (plane, dir) = try fixture(store, instances: ["a"])
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = try deploy(plane)
        try runAgents(plane, ["a"])
        let bad = try deploy(plane, key: "v2.zip")
        try runAgents(plane, ["a"], fail: "a")
        let events = try plane.events(StreamEventQuery(deploymentId: bad))
        let failed = try #require(events.first { $0.event["detail"]?["lifecycleEvent"] == .string("AfterInstall") })
        #expect(failed.event["detail"]?["state"] == .string("FAILURE"))
        #expect(failed.event["detail"]?["errorCode"] == .string("ScriptFailed"))
        #expect(failed.event["detail"]?["message"] == .string("exit code 3"))
        #expect(summary(events).suffix(3) == ["instance a FAILURE", "deployment FAILURE", "deployment ROLLBACK"])
        let rollbackId = try #require(events.last?.event["detail"]?["rollbackDeploymentId"]?.stringValue)
        #expect(rollbackId != good)
        #expect(summary(try plane.events(StreamEventQuery(deploymentId: rollbackId))).prefix(2) == ["deployment CREATED", "deployment START"])
        #expect(try plane.events(StreamEventQuery(applicationName: "shop")).count > events.count)
        #expect(try plane.events(StreamEventQuery(applicationName: "other")).isEmpty)
    }

    @Test(arguments: StoreKind.selected) func aStopAndANoInstanceFailureAreAnnounced(_ store: StoreKind) throws {
        let (plane, dir) = try fixture(store)
        defer { try? FileManager.default.removeItem(at: dir) }
        let id = try deploy(plane)
        _ = try plane.stopDeployment(StopDeploymentInput(deploymentId: id, autoRollbackEnabled: false))
        #expect(summary(try plane.events(StreamEventQuery(deploymentId: id))).last == "deployment STOP")
        for name in ["a", "b"] { try plane.deregisterOnPremisesInstance(DeregisterOnPremisesInstanceInput(instanceName: name)) }
        let empty = try deploy(plane)
        #expect(summary(try plane.events(StreamEventQuery(deploymentId: empty))) == ["deployment CREATED", "deployment FAILURE"])
    }

    @Test(arguments: StoreKind.selected) func readersResumeAfterASequenceAndPageByLimit(_ store: StoreKind) throws {
        let (plane, dir) = try fixture(store)
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try deploy(plane)
        try runAgents(plane, ["a", "b"])
        let all = try plane.events(StreamEventQuery())
        #expect(all.count == 21)
        let firstPage = try plane.events(StreamEventQuery(limit: 5))
        #expect(firstPage == Array(all.prefix(5)))
        let rest = try plane.events(StreamEventQuery(after: firstPage[4].sequence))
        #expect(rest == Array(all.dropFirst(5)))
        #expect(try plane.events(StreamEventQuery(after: all[all.count - 1].sequence)).isEmpty)
        #expect(try plane.events(StreamEventQuery(since: Date().addingTimeInterval(3600))).isEmpty)
    }

    struct Abandoned: Error {}

    /// An event appended by a transaction that fails is never seen, and its sequence number is not handed out
    /// again to a later one as if it had been read (readers resume after the last number they saw).
    @Test(arguments: StoreKind.selected) func anEventOfARolledBackTransactionIsNeverSeen(_ kind: StoreKind) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ev-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try kind.make(in: dir)
        func record(_ body: String) -> EventRecord {
            EventRecord(time: 1_800_000_000, deploymentId: "d-1", applicationName: "shop", instanceName: nil, body: body)
        }
        let first = try store.write { tx in try tx.appendEvent(record("{\"n\":1}")) }
        #expect(throws: Abandoned.self) {
            try store.write { tx in
                try tx.appendEvent(record("{\"n\":2}"))
                throw Abandoned()
            }
        }
        let third = try store.write { tx in try tx.appendEvent(record("{\"n\":3}")) }
        #expect(third > first)
        let seen = try store.read { tx in try tx.events(EventFilter()) }
        #expect(seen.map(\.body) == ["{\"n\":1}", "{\"n\":3}"])
        #expect(try store.read { tx in try tx.lastEventSequence() } == third)
    }

    /// The long poll answers as soon as an event is written, not at the end of its wait.
    @Test func aWaitingReadAnswersWhenAnEventArrives() async throws {
        let (plane, dir) = try fixture(.sqlite)
        defer { try? FileManager.default.removeItem(at: dir) }
        let after = try plane.events(StreamEventQuery()).last?.sequence ?? 0
        // Other suites' blocking tests can hold Swift's cooperative threads (two here) for seconds, delaying every
        // wake-up, this read's too: a probe wakes every 50 ms, and the longest gap in its wakes between the write and
        // the answer (counted from the write, so a probe that had not started yet is held up too) is allowed for.
        let ticks = Ticks()
        let probe = Task {
            while !Task.isCancelled {
                ticks.append(ContinuousClock.now)
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        async let found = plane.listEvents(StreamEventQuery(after: after, wait: StreamEventQuery.maxWait))
        try await Task.sleep(for: .milliseconds(300))
        let written = ContinuousClock.now
        _ = try deploy(plane)
        let events = try await found
        let answeredAt = ContinuousClock.now
        probe.cancel()
        let answered = answeredAt - written
        let wakes = [written] + ticks.all.filter { $0 > written && $0 < answeredAt } + [answeredAt]
        let lateness = zip(wakes, wakes.dropFirst()).map { $1 - $0 }.max() ?? .zero
        #expect(summary(events).first == "deployment CREATED")
        // Within its 250 ms polling of the write, not at the end of the 20 s wait (plus any hold-up of the threads).
        let allowed: Duration = .seconds(3) + lateness * 2
        #expect(answered < allowed, "answered \(answered) after the write; threads held up to \(lateness)")
    }
}

/// When a probe task woke, in order.
final class Ticks: Sendable {
    private let times = Mutex<[ContinuousClock.Instant]>([])
    func append(_ time: ContinuousClock.Instant) { times.withLock { $0.append(time) } }
    var all: [ContinuousClock.Instant] { times.withLock { $0 } }
}

extension JSONValue {
    /// The member names of an object, in order.
    fileprivate var objectKeys: [String] {
        guard case .object(let members) = self else { return [] }
        return members.map(\.key)
    }
}

/// The stream keeps events for its retention: a deployment created later deletes the older ones (at most a thousand
/// at a time), and nothing newer.
@Suite struct EventRetentionTests {
    @Test(arguments: StoreKind.selected) func creatingADeploymentDeletesEventsPastTheRetention(_ kind: StoreKind) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ev-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let clock = ManualClock()
        let plane = ControlPlane(store: try kind.make(in: dir), eventRetention: 86_400, clock: { clock.now })
        _ = try plane.createApplication(CreateApplicationInput(applicationName: "shop"))
        _ = try plane.createDeploymentGroup(CreateDeploymentGroupInput(applicationName: "shop", deploymentGroupName: "web"))
        let input = CreateDeploymentInput(
            applicationName: "shop", deploymentGroupName: "web",
            revision: RevisionLocation(revisionType: .s3, s3Location: S3Location(bucket: "b", key: "k.zip", bundleType: .zip)))
        let old = try plane.createDeployment(input).deploymentId
        clock.advance(3600)
        let recent = try plane.createDeployment(input).deploymentId
        #expect(try plane.events(StreamEventQuery()).count == 4)
        clock.advance(86_400 - 1800)
        let latest = try plane.createDeployment(input).deploymentId
        let kept = try plane.events(StreamEventQuery())
        #expect(Set(kept.compactMap { $0.event["detail"]?["deploymentId"]?.stringValue }) == Set([recent, latest].compactMap { $0 }))
        #expect(!kept.contains { $0.event["detail"]?["deploymentId"]?.stringValue == old })
    }
}
