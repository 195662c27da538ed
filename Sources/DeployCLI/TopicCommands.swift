import ArgumentParser
import ControlPlane
import DeployModel
import Foundation
import TopicDelivery

/// `deployctl sns`: the SNS operations triggers need, with `aws sns`'s flags and SNS's member names, on the state
/// file or a server (`--endpoint-url`; the server also speaks SNS's own protocol to `aws sns` and boto3).
struct TopicGroupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sns", _superCommandName: "deployctl",
        abstract: "Topics and HTTP(S) subscriptions that triggers notify, as aws sns makes them (deployctl extension).",
        discussion: """
            A deployment group's triggerConfigurations name SNS topic ARNs (arn:aws:sns:REGION:ACCOUNT:NAME); each \
            notification goes to every confirmed subscription of its topic as SNS's HTTP message (Type, MessageId, \
            TopicArn, Subject, Message, Timestamp) with Standard Webhooks headers (webhook-id, webhook-timestamp, \
            webhook-signature) signed with the subscription's secret, printed once by subscribe. Failed deliveries are \
            retried with exponential back-off for an hour; list-deliveries shows every attempt.

            Example:
              deployctl sns create-topic --name deploys
              deployctl sns subscribe --topic-arn arn:aws:sns:local:000000000000:deploys --protocol https \\
                  --notification-endpoint https://hooks.example.com/deploys
            """,
        subcommands: [
            CreateTopic.self, DeleteTopic.self, ListTopics.self, Subscribe.self, ConfirmSubscription.self, Unsubscribe.self,
            ListSubscriptionsByTopic.self, Publish.self, ListDeliveries.self, Deliver.self,
        ])

    /// Prints `value` as the other commands print their answers (`--output`, `--query`).
    static func print(_ value: JSONValue, _ global: GlobalOptions, operation: String) throws {
        try StandardStreams.out(try global.render(value, operation: operation))
    }

    struct CreateTopic: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create-topic", _superCommandName: "deployctl sns",
            abstract: "Make a topic (or answer the ARN of the one that exists): {\"TopicArn\": ...}.")
        @Option(name: .customLong("name"), help: ArgumentHelp("1-256 letters, digits, hyphens and underscores.", valueName: "name"))
        var name: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let registry = try global.openTopicRegistry()
            let arn = try await CLIFailure.calling("CreateTopic") { try await registry.createTopic(name: name) }
            try TopicGroupCommand.print(.members([("TopicArn", .string(arn))]), global, operation: "CreateTopic")
        }
    }

    struct DeleteTopic: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "delete-topic", _superCommandName: "deployctl sns",
            abstract: "Delete a topic and its subscriptions (a topic that does not exist is not an error).")
        @Option(name: .customLong("topic-arn"), help: ArgumentHelp("The topic.", valueName: "arn")) var topicArn: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let registry = try global.openTopicRegistry()
            try await CLIFailure.calling("DeleteTopic") { try await registry.deleteTopic(arn: topicArn) }
        }
    }

    struct ListTopics: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list-topics", _superCommandName: "deployctl sns", abstract: "List topics: {\"Topics\": [{\"TopicArn\": ...}]}.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let registry = try global.openTopicRegistry(readOnly: true)
            let arns = try await CLIFailure.calling("ListTopics") { try await registry.listTopics() }
            try TopicGroupCommand.print(
                .members([("Topics", .array(arns.map { .members([("TopicArn", .string($0))]) }))]), global, operation: "ListTopics")
        }
    }

    struct Subscribe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "subscribe", _superCommandName: "deployctl sns",
            abstract: "Subscribe an HTTP(S) endpoint to a topic; prints the signing secret once.",
            discussion: """
                The endpoint first gets SNS's SubscriptionConfirmation: from a server, its SubscribeURL confirms; on a state \
                file, run confirm-subscription with the Token it carries. Notifications go to confirmed subscriptions only. \
                Prints {"SubscriptionArn": "pending confirmation", "SigningSecret": "whsec_..."}: keep the secret, it is not \
                shown again (deliveries' webhook-signature is made with it).
                """)
        @Option(name: .customLong("topic-arn"), help: ArgumentHelp("The topic.", valueName: "arn")) var topicArn: String
        @Option(name: .customLong("protocol"), help: ArgumentHelp("http or https.", valueName: "protocol")) var protocolName: String
        @Option(name: .customLong("notification-endpoint"), help: ArgumentHelp("The receiver's URL.", valueName: "url")) var endpoint: String
        @Option(
            name: .customLong("signing-secret"),
            help: ArgumentHelp("Sign with this secret (whsec_ and base64 of 24-64 bytes) instead of a new one.", valueName: "secret"))
        var signingSecret: String?
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let registry = try global.openTopicRegistry()
            let result = try await CLIFailure.calling("Subscribe") {
                try await registry.subscribe(
                    topicArn: topicArn, protocolName: protocolName, endpoint: endpoint, signingSecret: signingSecret, owner: "")
            }
            try TopicGroupCommand.print(try JSONValueEncoder().encode(result), global, operation: "Subscribe")
        }
    }

    struct ConfirmSubscription: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "confirm-subscription", _superCommandName: "deployctl sns",
            abstract: "Confirm a subscription with the Token its SubscriptionConfirmation carried.")
        @Option(name: .customLong("topic-arn"), help: ArgumentHelp("The topic.", valueName: "arn")) var topicArn: String
        @Option(name: .customLong("token"), help: ArgumentHelp("The confirmation's Token.", valueName: "token")) var token: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let registry = try global.openTopicRegistry()
            let arn = try await CLIFailure.calling("ConfirmSubscription") { try await registry.confirmSubscription(topicArn: topicArn, token: token) }
            try TopicGroupCommand.print(.members([("SubscriptionArn", .string(arn))]), global, operation: "ConfirmSubscription")
        }
    }

    struct Unsubscribe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "unsubscribe", _superCommandName: "deployctl sns", abstract: "Remove a subscription; its pending deliveries fail.")
        @Option(name: .customLong("subscription-arn"), help: ArgumentHelp("The subscription.", valueName: "arn")) var subscriptionArn: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let registry = try global.openTopicRegistry()
            try await CLIFailure.calling("Unsubscribe") { try await registry.unsubscribe(subscriptionArn: subscriptionArn) }
        }
    }

    struct ListSubscriptionsByTopic: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list-subscriptions-by-topic", _superCommandName: "deployctl sns",
            abstract: "List a topic's subscriptions (SubscriptionArn is PendingConfirmation until confirmed).")
        @Option(name: .customLong("topic-arn"), help: ArgumentHelp("The topic.", valueName: "arn")) var topicArn: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let registry = try global.openTopicRegistry(readOnly: true)
            let found = try await CLIFailure.calling("ListSubscriptionsByTopic") { try await registry.listSubscriptionsByTopic(topicArn: topicArn) }
            try TopicGroupCommand.print(
                .members([("Subscriptions", try JSONValueEncoder().encode(found))]), global, operation: "ListSubscriptionsByTopic")
        }
    }

    struct Publish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "publish", _superCommandName: "deployctl sns", abstract: "Send a message to a topic's subscriptions: {\"MessageId\": ...}.")
        @Option(name: .customLong("topic-arn"), help: ArgumentHelp("The topic.", valueName: "arn")) var topicArn: String
        @Option(name: .customLong("message"), help: ArgumentHelp("The message (at most 256 KiB).", valueName: "text")) var message: String
        @Option(name: .customLong("subject"), help: ArgumentHelp("A subject (1-100 printable ASCII characters).", valueName: "text"))
        var subject: String?
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let registry = try global.openTopicRegistry()
            let id = try await CLIFailure.calling("Publish") { try await registry.publish(topicArn: topicArn, message: message, subject: subject) }
            try TopicGroupCommand.print(.members([("MessageId", .string(id))]), global, operation: "Publish")
        }
    }

    struct ListDeliveries: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list-deliveries", _superCommandName: "deployctl sns",
            abstract: "Show deliveries, newest first, with every attempt (deployctl's own).",
            discussion: """
                State is pending (due at NextAttemptAt), delivered, or failed (given up after the retry window, its \
                subscription gone, or its topic never existed: LastError says which).
                """)
        @Option(
            name: .customLong("delivery-state"),
            help: ArgumentHelp("Only deliveries in this state: pending, delivered or failed.", valueName: "state"))
        var state: String?
        @Option(name: .customLong("topic-arn"), help: ArgumentHelp("Only this topic's.", valueName: "arn")) var topicArn: String?
        @Option(name: .customLong("deployment-id"), help: ArgumentHelp("Only this deployment's triggers.", valueName: "id")) var deploymentId: String?
        @Option(name: .customLong("max-items"), help: ArgumentHelp("At most this many (1-1000, default 100).", valueName: "count")) var maxItems: Int?
        @Option(name: .customLong("starting-token"), help: ArgumentHelp("The NextToken of an earlier page.", valueName: "token"))
        var startingToken: String?
        @OptionGroup var global: GlobalOptions

        func validate() throws {
            if let state, !["pending", "delivered", "failed"].contains(state) {
                throw ValidationError("--delivery-state must be pending, delivered or failed.")
            }
            if let maxItems { try NumberRange.check("--max-items", Double(maxItems), 1...1000) }
        }

        func run() async throws {
            let registry = try global.openTopicRegistry(readOnly: true)
            let query = DeliveryQuery(state: state, topicArn: topicArn, deploymentId: deploymentId, nextToken: startingToken, maxItems: maxItems)
            let page = try await CLIFailure.calling("ListDeliveries") { try await registry.listDeliveries(query) }
            try TopicGroupCommand.print(try JSONValueEncoder(dateEncoding: .display).encode(page), global, operation: "ListDeliveries")
        }
    }

    struct Deliver: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "deliver", _superCommandName: "deployctl sns",
            abstract: "Deliver what is due from the state file, then exit (or keep going with --follow).",
            discussion: """
                deployctl server delivers by itself. On a state file, deliveries are made by the process that --waits for a \
                deployment and by deployctl agent run between its polls; this command is for the rest (a cron job, a \
                systemd timer, or --follow as a service). Prints {"Attempted": N, "Delivered": N}.
                """)
        @Flag(name: .customLong("follow"), help: "Keep delivering until interrupted.") var follow = false
        @Option(
            name: .customLong("delivery-timeout"), help: ArgumentHelp("Seconds a receiver has to answer (1-120, default 10).", valueName: "seconds"))
        var timeout: Double = 10
        @OptionGroup var global: GlobalOptions

        func validate() throws { try NumberRange.check("--delivery-timeout", timeout, 1...120) }

        func run() async throws {
            _ = try global.destination(for: .stateFileOnly(command: "deployctl sns deliver"))
            let plane = try global.openStore()
            let deliverer = NotificationDeliverer(plane: plane, policy: DeliveryPolicy(attemptTimeout: timeout))
            var attempted = 0
            var delivered = 0
            do {
                repeat {
                    let outcomes = try await deliverer.deliverDue()
                    attempted += outcomes.count
                    delivered += outcomes.filter { $0.1.delivered }.count
                    if outcomes.count < deliverer.batch {
                        if !follow { break }
                        try await Task.sleep(for: .milliseconds(500))
                    }
                } while !Task.isCancelled
            } catch {
                await deliverer.shutdown()
                throw CLIFailure.other("deployctl sns deliver: \(error)")
            }
            await deliverer.shutdown()
            try TopicGroupCommand.print(
                .members([("Attempted", .int(attempted)), ("Delivered", .int(delivered))]), global, operation: "Deliver")
        }
    }
}
