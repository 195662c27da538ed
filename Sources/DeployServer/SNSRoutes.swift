import AWSWire
import ControlPlane
import DeployModel
import Foundation
import Hummingbird
import NIOCore

/// SNS's Query API, the subset triggers need (`aws sns … --endpoint-url`, boto3): `POST /` with a form body whose
/// `Action` names the operation, signed with SigV4 for service `sns`; answers are SNS's XML. One more route is not
/// signed: the `SubscribeURL` a `SubscriptionConfirmation` carries (`GET /?Action=ConfirmSubscription&TopicArn=…&Token=…`),
/// which the random token authenticates, as SNS's does.
struct SNSRoutes {
    static let namespace = "http://sns.amazonaws.com/doc/2010-03-31/"
    static let actions: Set<String> = [
        "CreateTopic", "DeleteTopic", "ListTopics", "Subscribe", "ConfirmSubscription", "Unsubscribe", "ListSubscriptionsByTopic", "Publish",
    ]
    /// A Publish of 256 KiB, percent-encoded, fits.
    static let maxBodyBytes = 1 << 20

    let responder: ServerResponder
    let requestId: String

    /// Whether a request is for SNS: a form POST to `/` without `X-Amz-Target`, or the confirmation link.
    static func matches(_ wire: WireRequest) -> Bool {
        guard wire.path == "/", wire.header("x-amz-target") == nil else { return false }
        if wire.method == "POST" { return wire.header("content-type")?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true }
        return wire.method == "GET" && wire.parameters["Action"] == "ConfirmSubscription"
    }

    /// The form's fields, decoded.
    static func form(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for part in text.split(separator: "&", omittingEmptySubsequences: true) {
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decoded(_ piece: Substring) -> String {
                String(piece).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(piece)
            }
            fields[decoded(pieces[0])] = pieces.count > 1 ? decoded(pieces[1]) : ""
        }
        return fields
    }

