import Foundation

/// A subscription as SNS's `ListSubscriptionsByTopic` shows it; `SubscriptionArn` is `PendingConfirmation` until the
/// receiver confirms.
public struct SubscriptionSummary: Codable, Sendable, Equatable {
    public var subscriptionArn: String
    public var owner: String
    public var protocolName: String
    public var endpoint: String
    public var topicArn: String

    public init(subscriptionArn: String, owner: String, protocolName: String, endpoint: String, topicArn: String) {
        self.subscriptionArn = subscriptionArn
        self.owner = owner
        self.protocolName = protocolName
        self.endpoint = endpoint
        self.topicArn = topicArn
    }

    enum CodingKeys: String, CodingKey {
        case subscriptionArn = "SubscriptionArn", owner = "Owner", protocolName = "Protocol", endpoint = "Endpoint", topicArn = "TopicArn"
    }
}

/// What `Subscribe` answers: SNS's `SubscriptionArn` (`pending confirmation` for an HTTP endpoint, as SNS says), and
/// deployctl's addition, the secret deliveries are signed with (Standard Webhooks), shown this once.
public struct SubscribeResult: Codable, Sendable, Equatable {
    public var subscriptionArn: String
    public var signingSecret: String?

    public init(subscriptionArn: String, signingSecret: String?) {
        self.subscriptionArn = subscriptionArn
        self.signingSecret = signingSecret
    }

    enum CodingKeys: String, CodingKey {
        case subscriptionArn = "SubscriptionArn", signingSecret = "SigningSecret"
    }
}

/// One attempt at a delivery.
public struct DeliveryAttempt: Codable, Sendable, Equatable {
    public var attempt: Int
    public var time: Date
    public var milliseconds: Int
    public var statusCode: Int?
    public var error: String?

    public init(attempt: Int, time: Date, milliseconds: Int, statusCode: Int?, error: String?) {
        self.attempt = attempt
        self.time = time
        self.milliseconds = milliseconds
        self.statusCode = statusCode
        self.error = error
    }

    enum CodingKeys: String, CodingKey {
        case attempt = "Attempt", time = "Time", milliseconds = "Milliseconds", statusCode = "StatusCode", error = "Error"
    }
}

/// A message on its way to one subscription, with every attempt (`deployctl sns list-deliveries`).
public struct DeliverySummary: Codable, Sendable, Equatable {
    public var deliveryId: Int64
    public var messageId: String
    public var type: String
    public var topicArn: String
    public var subscriptionArn: String?
    public var endpoint: String?
    public var subject: String?
    /// A trigger's name, or `Publish`.
    public var origin: String
    public var deploymentId: String?
    /// `pending`, `delivered` or `failed` (given up, or nowhere to go).
    public var state: String
    public var publishedAt: Date
    public var nextAttemptAt: Date?
    public var lastError: String?
    public var attempts: [DeliveryAttempt]

    public init(
        deliveryId: Int64, messageId: String, type: String, topicArn: String, subscriptionArn: String?, endpoint: String?, subject: String?,
        origin: String, deploymentId: String?, state: String, publishedAt: Date, nextAttemptAt: Date?, lastError: String?,
        attempts: [DeliveryAttempt]
    ) {
        self.deliveryId = deliveryId
        self.messageId = messageId
        self.type = type
        self.topicArn = topicArn
        self.subscriptionArn = subscriptionArn
        self.endpoint = endpoint
        self.subject = subject
        self.origin = origin
        self.deploymentId = deploymentId
        self.state = state
        self.publishedAt = publishedAt
        self.nextAttemptAt = nextAttemptAt
        self.lastError = lastError
        self.attempts = attempts
    }

    enum CodingKeys: String, CodingKey {
        case deliveryId = "DeliveryId", messageId = "MessageId", type = "Type", topicArn = "TopicArn", subscriptionArn = "SubscriptionArn"
        case endpoint = "Endpoint", subject = "Subject", origin = "Origin", deploymentId = "DeploymentId", state = "State"
        case publishedAt = "PublishedAt", nextAttemptAt = "NextAttemptAt", lastError = "LastError", attempts = "Attempts"
    }
}

/// Which deliveries `list-deliveries` shows: newest first, before `nextToken` (a delivery id), filtered.
public struct DeliveryQuery: Codable, Sendable, Equatable {
    public var state: String?
    public var topicArn: String?
    public var deploymentId: String?
    public var nextToken: String?
    public var maxItems: Int?

    public init(state: String? = nil, topicArn: String? = nil, deploymentId: String? = nil, nextToken: String? = nil, maxItems: Int? = nil) {
        self.state = state
        self.topicArn = topicArn
        self.deploymentId = deploymentId
        self.nextToken = nextToken
        self.maxItems = maxItems
    }

    enum CodingKeys: String, CodingKey {
        case state = "State", topicArn = "TopicArn", deploymentId = "DeploymentId", nextToken = "NextToken", maxItems = "MaxItems"
    }
}

/// A page of deliveries.
public struct ListDeliveriesOutput: Codable, Sendable, Equatable {
    public var deliveries: [DeliverySummary]
    public var nextToken: String?

    public init(deliveries: [DeliverySummary], nextToken: String?) {
        self.deliveries = deliveries
        self.nextToken = nextToken
    }

    enum CodingKeys: String, CodingKey {
        case deliveries = "Deliveries", nextToken = "NextToken"
    }
}

/// SNS's topic and subscription operations that triggers need (SNS's names and errors: `NotFound`,
/// `InvalidParameter`), plus the deliveries' record: the control plane on a state file, or a server.
public protocol TopicRegistry: Sendable {
    /// Answers the topic's ARN; creating a topic that exists answers it again (as SNS does).
    func createTopic(name: String) async throws -> String
    func deleteTopic(arn: String) async throws
    func listTopics() async throws -> [String]
    /// An `http` or `https` endpoint; a `signingSecret` of the caller's own (`whsec_<base64>`) or nil for a new one.
    func subscribe(topicArn: String, protocolName: String, endpoint: String, signingSecret: String?, owner: String) async throws
        -> SubscribeResult
    /// Answers the subscription's ARN.
    func confirmSubscription(topicArn: String, token: String) async throws -> String
    func unsubscribe(subscriptionArn: String) async throws
    func listSubscriptionsByTopic(topicArn: String) async throws -> [SubscriptionSummary]
    /// Answers the message id.
    func publish(topicArn: String, message: String, subject: String?) async throws -> String
    func listDeliveries(_ query: DeliveryQuery) async throws -> ListDeliveriesOutput
}
