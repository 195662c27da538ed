import AsyncHTTPClient
import ControlPlane
import Crypto
import DeployModel
import Foundation
import NIOCore
import NIOHTTP1

/// Delivers what triggers and `Publish` queued (the control plane's deliveries outbox) to HTTP(S) subscriptions:
/// claims due deliveries, POSTs each as SNS's HTTP envelope with SNS's headers and a Standard Webhooks signature,
/// and records every attempt; the control plane decides the retries. Requests run outside any transaction and each
/// has the policy's timeout, so a slow or dead receiver delays only its own deliveries, never a deployment.
///
/// A subscription's deliveries arrive in the order they were published (the control plane claims them so, and they
/// are sent one after another); different subscriptions are served at once.
///
/// A delivery claimed and not recorded (the process was killed mid-attempt) comes due again when its claim's lease
/// ends; the receiver may then get it twice, with the same `MessageId` and `webhook-id` (at least once, as SNS).
public final class NotificationDeliverer: Sendable {
    public let policy: DeliveryPolicy
    /// How many deliveries one round claims and sends at once.
    public let batch: Int
    /// Where a `SubscriptionConfirmation`'s `SubscribeURL` points (the server's URL, known once it listens), if anywhere.
    let confirmationBase: @Sendable () -> String?
    let hasDue: @Sendable () async throws -> Bool
    let claim: @Sendable (Int) async throws -> [ClaimedDelivery]
    let record: @Sendable ([(ClaimedDelivery, DeliveryOutcome)]) async throws -> Void
    let client: HTTPClient

    /// A deliverer over the given calls, run where the caller wants blocking store work to run. Call ``shutdown()``
    /// when done.
    public init(
        policy: DeliveryPolicy, batch: Int = 64, confirmationBase: @escaping @Sendable () -> String?,
        hasDue: @escaping @Sendable () async throws -> Bool,
        claim: @escaping @Sendable (Int) async throws -> [ClaimedDelivery],
        record: @escaping @Sendable ([(ClaimedDelivery, DeliveryOutcome)]) async throws -> Void
    ) {
        self.policy = policy
        self.batch = batch
        self.confirmationBase = confirmationBase
        self.hasDue = hasDue
        self.claim = claim
        self.record = record
        // Redirects are answers, not instructions (Standard Webhooks: a 3xx is a failure).
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 16)
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// A deliverer that calls the control plane on the caller's threads (a CLI process on a state file).
    public convenience init(plane: ControlPlane, policy: DeliveryPolicy = DeliveryPolicy()) {
        self.init(
            policy: policy, confirmationBase: { nil }, hasDue: { try plane.hasDueDeliveries() },
            claim: { try plane.claimDeliveries(limit: $0, policy: policy) },
            record: { try plane.recordDeliveryAttempts($0, policy: policy) })
    }

    public func shutdown() async { try? await client.shutdown() }

    /// Delivers until cancelled, looking for due deliveries every `interval`; `attempted` sees each round's outcomes.
    public func run(interval: Duration = .milliseconds(500), attempted: @escaping @Sendable ([(ClaimedDelivery, DeliveryOutcome)]) -> Void) async {
        while !Task.isCancelled {
            let outcomes = (try? await deliverDue()) ?? []
            if !outcomes.isEmpty { attempted(outcomes) }
            // A full round may have left more behind: look again at once.
            if outcomes.count >= batch { continue }
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
        }
    }

    /// One round: claims what is due (up to `batch`), sends it all at once, records the outcomes.
    public func deliverDue() async throws -> [(ClaimedDelivery, DeliveryOutcome)] {
        guard try await hasDue() else { return [] }
        let claimed = try await claim(batch)
        if claimed.isEmpty { return [] }
        // Each subscription's deliveries in order, one after another (the first failure keeps the rest back);
        // subscriptions at once.
        var queues: [String: [ClaimedDelivery]] = [:]
        for delivery in claimed { queues[delivery.record.subscriptionArn, default: []].append(delivery) }
        let outcomes = await withTaskGroup(of: [(ClaimedDelivery, DeliveryOutcome)].self) { group in
            for queue in queues.values {
                group.addTask {
                    var results: [(ClaimedDelivery, DeliveryOutcome)] = []
                    var failed = false
                    for delivery in queue {
                        let outcome = failed ? DeliveryOutcome.notAttempted : await self.send(delivery)
                        failed = failed || !outcome.delivered
                        results.append((delivery, outcome))
                    }
                    return results
                }
            }
            var all: [(ClaimedDelivery, DeliveryOutcome)] = []
            for await results in group { all += results }
            return all
        }
        try await record(outcomes)
        return outcomes
    }