    func handle(_ request: Request, _ wire: WireRequest, keyId: inout String) async -> WireResponse {
        if wire.method == "GET" {
            return await run("ConfirmSubscription", wire.parameters, role: nil)
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: Self.maxBodyBytes)
        } catch {
            return failure("Unknown", 413, "RequestEntityTooLarge", "The request body is larger than \(Self.maxBodyBytes) bytes.")
        }
        let bytes = Data(body.readableBytesView)
        let fields = Self.form(String(decoding: bytes, as: UTF8.self))
        // The label is from the fixed table: nothing unauthenticated names a metric or a log field.
        let action = fields["Action"].flatMap { Self.actions.contains($0) ? $0 : nil } ?? "Unknown"
        let role: AccessRole
        do {
            let signer = try responder.credentials.verify(
                SigV4.Request(method: wire.method, path: wire.path, query: wire.query, headers: wire.headers, body: bytes), services: ["sns"])
            keyId = signer.accessKeyId
            role = signer.role
        } catch {
            return failure(action, 403, error == .missing ? "MissingAuthenticationToken" : "InvalidClientTokenId", error.description)
        }
        guard action != "Unknown" else {
            return failure(action, 400, "InvalidAction", "deployctl serves these SNS actions: \(Self.actions.sorted().joined(separator: ", ")).")
        }
        guard role.allows(action) else {
            return failure(action, 403, "AuthorizationError", "The access key \(keyId) (role \(role.rawValue)) is not allowed to call \(action).")
        }
        return await run(action, fields, role: role)
    }

    /// Runs an action on the writer (or reader) threads and answers SNS's XML.
    func run(_ action: String, _ fields: [String: String], role: AccessRole?) async -> WireResponse {
        let plane = responder.plane
        func required(_ name: String) throws -> String {
            guard let value = fields[name], !value.isEmpty else { throw ServiceError("InvalidParameter", "Invalid parameter: \(name) is required") }
            return value
        }
        do {
            let result: String
            switch action {
            case "CreateTopic":
                let name = try required("Name")
                let arn = try await responder.onWriter { try $0.createTopicNow(name: name) }
                result = element("TopicArn", arn)
            case "DeleteTopic":
                let arn = try required("TopicArn")
                try await responder.onWriter { try $0.deleteTopicNow(arn: arn) }
                result = ""
            case "ListTopics":
                let arns = try await responder.onReaders { try $0.listTopicsNow() }
                result = "<Topics>" + arns.map { "<member>\(element("TopicArn", $0))</member>" }.joined() + "</Topics>"
            case "Subscribe":
                let (topic, protocolName, endpoint) = (try required("TopicArn"), try required("Protocol"), try required("Endpoint"))
                let secret = Self.attribute("SigningSecret", in: fields)
                let answer = try await responder.onWriter {
                    try $0.subscribeNow(topicArn: topic, protocolName: protocolName, endpoint: endpoint, signingSecret: secret, owner: plane.account)
                }
                result = element("SubscriptionArn", answer.subscriptionArn) + (answer.signingSecret.map { element("SigningSecret", $0) } ?? "")
            case "ConfirmSubscription":
                let (topic, token) = (try required("TopicArn"), try required("Token"))
                let arn = try await responder.onWriter { try $0.confirmSubscriptionNow(topicArn: topic, token: token) }
                result = element("SubscriptionArn", arn)
            case "Unsubscribe":
                let arn = try required("SubscriptionArn")
                try await responder.onWriter { try $0.unsubscribeNow(subscriptionArn: arn) }
                result = ""
            case "ListSubscriptionsByTopic":
                let topic = try required("TopicArn")
                let subscriptions = try await responder.onReaders { try $0.listSubscriptionsByTopicNow(topicArn: topic) }
                result =
                    "<Subscriptions>"
                    + subscriptions.map {
                        "<member>" + element("TopicArn", $0.topicArn) + element("Protocol", $0.protocolName)
                            + element("SubscriptionArn", $0.subscriptionArn) + element("Owner", $0.owner) + element("Endpoint", $0.endpoint)
                            + "</member>"
                    }.joined() + "</Subscriptions>"
            case "Publish":
                let (topic, message, subject) = (try required("TopicArn"), try required("Message"), fields["Subject"])
                let id = try await responder.onWriter { try $0.publishNow(topicArn: topic, message: message, subject: subject) }
                result = element("MessageId", id)
            default:
                return failure(action, 400, "InvalidAction", "Unknown action.")
            }
            let resultElement = result.isEmpty ? "" : "<\(action)Result>\(result)</\(action)Result>"
            let text =
                S3XML.declaration + "<\(action)Response xmlns=\"\(Self.namespace)\">\(resultElement)"
                + "<ResponseMetadata>\(element("RequestId", requestId))</ResponseMetadata></\(action)Response>"
            return WireResponse(status: 200, contentType: "text/xml", text: text, operation: action)
        } catch let error as ServiceError {
            let status = error.code == "NotFound" ? 404 : error.code == "AuthorizationError" ? 403 : 400
            return failure(action, status, error.code, error.message)
        } catch {
            return failure(action, 503, "Throttling", "\(error)")
        }
    }

    /// `Attributes.entry.N.key` / `.value` (how the Query protocol sends a map), the value of `key`.
    static func attribute(_ key: String, in fields: [String: String]) -> String? {
        for (name, value) in fields where name.hasPrefix("Attributes.entry.") && name.hasSuffix(".key") && value == key {
            return fields[String(name.dropLast(4)) + ".value"]
        }
        return nil
    }

    func element(_ name: String, _ text: String) -> String { S3XML.element(name, text) }

    /// SNS's `<ErrorResponse>`.
    func failure(_ action: String, _ status: Int, _ code: String, _ message: String) -> WireResponse {
        let text =
            S3XML.declaration + "<ErrorResponse xmlns=\"\(Self.namespace)\"><Error><Type>\(status >= 500 ? "Receiver" : "Sender")</Type>"
            + element("Code", code) + element("Message", message) + "</Error>" + element("RequestId", requestId) + "</ErrorResponse>"
        return WireResponse(status: status, contentType: "text/xml", text: text, operation: action, errorCode: code)
    }
}
