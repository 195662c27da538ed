import ControlPlane
import DeployModel
import Foundation

/// deployctl's JSON face of SNS's topic operations (`deployctl sns … --endpoint-url`), SNS's member names, beside
/// the Query API that `aws sns` speaks (SNSRoutes); both run the same control-plane calls.
extension DeployctlOperation {
    static let topicOperations = [
        createTopic, deleteTopic, listTopics, subscribe, confirmSubscription, unsubscribe, listSubscriptionsByTopic, publish, listDeliveries,
    ]

    static func member(_ input: JSONValue, _ name: String) throws(OperationRefusal) -> String {
        guard let value = input[name]?.stringValue, !value.isEmpty else {
            throw OperationRefusal(code: "InvalidParameter", message: "Invalid parameter: \(name) is required")
        }
        return value
    }

    static let createTopic = DeployctlOperation(name: "CreateTopic") { responder, input throws(OperationRefusal) in
        let name = try member(input, "Name")
        let arn = try await storeWork { try await responder.onWriter { try $0.createTopicNow(name: name) } }
        return .members([("TopicArn", .string(arn))])
    }

    static let deleteTopic = DeployctlOperation(name: "DeleteTopic") { responder, input throws(OperationRefusal) in
        let arn = try member(input, "TopicArn")
        try await storeWork { try await responder.onWriter { try $0.deleteTopicNow(arn: arn) } }
        return .object([])
    }

    static let listTopics = DeployctlOperation(name: "ListTopics") { responder, _ throws(OperationRefusal) in
        let arns = try await storeWork { try await responder.onReaders { try $0.listTopicsNow() } }
        return .members([("Topics", .array(arns.map { .members([("TopicArn", .string($0))]) }))])
    }

    static let subscribe = DeployctlOperation(name: "Subscribe") { responder, input throws(OperationRefusal) in
        let (topic, protocolName, endpoint) = (try member(input, "TopicArn"), try member(input, "Protocol"), try member(input, "Endpoint"))
        let secret = input["SigningSecret"]?.stringValue
        let account = responder.plane.account
        let result = try await storeWork {
            try await responder.onWriter {
                try $0.subscribeNow(topicArn: topic, protocolName: protocolName, endpoint: endpoint, signingSecret: secret, owner: account)
            }
        }
        return try await storeWork { try JSONValueEncoder().encode(result) }
    }

    static let confirmSubscription = DeployctlOperation(name: "ConfirmSubscription") { responder, input throws(OperationRefusal) in
        let (topic, token) = (try member(input, "TopicArn"), try member(input, "Token"))
        let arn = try await storeWork { try await responder.onWriter { try $0.confirmSubscriptionNow(topicArn: topic, token: token) } }
        return .members([("SubscriptionArn", .string(arn))])
    }

    static let unsubscribe = DeployctlOperation(name: "Unsubscribe") { responder, input throws(OperationRefusal) in
        let arn = try member(input, "SubscriptionArn")
        try await storeWork { try await responder.onWriter { try $0.unsubscribeNow(subscriptionArn: arn) } }
        return .object([])
    }

    static let listSubscriptionsByTopic = DeployctlOperation(name: "ListSubscriptionsByTopic") { responder, input throws(OperationRefusal) in
        let topic = try member(input, "TopicArn")
        return try await storeWork {
            let found = try await responder.onReaders { try $0.listSubscriptionsByTopicNow(topicArn: topic) }
            return .members([("Subscriptions", try JSONValueEncoder().encode(found))])
        }
    }

    static let publish = DeployctlOperation(name: "Publish") { responder, input throws(OperationRefusal) in
        let (topic, message, subject) = (try member(input, "TopicArn"), try member(input, "Message"), input["Subject"]?.stringValue)
        let id = try await storeWork { try await responder.onWriter { try $0.publishNow(topicArn: topic, message: message, subject: subject) } }
        return .members([("MessageId", .string(id))])
    }

    static let listDeliveries = DeployctlOperation(name: "ListDeliveries") { responder, input throws(OperationRefusal) in
        let query: DeliveryQuery
        do {
            query = try JSONValueDecoder().decode(DeliveryQuery.self, from: input)
        } catch {
            throw OperationRefusal(
                code: "InvalidParameter", message: "ListDeliveries takes State, TopicArn, DeploymentId, NextToken, MaxItems: \(error)")
        }
        return try await storeWork {
            try JSONValueEncoder().encode(try await responder.onReaders { try $0.listDeliveriesNow(query) })
        }
    }
}
