/// An SNS-style topic that triggers (`triggerTargetArn`) and `Publish` send to.
public struct TopicRecord: Sendable, Equatable {
    public var arn: String
    public var name: String
    /// Seconds since 1970.
    public var created: Double

    public init(arn: String, name: String, created: Double) {
        self.arn = arn
        self.name = name
        self.created = created
    }
}

/// An HTTP(S) subscription to a topic: pending until the receiver confirms it with the token its
/// `SubscriptionConfirmation` carried; notifications go to confirmed ones only, signed with `secret`.
public struct SubscriptionRecord: Sendable, Equatable {
    public var arn: String
    public var topicArn: String
    /// `http` or `https`.
    public var protocolName: String
    public var endpoint: String
    public var confirmed: Bool
    /// What ConfirmSubscription must be given (hex, random).
    public var token: String
    /// The Standard Webhooks signing secret (`whsec_<base64>`).
    public var secret: String
    public var owner: String
    public var created: Double

    public init(
        arn: String, topicArn: String, protocolName: String, endpoint: String, confirmed: Bool, token: String, secret: String, owner: String,
        created: Double
    ) {
        self.arn = arn
        self.topicArn = topicArn
        self.protocolName = protocolName
        self.endpoint = endpoint
        self.confirmed = confirmed
        self.token = token
        self.secret = secret
        self.owner = owner
        self.created = created
    }
}

/// One message on its way to one subscription (an outbox row, written in the transaction that published it), with
/// where its delivery stands. A message published to a topic that does not exist is recorded as `failed` with no
/// subscription, so the failure is visible.
public struct DeliveryRecord: Sendable, Equatable {
    /// Given by the store (0 before it is inserted); deliveries are listed by it.
    public var id: Int64
    /// SNS's `MessageId`: the same on every attempt and for every subscription of one publish (the idempotency id).
    public var messageId: String
    /// `Notification` or `SubscriptionConfirmation`.
    public var type: String
    public var topicArn: String
    public var subscriptionArn: String
    public var endpoint: String
    public var subject: String?
    public var message: String
    /// When it was published (seconds since 1970): the envelope's `Timestamp`, and where the retry window starts.
    public var created: Double
    /// `pending`, `delivered` or `failed` (given up).
    public var state: String
    public var attempts: Int
    /// When it is due (a claimed delivery is pushed past its attempt's timeout, so a killed deliverer's row comes due again).
    public var nextAttempt: Double
    public var lastError: String?
    /// What sent it: a trigger's name, or `Publish`.
    public var origin: String
    public var deploymentId: String?

    public init(
        id: Int64 = 0, messageId: String, type: String, topicArn: String, subscriptionArn: String, endpoint: String, subject: String?,
        message: String,
        created: Double, state: String, attempts: Int = 0, nextAttempt: Double, lastError: String? = nil, origin: String, deploymentId: String?
    ) {
        self.id = id
        self.messageId = messageId
        self.type = type
        self.topicArn = topicArn
        self.subscriptionArn = subscriptionArn
        self.endpoint = endpoint
        self.subject = subject
        self.message = message
        self.created = created
        self.state = state
        self.attempts = attempts
        self.nextAttempt = nextAttempt
        self.lastError = lastError
        self.origin = origin
        self.deploymentId = deploymentId
    }
}

/// One attempt at a delivery: when, how long, and what the receiver answered (or why there was no answer).
public struct DeliveryAttemptRecord: Sendable, Equatable {
    public var deliveryId: Int64
    public var attempt: Int
    public var time: Double
    public var milliseconds: Int
    /// The HTTP status, when there was an answer.
    public var status: Int?
    public var error: String?

    public init(deliveryId: Int64, attempt: Int, time: Double, milliseconds: Int, status: Int?, error: String?) {
        self.deliveryId = deliveryId
        self.attempt = attempt
        self.time = time
        self.milliseconds = milliseconds
        self.status = status
        self.error = error
    }
}

/// Which deliveries to list: newest first, before an id (pagination), in a state, of a topic or a deployment.
public struct DeliveryFilter: Sendable, Equatable {
    public var before: Int64?
    public var state: String?
    public var topicArn: String?
    public var deploymentId: String?
    public var limit: Int

    public init(before: Int64? = nil, state: String? = nil, topicArn: String? = nil, deploymentId: String? = nil, limit: Int = 100) {
        self.before = before
        self.state = state
        self.topicArn = topicArn
        self.deploymentId = deploymentId
        self.limit = limit
    }
}
