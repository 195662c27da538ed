import DeployModel
import DeployStore
import Foundation

/// How deliveries are retried: exponential back-off from `firstRetry` seconds, doubling up to `maxDelay`, until an
/// attempt fails `retryWindow` seconds or more after the message was published (an hour by default); each attempt is given
/// `attemptTimeout` seconds, and a claimed delivery comes due again that long (plus a margin) after its claim, so a
/// deliverer killed mid-attempt loses nothing.
public struct DeliveryPolicy: Sendable, Equatable {
    public var firstRetry: Double
    public var maxDelay: Double
    public var retryWindow: Double
    public var attemptTimeout: Double

    public init(firstRetry: Double = 5, maxDelay: Double = 600, retryWindow: Double = 3600, attemptTimeout: Double = 10) {
        self.firstRetry = firstRetry
        self.maxDelay = maxDelay
        self.retryWindow = retryWindow
        self.attemptTimeout = attemptTimeout
    }

    /// The wait before attempt `attempts + 1`, after `attempts` failed ones (±10 % jitter, so receivers that come
    /// back are not hit by every delivery at once).
    public func delay(afterAttempts attempts: Int) -> Double {
        let base = min(maxDelay, firstRetry * pow(2, Double(max(0, min(attempts, 30) - 1))))
        return base * Double.random(in: 0.9...1.1)
    }

    /// How long a claim holds a delivery.
    public var lease: Double { attemptTimeout + 5 }
}

/// A delivery claimed for one attempt, with what sending it needs from its subscription.
public struct ClaimedDelivery: Sendable, Equatable {
    public var record: DeliveryRecord
    /// The subscription's Standard Webhooks secret.
    public var secret: String
    /// The subscription's confirmation token (what a `SubscriptionConfirmation` carries).
    public var token: String
    /// When it was claimed: its attempt's time.
    public var claimedAt: Double

    public init(record: DeliveryRecord, secret: String, token: String, claimedAt: Double) {
        self.record = record
        self.secret = secret
        self.token = token
        self.claimedAt = claimedAt
    }
}

/// How one attempt went: an HTTP status, or no answer and why.
public struct DeliveryOutcome: Sendable, Equatable {
    public var status: Int?
    public var error: String?
    public var milliseconds: Int

    public init(status: Int?, error: String?, milliseconds: Int) {
        self.status = status
        self.error = error
        self.milliseconds = milliseconds
    }

    /// Not sent: an older delivery to the same subscription failed in this round, so this one waits behind it.
    public static let notAttempted = DeliveryOutcome(status: nil, error: nil, milliseconds: 0)

    public var delivered: Bool { error == nil && (200..<300).contains(status ?? 0) }
    public var attempted: Bool { self != Self.notAttempted }
}

/// SNS's topics and HTTP(S) subscriptions, the subset triggers need, and the deliveries' outbox.
///
/// A trigger's notification (`triggerTargetArn`, an SNS topic ARN) and a `Publish` become one delivery row per
/// confirmed subscription, written in the transaction of the change they announce, so nothing committed goes
/// unannounced and nothing rolled back is sent; a topic that does not exist gets one `failed` row saying so. A
/// deliverer (TopicDelivery, outside any transaction) claims due rows, POSTs SNS's envelope with a Standard
/// Webhooks signature and records each attempt here; a slow or dead receiver only delays its own rows.
extension ControlPlane: TopicRegistry {
    static let notFoundTopic = "Topic does not exist"
    static let pendingConfirmation = "pending confirmation"
    static let interruptedAttempt = "no outcome recorded: the deliverer stopped during the attempt (it is made again)"

    func topicArn(_ name: String) -> String { "arn:aws:sns:\(region):\(account):\(name)" }

