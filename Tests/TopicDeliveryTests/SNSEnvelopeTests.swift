import ControlPlane
import DeployStore
import Foundation
import Testing

@testable import TopicDelivery

/// What a receiver gets: SNS's HTTP message and headers, signed as Standard Webhooks specifies.
@Suite struct SNSEnvelopeTests {
    /// The Standard Webhooks specification's own example (standard-webhooks/standard-webhooks, its libraries' tests).
    @Test func theSignatureMatchesTheStandardWebhooksExample() {
        let signature = SNSEnvelope.signature(
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330,
            body: Array(#"{"test": 2432232314}"#.utf8))
        #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    static func claim(type: String, subject: String? = nil) -> ClaimedDelivery {
        ClaimedDelivery(
            record: DeliveryRecord(
                id: 7, messageId: "6f0e9c2e-0000-4000-8000-000000000001", type: type, topicArn: "arn:aws:sns:local:000000000000:deploys",
                subscriptionArn: "arn:aws:sns:local:000000000000:deploys:abc", endpoint: "https://hooks.example.com/x", subject: subject,
                message: #"{"status":"SUCCEEDED"}"#, created: 1_470_856_332.411, state: "pending", nextAttempt: 0, origin: "all", deploymentId: "d-1"),
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", token: "ab12", claimedAt: 0)
    }

    @Test func aNotificationIsSNSsHTTPMessage() {
        let envelope = SNSEnvelope(
            delivery: Self.claim(type: "Notification", subject: "SUCCEEDED: AWS CodeDeploy d-1 in local to web"), confirmationBase: nil)
        #expect(
            String(decoding: envelope.body, as: UTF8.self)
                == #"{"Type":"Notification","MessageId":"6f0e9c2e-0000-4000-8000-000000000001","TopicArn":"arn:aws:sns:local:000000000000:deploys","Subject":"SUCCEEDED: AWS CodeDeploy d-1 in local to web","Message":"{\"status\":\"SUCCEEDED\"}","Timestamp":"2016-08-10T19:12:12.411Z"}"#
        )
        let headers = Dictionary(envelope.headers(timestamp: 1_700_000_000), uniquingKeysWith: { a, _ in a })
        #expect(
            headers["x-amz-sns-message-type"] == "Notification"
                && headers["x-amz-sns-subscription-arn"] == "arn:aws:sns:local:000000000000:deploys:abc")
        #expect(headers["webhook-id"] == "6f0e9c2e-0000-4000-8000-000000000001" && headers["webhook-timestamp"] == "1700000000")
        #expect(
            headers["webhook-signature"]
                == SNSEnvelope.signature(
                    secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", id: "6f0e9c2e-0000-4000-8000-000000000001", timestamp: 1_700_000_000,
                    body: envelope.body))
        #expect(headers["Content-Type"] == "text/plain; charset=UTF-8")
    }

    @Test func aConfirmationCarriesItsTokenAndSubscribeURL() throws {
        let envelope = SNSEnvelope(delivery: Self.claim(type: "SubscriptionConfirmation"), confirmationBase: "https://deploy.example.com:8443")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(envelope.body)) as? [String: String])
        #expect(object["Token"] == "ab12" && object["Type"] == "SubscriptionConfirmation")
        #expect(
            object["SubscribeURL"]
                == "https://deploy.example.com:8443/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:local:000000000000:deploys&Token=ab12")
        // On a state file there is nothing to visit: no SubscribeURL, the Token is confirmed with deployctl.
        let local = SNSEnvelope(delivery: Self.claim(type: "SubscriptionConfirmation"), confirmationBase: nil)
        #expect(!String(decoding: local.body, as: UTF8.self).contains("SubscribeURL"))
    }
}
