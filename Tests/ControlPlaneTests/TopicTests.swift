import ControlPlane
import DeployModel
import DeployStore
import Foundation
import Testing

/// Topics, subscriptions and the deliveries outbox (issue 24): what is queued, in which transaction, the order a
/// subscription's deliveries go in, the back-off, giving up, and a deliverer killed mid-attempt.
@Suite struct TopicTests {
    func fixture(_ clock: ManualClock, _ store: StoreKind) throws -> (ControlPlane, URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("topics-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return (ControlPlane(store: try store.make(in: dir), clock: { clock.now }), dir)
    }

    static let policy = DeliveryPolicy(firstRetry: 5, maxDelay: 600, retryWindow: 3600, attemptTimeout: 10)
    static let ok = DeliveryOutcome(status: 200, error: nil, milliseconds: 3)
    static let refused = DeliveryOutcome(status: 500, error: nil, milliseconds: 3)

    /// A topic with one confirmed subscription; answers (topic ARN, subscription ARN).
    func subscribed(_ plane: ControlPlane, endpoint: String = "https://hooks.example.com/a") throws -> (String, String) {
        let topic = try plane.createTopicNow(name: "deploys")
        let made = try plane.subscribeNow(topicArn: topic, protocolName: "https", endpoint: endpoint, signingSecret: nil, owner: "")
        #expect(made.subscriptionArn == "pending confirmation" && made.signingSecret?.hasPrefix("whsec_") == true)
        let confirmation = try plane.claimDeliveries(limit: 10, policy: Self.policy)
        #expect(confirmation.map(\.record.type) == ["SubscriptionConfirmation"])
        try plane.recordDeliveryAttempts(confirmation.map { ($0, Self.ok) }, policy: Self.policy)
        #expect(throws: ServiceError.self) { try plane.confirmSubscriptionNow(topicArn: topic, token: String(repeating: "0", count: 64)) }
        let arn = try plane.confirmSubscriptionNow(topicArn: topic, token: confirmation[0].token)
        return (topic, arn)
    }

    @Test(arguments: StoreKind.selected) func publishReachesConfirmedSubscriptionsAndAMissingTopicIsARecordedFailure(_ store: StoreKind) throws {
        let clock = ManualClock()
        let (plane, dir) = try fixture(clock, store)
        defer { try? FileManager.default.removeItem(at: dir) }
        let (topic, _) = try subscribed(plane)
        // A pending subscription gets nothing.
        _ = try plane.subscribeNow(topicArn: topic, protocolName: "http", endpoint: "http://127.0.0.1:9/b", signingSecret: nil, owner: "")
        _ = try plane.claimDeliveries(limit: 10, policy: Self.policy)
        let id = try plane.publishNow(topicArn: topic, message: "hello", subject: "hi")
        let claimed = try plane.claimDeliveries(limit: 10, policy: Self.policy)
        #expect(claimed.map(\.record.messageId) == [id] && claimed[0].record.endpoint == "https://hooks.example.com/a")
        #expect(throws: ServiceError("NotFound", "Topic does not exist: \(topic)x")) {
            try plane.publishNow(topicArn: topic + "x", message: "m", subject: nil)
        }
        #expect(throws: ServiceError.self) {
            try plane.subscribeNow(topicArn: topic, protocolName: "email", endpoint: "a@b", signingSecret: nil, owner: "")
        }
        #expect(throws: ServiceError.self) {
            try plane.subscribeNow(topicArn: topic, protocolName: "https", endpoint: "http://x/", signingSecret: nil, owner: "")
        }
        #expect(throws: ServiceError.self) { try plane.publishNow(topicArn: topic, message: "m", subject: String(repeating: "s", count: 101)) }

        // A trigger naming a topic that does not exist is recorded as failed, with no attempt; one that exists is queued.
        _ = try plane.createApplication(CreateApplicationInput(applicationName: "shop"))
        try plane.registerOnPremisesInstance(RegisterOnPremisesInstanceInput(instanceName: "a"))
        try plane.addTagsToOnPremisesInstances(AddTagsToOnPremisesInstancesInput(tags: [Tag(key: "k", value: "v")], instanceNames: ["a"]))
        _ = try plane.createDeploymentGroup(
            CreateDeploymentGroupInput(
                applicationName: "shop", deploymentGroupName: "web", onPremisesInstanceTagFilters: [TagFilter(key: "k", type: .keyOnly)],
                triggerConfigurations: [
                    TriggerConfig(triggerName: "team", triggerTargetArn: topic, triggerEvents: [.deploymentStart]),
                    TriggerConfig(triggerName: "lost", triggerTargetArn: topic + "-gone", triggerEvents: [.deploymentStart]),
                ]))
        let deployment =
            try plane.createDeployment(
                CreateDeploymentInput(
                    applicationName: "shop", deploymentGroupName: "web",
                    revision: RevisionLocation(revisionType: .s3, s3Location: S3Location(bucket: "b", key: "k.zip", bundleType: .zip)))
            ).deploymentId ?? ""
        let listed = try plane.listDeliveriesNow(DeliveryQuery(deploymentId: deployment)).deliveries
        #expect(Set(listed.map(\.origin)) == ["team", "lost"])
        let lost = listed.first { $0.origin == "lost" }
        #expect(lost?.state == "failed" && lost?.lastError?.contains("Topic does not exist") == true && lost?.attempts == [])
        let team = listed.first { $0.origin == "team" }
        #expect(team?.state == "pending" && team?.subject == "CREATED: AWS CodeDeploy \(deployment) in local to shop")
        // A second deployment the group refuses (one at a time) announces nothing: its transaction never committed.
        let before = try plane.listDeliveriesNow(DeliveryQuery()).deliveries.count
        #expect(throws: ServiceError.self) {
            _ = try plane.createDeployment(
                CreateDeploymentInput(
                    applicationName: "shop", deploymentGroupName: "web",
                    revision: RevisionLocation(revisionType: .s3, s3Location: S3Location(bucket: "b", key: "k2.zip", bundleType: .zip))))
        }
        #expect(try plane.listDeliveriesNow(DeliveryQuery()).deliveries.count == before)
    }

    @Test(arguments: StoreKind.selected) func aSubscriptionsDeliveriesGoInOrderWithBackOffUntilTheWindowEnds(_ store: StoreKind) throws {
        let clock = ManualClock()
        let (plane, dir) = try fixture(clock, store)
        defer { try? FileManager.default.removeItem(at: dir) }
        let (topic, _) = try subscribed(plane)
        let ids = try (1...3).map { try plane.publishNow(topicArn: topic, message: "m\($0)", subject: nil) }
        var claimed = try plane.claimDeliveries(limit: 10, policy: Self.policy)
        #expect(claimed.map(\.record.messageId) == ids)
        // The first fails: the two behind it are not sent, and wait for it.
        try plane.recordDeliveryAttempts(
            [(claimed[0], Self.refused), (claimed[1], .notAttempted), (claimed[2], .notAttempted)], policy: Self.policy)
        #expect(try plane.claimDeliveries(limit: 10, policy: Self.policy).isEmpty)
        clock.advance(4.4)
        #expect(try plane.claimDeliveries(limit: 10, policy: Self.policy).isEmpty, "back-off: 5 s ±10 %")
        clock.advance(1.2)
        claimed = try plane.claimDeliveries(limit: 10, policy: Self.policy)
        #expect(claimed.map(\.record.messageId) == ids && claimed.map(\.record.attempts) == [2, 1, 1])
        try plane.recordDeliveryAttempts(claimed.map { ($0, Self.ok) }, policy: Self.policy)
        let page = try plane.listDeliveriesNow(DeliveryQuery(topicArn: topic, maxItems: 2))
        #expect(page.deliveries.map(\.state) == ["delivered", "delivered"] && page.nextToken != nil)
        let first = try plane.listDeliveriesNow(DeliveryQuery(topicArn: topic, nextToken: page.nextToken)).deliveries.first { $0.messageId == ids[0] }
        #expect(first?.attempts.map(\.statusCode) == [500, 200])

        // One that keeps failing is retried, waits doubling up to 10 minutes, until an attempt an hour after it was
        // published: then it is given up, saying why.
        let doomed = try plane.publishNow(topicArn: topic, message: "doomed", subject: nil)
        var attempts = 0
        var waits: [Double] = []
        var last = clock.now
        while true {
            let due = try plane.claimDeliveries(limit: 10, policy: Self.policy)
            if let claim = due.first {
                #expect(claim.record.messageId == doomed)
                attempts += 1
                waits.append(clock.now.timeIntervalSince(last))
                last = clock.now
                try plane.recordDeliveryAttempts(
                    [(claim, DeliveryOutcome(status: nil, error: "connection refused", milliseconds: 1))], policy: Self.policy)
            }
            let state = try plane.listDeliveriesNow(DeliveryQuery(topicArn: topic, maxItems: 1)).deliveries[0]
            if state.state != "pending" {
                #expect(state.state == "failed" && state.lastError?.hasPrefix("Gave up after \(attempts) attempts") == true)
                break
            }
            clock.advance(max(0, (state.nextAttemptAt ?? clock.now).timeIntervalSince(clock.now)) + 0.01)
        }
        #expect(clock.now.timeIntervalSince(Date(timeIntervalSince1970: 1_800_000_000)) >= 3600)
        #expect((10...16).contains(attempts), "\(attempts) attempts: \(waits)")
        #expect(waits.dropFirst().allSatisfy { $0 <= 661 } && waits.contains { $0 >= 540 })
    }

    @Test(arguments: StoreKind.selected) func aDeliveryClaimedByAKilledDelivererComesDueAgain(_ store: StoreKind) throws {
        let clock = ManualClock()
        let (plane, dir) = try fixture(clock, store)
        defer { try? FileManager.default.removeItem(at: dir) }
        let (topic, subscription) = try subscribed(plane)
        let id = try plane.publishNow(topicArn: topic, message: "m", subject: nil)
        // Claimed, and the deliverer dies: nothing is recorded but the claim.
        #expect(try plane.claimDeliveries(limit: 10, policy: Self.policy).map(\.record.messageId) == [id])
        clock.advance(Self.policy.lease - 1)
        #expect(try plane.claimDeliveries(limit: 10, policy: Self.policy).isEmpty, "held by the claim's lease")
        clock.advance(2)
        let again = try plane.claimDeliveries(limit: 10, policy: Self.policy)
        #expect(again.map(\.record.messageId) == [id] && again[0].record.attempts == 2)
        try plane.recordDeliveryAttempts([(again[0], Self.ok)], policy: Self.policy)
        let attempts = try plane.listDeliveriesNow(DeliveryQuery(topicArn: topic)).deliveries[0].attempts
        #expect(attempts.count == 2 && attempts[0].error?.contains("deliverer stopped") == true && attempts[1].statusCode == 200)
        // Unsubscribed: what was still queued for it fails instead of being sent.
        _ = try plane.publishNow(topicArn: topic, message: "late", subject: nil)
        try plane.unsubscribeNow(subscriptionArn: subscription)
        #expect(try plane.claimDeliveries(limit: 10, policy: Self.policy).isEmpty)
        #expect(try plane.listDeliveriesNow(DeliveryQuery(state: "failed")).deliveries.first?.lastError?.contains("no longer exists") == true)
    }
}