    public func createTopic(name: String) async throws -> String { try createTopicNow(name: name) }
    public func deleteTopic(arn: String) async throws { try deleteTopicNow(arn: arn) }
    public func listTopics() async throws -> [String] { try listTopicsNow() }
    public func subscribe(topicArn: String, protocolName: String, endpoint: String, signingSecret: String?, owner: String) async throws
        -> SubscribeResult
    {
        try subscribeNow(topicArn: topicArn, protocolName: protocolName, endpoint: endpoint, signingSecret: signingSecret, owner: owner)
    }
    public func confirmSubscription(topicArn: String, token: String) async throws -> String {
        try confirmSubscriptionNow(topicArn: topicArn, token: token)
    }
    public func unsubscribe(subscriptionArn: String) async throws { try unsubscribeNow(subscriptionArn: subscriptionArn) }
    public func listSubscriptionsByTopic(topicArn: String) async throws -> [SubscriptionSummary] {
        try listSubscriptionsByTopicNow(topicArn: topicArn)
    }
    public func publish(topicArn: String, message: String, subject: String?) async throws -> String {
        try publishNow(topicArn: topicArn, message: message, subject: subject)
    }
    public func listDeliveries(_ query: DeliveryQuery) async throws -> ListDeliveriesOutput { try listDeliveriesNow(query) }