    /// One attempt: POST, read at most 64 KiB of the answer, within the policy's timeout.
    func send(_ delivery: ClaimedDelivery) async -> DeliveryOutcome {
        let started = ContinuousClock.now
        func elapsed() -> Int {
            let duration = ContinuousClock.now - started
            return Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
        }
        let message = SNSEnvelope(delivery: delivery, confirmationBase: confirmationBase())
        var request = HTTPClientRequest(url: delivery.record.endpoint)
        request.method = .POST
        for (name, value) in message.headers(timestamp: Int(Date().timeIntervalSince1970)) { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: message.body))
        do {
            let response = try await client.execute(request, timeout: .milliseconds(Int64(policy.attemptTimeout * 1000)))
            _ = try await response.body.collect(upTo: 64 << 10)
            return DeliveryOutcome(status: Int(response.status.code), error: nil, milliseconds: elapsed())
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            return DeliveryOutcome(status: nil, error: "no answer within \(policy.attemptTimeout) s", milliseconds: elapsed())
        } catch {
            return DeliveryOutcome(status: nil, error: "\(error)", milliseconds: elapsed())
        }
    }
}

/// SNS's HTTP(S) message for one delivery: the JSON body (SNS's member order) and SNS's headers, plus the Standard
/// Webhooks headers (`webhook-id` is the `MessageId`, the same on every attempt; `webhook-signature` is
/// `v1,<base64 HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>`). SNS's own RSA `Signature` cannot be made without
/// AWS's key, so `SignatureVersion`, `Signature` and `SigningCertURL` are left out.
public struct SNSEnvelope: Sendable {
    public let delivery: ClaimedDelivery
    public let body: [UInt8]

    public init(delivery: ClaimedDelivery, confirmationBase: String?) {
        self.delivery = delivery
        let row = delivery.record
        var members: [(String, JSONValue)] = [("Type", .string(row.type)), ("MessageId", .string(row.messageId))]
        if row.type == "SubscriptionConfirmation" {
            members.append(("Token", .string(delivery.token)))
            members.append(("TopicArn", .string(row.topicArn)))
            members.append(("Message", .string(row.message)))
            var url = URLComponents(string: (confirmationBase ?? "") + "/")
            url?.queryItems = [
                URLQueryItem(name: "Action", value: "ConfirmSubscription"), URLQueryItem(name: "TopicArn", value: row.topicArn),
                URLQueryItem(name: "Token", value: delivery.token),
            ]
            // On a state file there is no server to visit: confirm with deployctl sns confirm-subscription and the Token.
            if confirmationBase != nil, let link = url?.string { members.append(("SubscribeURL", .string(link))) }
        } else {
            members.append(("TopicArn", .string(row.topicArn)))
            if let subject = row.subject { members.append(("Subject", .string(subject))) }
            members.append(("Message", .string(row.message)))
        }
        members.append(("Timestamp", .string(Self.timestamp(row.created))))
        self.body = Array(JSONValue.members(members).compact().utf8)
    }

    /// ISO 8601 in UTC with milliseconds, as SNS writes `Timestamp`.
    static func timestamp(_ seconds: Double) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }

    public func headers(timestamp: Int) -> [(String, String)] {
        let row = delivery.record
        var headers = [
            ("Content-Type", "text/plain; charset=UTF-8"), ("User-Agent", "deployctl (Amazon Simple Notification Service Agent)"),
            ("x-amz-sns-message-type", row.type), ("x-amz-sns-message-id", row.messageId), ("x-amz-sns-topic-arn", row.topicArn),
        ]
        if row.type == "Notification" { headers.append(("x-amz-sns-subscription-arn", row.subscriptionArn)) }
        headers += [
            ("webhook-id", row.messageId), ("webhook-timestamp", String(timestamp)),
            ("webhook-signature", Self.signature(secret: delivery.secret, id: row.messageId, timestamp: timestamp, body: body)),
        ]
        return headers
    }

    /// Standard Webhooks' `v1,<base64 HMAC-SHA256>` over `<id>.<timestamp>.<body>`, keyed by the base64 after `whsec_`.
    public static func signature(secret: String, id: String, timestamp: Int, body: [UInt8]) -> String {
        let encoded = secret.hasPrefix("whsec_") ? String(secret.dropFirst(6)) : secret
        let key = SymmetricKey(data: Data(base64Encoded: encoded) ?? Data(encoded.utf8))
        var signed = Array("\(id).\(timestamp).".utf8)
        signed += body
        let mac = HMAC<SHA256>.authenticationCode(for: signed, using: key)
        return "v1," + Data(mac).base64EncodedString()
    }
}