    /// SNS's rule: 1-256 letters, digits, hyphens and underscores.
    static func validTopicName(_ name: String) throws -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
        guard !name.isEmpty, name.count <= 256, name.allSatisfy(allowed.contains) else {
            throw ServiceError(
                "InvalidParameter", "Invalid parameter: Topic Name (1 to 256 letters, digits, hyphens and underscores, got '\(name.prefix(60))')")
        }
        return name
    }

    public func createTopicNow(name: String) throws -> String {
        let arn = topicArn(try Self.validTopicName(name))
        return try store.write { tx in
            if try tx.topic(arn: arn) == nil { try tx.insertTopic(TopicRecord(arn: arn, name: name, created: now().timeIntervalSince1970)) }
            return arn
        }
    }

    func requireTopic(_ tx: any StoreTransaction, _ arn: String) throws -> TopicRecord {
        guard let topic = try tx.topic(arn: arn) else { throw ServiceError("NotFound", "\(Self.notFoundTopic): \(arn.prefix(300))") }
        return topic
    }

    /// Deleting a topic that does not exist is not an error (SNS).
    public func deleteTopicNow(arn: String) throws {
        try store.write { tx in try tx.deleteTopic(arn: arn) }
    }

    public func listTopicsNow() throws -> [String] { try store.read { tx in try tx.topics().map(\.arn) } }

    /// A new subscription is pending and gets SNS's `SubscriptionConfirmation` (queued here); the same endpoint
    /// subscribed again answers the existing subscription, and its secret is not shown again.
    public func subscribeNow(topicArn: String, protocolName: String, endpoint: String, signingSecret: String?, owner: String) throws
        -> SubscribeResult
    {
        guard protocolName == "http" || protocolName == "https" else {
            throw ServiceError(
                "InvalidParameter",
                "Invalid parameter: Amazon SNS does not support this protocol string: \(protocolName.prefix(40)) (deployctl delivers http and https)")
        }
        guard endpoint.count <= 2048, let url = URL(string: endpoint), url.scheme == protocolName, let host = url.host, !host.isEmpty else {
            throw ServiceError(
                "InvalidParameter", "Invalid parameter: Endpoint must be an absolute \(protocolName):// URL (got '\(endpoint.prefix(100))')")
        }
        let secret = try signingSecret.map(Self.validSigningSecret) ?? Self.newSigningSecret()
        return try store.write { tx in
            _ = try requireTopic(tx, topicArn)
            let existing = try tx.subscriptions(topicArn: topicArn).first { $0.endpoint == endpoint && $0.protocolName == protocolName }
            if let existing {
                return SubscribeResult(subscriptionArn: existing.confirmed ? existing.arn : Self.pendingConfirmation, signingSecret: nil)
            }
            let stamp = now().timeIntervalSince1970
            let record = SubscriptionRecord(
                arn: "\(topicArn):\(Identifier.uuid())", topicArn: topicArn, protocolName: protocolName, endpoint: endpoint, confirmed: false,
                token: Self.randomHex(64), secret: secret, owner: owner.isEmpty ? account : owner, created: stamp)
            try tx.saveSubscription(record)
            let text =
                "You have chosen to subscribe to the topic \(topicArn).\nTo confirm the subscription, visit the SubscribeURL included in this message."
            try tx.insertDelivery(
                DeliveryRecord(
                    messageId: Identifier.uuid(), type: "SubscriptionConfirmation", topicArn: topicArn, subscriptionArn: record.arn,
                    endpoint: endpoint,
                    subject: nil, message: text, created: stamp, state: "pending", nextAttempt: stamp, origin: "Subscribe", deploymentId: nil))
            return SubscribeResult(subscriptionArn: Self.pendingConfirmation, signingSecret: secret)
        }
    }

    /// `whsec_` and the base64 of at least 24 bytes, as Standard Webhooks asks.
    static func validSigningSecret(_ secret: String) throws -> String {
        guard secret.hasPrefix("whsec_"), let key = Data(base64Encoded: String(secret.dropFirst(6))), (24...64).contains(key.count) else {
            throw ServiceError("InvalidParameter", "Invalid parameter: SigningSecret must be whsec_ and the base64 of 24 to 64 random bytes")
        }
        return secret
    }

    static func newSigningSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        return "whsec_" + Data((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }).base64EncodedString()
    }

    static func randomHex(_ count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return String((0..<count).map { _ in "0123456789abcdef".randomElement(using: &generator) ?? "0" })
    }

    /// The token a `SubscriptionConfirmation` carried confirms its subscription (again: confirming twice is fine).
    public func confirmSubscriptionNow(topicArn: String, token: String) throws -> String {
        try store.write { tx in
            _ = try requireTopic(tx, topicArn)
            guard token.count == 64,
                var found = try tx.subscriptions(topicArn: topicArn).first(where: { Self.sameSecret($0.token, token) })
            else { throw ServiceError("InvalidParameter", "Invalid token") }
            if !found.confirmed {
                found.confirmed = true
                try tx.saveSubscription(found)
            }
            return found.arn
        }
    }

    /// Compares without leaking where two strings first differ.
    static func sameSecret(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    public func unsubscribeNow(subscriptionArn: String) throws {
        try store.write { tx in
            guard try tx.subscription(arn: subscriptionArn) != nil else {
                throw ServiceError("NotFound", "Subscription does not exist: \(subscriptionArn.prefix(300))")
            }
            try tx.deleteSubscription(arn: subscriptionArn)
        }
    }

    public func listSubscriptionsByTopicNow(topicArn: String) throws -> [SubscriptionSummary] {
        try store.read { tx in
            _ = try requireTopic(tx, topicArn)
            return try tx.subscriptions(topicArn: topicArn).map { record in
                SubscriptionSummary(
                    subscriptionArn: record.confirmed ? record.arn : "PendingConfirmation", owner: record.owner, protocolName: record.protocolName,
                    endpoint: record.endpoint, topicArn: record.topicArn)
            }
        }
    }

    /// SNS's limits: a message of at most 256 KiB, a subject of 1-100 printable ASCII characters.
    public func publishNow(topicArn: String, message: String, subject: String?) throws -> String {
        guard !message.isEmpty, message.utf8.count <= 262_144 else {
            throw ServiceError("InvalidParameter", "Invalid parameter: Message must be 1 byte to 256 KiB long")
        }
        if let subject, subject.isEmpty || subject.count > 100 || !subject.unicodeScalars.allSatisfy({ (0x20...0x7e).contains($0.value) }) {
            throw ServiceError("InvalidParameter", "Invalid parameter: Subject must be 1 to 100 printable ASCII characters")
        }
        return try store.write { tx in
            _ = try requireTopic(tx, topicArn)
            return try publish(tx, topicArn: topicArn, subject: subject, message: message, origin: "Publish", deploymentId: nil)
        }
    }

    /// Queues one message for every confirmed subscription of the topic, in `tx`; a topic that does not exist gets
    /// one failed row that says so. Answers the message id.
    @discardableResult
    func publish(_ tx: any StoreTransaction, topicArn: String, subject: String?, message: String, origin: String, deploymentId: String?) throws
        -> String
    {
        let id = Identifier.uuid()
        let stamp = now().timeIntervalSince1970
        func row(_ subscription: SubscriptionRecord?) -> DeliveryRecord {
            DeliveryRecord(
                messageId: id, type: "Notification", topicArn: topicArn, subscriptionArn: subscription?.arn ?? "",
                endpoint: subscription?.endpoint ?? "", subject: subject, message: message, created: stamp,
                state: subscription == nil ? "failed" : "pending", nextAttempt: stamp,
                lastError: subscription == nil ? "\(Self.notFoundTopic): \(topicArn) (deployctl sns create-topic makes it)" : nil, origin: origin,
                deploymentId: deploymentId)
        }
        guard try tx.topic(arn: topicArn) != nil else {
            try tx.insertDelivery(row(nil))
            return id
        }
        for subscription in try tx.subscriptions(topicArn: topicArn) where subscription.confirmed {
            try tx.insertDelivery(row(subscription))
        }
        return id
    }

    /// Queues what a deployment's or an instance's change sends to its group's triggers.
    func publishTriggers(_ tx: any StoreTransaction, _ notifications: [TriggerNotification], deploymentId: String) throws {
        for notification in notifications {
            try publish(
                tx, topicArn: notification.targetArn, subject: notification.subject, message: notification.message,
                origin: notification.triggerName, deploymentId: deploymentId)
        }
    }

    public func listDeliveriesNow(_ query: DeliveryQuery) throws -> ListDeliveriesOutput {
        var before: Int64?
        if let token = query.nextToken {
            guard let id = Int64(token), id > 0 else { throw ServiceError("InvalidNextTokenException", "The next token is not valid.") }
            before = id
        }
        if let state = query.state, !["pending", "delivered", "failed"].contains(state) {
            throw ServiceError("InvalidParameter", "State must be pending, delivered or failed.")
        }
        let limit = min(max(query.maxItems ?? 100, 1), 1000)
        return try store.read { tx in
            let rows = try tx.deliveries(
                DeliveryFilter(before: before, state: query.state, topicArn: query.topicArn, deploymentId: query.deploymentId, limit: limit + 1))
            let page = rows.prefix(limit)
            let summaries = try page.map { row in
                DeliverySummary(
                    deliveryId: row.id, messageId: row.messageId, type: row.type, topicArn: row.topicArn,
                    subscriptionArn: row.subscriptionArn.isEmpty ? nil : row.subscriptionArn, endpoint: row.endpoint.isEmpty ? nil : row.endpoint,
                    subject: row.subject, origin: row.origin, deploymentId: row.deploymentId, state: row.state,
                    publishedAt: Date(timeIntervalSince1970: row.created),
                    nextAttemptAt: row.state == "pending" ? Date(timeIntervalSince1970: row.nextAttempt) : nil, lastError: row.lastError,
                    attempts: try tx.deliveryAttempts(deliveryId: row.id).map {
                        DeliveryAttempt(
                            attempt: $0.attempt, time: Date(timeIntervalSince1970: $0.time), milliseconds: $0.milliseconds, statusCode: $0.status,
                            error: $0.error)
                    })
            }
            return ListDeliveriesOutput(deliveries: summaries, nextToken: rows.count > limit ? page.last.map { String($0.id) } : nil)
        }
    }

    // MARK: The deliverer's side

    /// Whether a delivery is due now (a read, for a deliverer deciding whether to claim).
    public func hasDueDeliveries() throws -> Bool {
        let stamp = now().timeIntervalSince1970
        return try store.read { tx in (try tx.nextDeliveryTime()).map { $0 <= stamp } ?? false }
    }

    /// Claims up to `limit` due deliveries for one attempt each (pushing them a lease ahead), oldest first. A
    /// subscription's deliveries go in the order they were published: none is claimed while an older one of its
    /// subscription is still pending (waiting for a retry), and the deliverer sends each subscription's claims one
    /// after another. A delivery whose subscription is gone fails here instead.
    public func claimDeliveries(limit: Int, policy: DeliveryPolicy) throws -> [ClaimedDelivery] {
        let stamp = now().timeIntervalSince1970
        return try store.write { tx in
            var claimed: [ClaimedDelivery] = []
            var heads: [String: Int64?] = [:]
            var blocked: Set<String> = []
            for var row in try tx.dueDeliveries(now: stamp, limit: limit) {
                guard let subscription = try tx.subscription(arn: row.subscriptionArn) else {
                    row.state = "failed"
                    row.lastError = "The subscription \(row.subscriptionArn) no longer exists (unsubscribed, or its topic was deleted)."
                    try tx.updateDelivery(row)
                    continue
                }
                if heads[row.subscriptionArn] == nil {
                    heads[row.subscriptionArn] = try tx.firstPendingDelivery(subscriptionArn: row.subscriptionArn)
                }
                // An older delivery of this subscription waits for its retry: this one waits behind it.
                if blocked.contains(row.subscriptionArn) || (heads[row.subscriptionArn] ?? nil).map({ $0 < row.id }) == true,
                    !claimed.contains(where: { $0.record.subscriptionArn == row.subscriptionArn })
                {
                    blocked.insert(row.subscriptionArn)
                    continue
                }
                row.attempts += 1
                row.nextAttempt = stamp + policy.lease
                try tx.updateDelivery(row)
                // Recorded now, so an attempt cut short by a killed deliverer still shows; its outcome replaces this.
                try tx.insertDeliveryAttempt(
                    DeliveryAttemptRecord(
                        deliveryId: row.id, attempt: row.attempts, time: stamp, milliseconds: 0, status: nil, error: Self.interruptedAttempt))
                claimed.append(ClaimedDelivery(record: row, secret: subscription.secret, token: subscription.token, claimedAt: stamp))
            }
            return claimed
        }
    }

    /// Records an attempt of claimed deliveries: delivered, retried after the policy's back-off, or given up once the
    /// retry window is over. Answers how many were given up.
    @discardableResult
    public func recordDeliveryAttempts(_ attempts: [(ClaimedDelivery, DeliveryOutcome)], policy: DeliveryPolicy) throws -> Int {
        let stamp = now().timeIntervalSince1970
        return try store.write { tx in
            var gaveUp = 0
            for (claim, outcome) in attempts {
                var row = claim.record
                guard outcome.attempted else {
                    // Due again at once; the failed one before it keeps it back until that one is delivered or given up.
                    try tx.deleteDeliveryAttempt(deliveryId: row.id, attempt: row.attempts)
                    row.attempts -= 1
                    row.nextAttempt = stamp
                    try tx.updateDelivery(row)
                    continue
                }
                try tx.insertDeliveryAttempt(
                    DeliveryAttemptRecord(
                        deliveryId: row.id, attempt: row.attempts, time: claim.claimedAt,
                        milliseconds: outcome.milliseconds, status: outcome.status, error: outcome.error.map { String($0.prefix(500)) }))
                if outcome.delivered {
                    row.state = "delivered"
                    row.lastError = nil
                } else {
                    let what = outcome.error ?? "the receiver answered \(outcome.status ?? 0)"
                    if stamp - row.created >= policy.retryWindow {
                        row.state = "failed"
                        row.lastError = "Gave up after \(row.attempts) attempts over \(Int(stamp - row.created)) s: \(what.prefix(400))"
                        gaveUp += 1
                    } else {
                        row.nextAttempt = stamp + policy.delay(afterAttempts: row.attempts)
                        row.lastError = String(what.prefix(500))
                    }
                }
                try tx.updateDelivery(row)
            }
            return gaveUp
        }
    }

    /// How many deliveries are pending, delivered and failed (for `/metrics`).
    public func deliveryStateCounts() throws -> [String: Int] { try store.read { tx in try tx.deliveryStateCounts() } }
}
