import AWSWire
import DeployModel
import Foundation
import HostCommandModel
import Testing

@testable import DeployClient

/// The signing client and what is built on it: endpoints, the credential chain, signatures a server verifies,
/// transport failures in words, and `PutHostCommandComplete`'s retries.
@Suite struct DeployClientTests {
    static let credentials = AWSCredentials(accessKeyId: "AKIDEPLOYCTLTEST0001", secretAccessKey: "secret-of-the-test-key", source: "test")

    func client(_ url: String, caBundle: String? = nil) throws -> SignedClient {
        try SignedClient(
            endpoint: RemoteEndpoint(url: try RemoteEndpoint.parseURL(url), region: "local", credentials: Self.credentials, caBundle: caBundle))
    }

    @Test func endpointsMustBeHTTPOrHTTPSWithAHostAndNoQuery() throws {
        #expect(try RemoteEndpoint.parseURL("https://10.0.0.5:8443").port == 8443)
        #expect(try RemoteEndpoint.parseURL("http://[::1]:8080").host == "::1")
        for bad in ["ftp://host", "https://", "10.0.0.5:8443", "https://host/?a=b", ""] {
            #expect(throws: RemoteError.self, "\(bad)") { try RemoteEndpoint.parseURL(bad) }
        }
    }

    @Test func theChainTakesTheEnvironmentThenTheProfileFiles() throws {
        let home = NSTemporaryDirectory() + "client-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: home + "/.aws", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: home) }
        try
            "[default]\naws_access_key_id = AKFILE\naws_secret_access_key = s1\n\n[ops]\n# a comment\naws_access_key_id=AKOPS\naws_secret_access_key=s2\n"
            .write(toFile: home + "/.aws/credentials", atomically: false, encoding: .utf8)
        try "[profile ops]\nregion = eu-west-3\nca_bundle = /etc/ca.pem\n".write(toFile: home + "/.aws/config", atomically: false, encoding: .utf8)

        let fromEnvironment = CredentialChain(environment: [
            "HOME": home, "AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "s0", "AWS_SESSION_TOKEN": "",
        ])
        #expect(try fromEnvironment.credentials().accessKeyId == "AKENV")
        #expect(try fromEnvironment.credentials().sessionToken == nil)
        #expect(try CredentialChain(environment: ["HOME": home]).credentials().accessKeyId == "AKFILE")
        // An explicit profile wins over the environment's keys, as in the aws CLI.
        let ops = CredentialChain(environment: ["HOME": home, "AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "s0"], profile: "ops")
        #expect(try ops.credentials().accessKeyId == "AKOPS")
        #expect(ops.region() == "eu-west-3")
        #expect(ops.setting("ca_bundle") == "/etc/ca.pem")
        #expect(CredentialChain(environment: ["HOME": home, "AWS_REGION": "ap-south-1"], profile: "ops").region() == "ap-south-1")

        let missing = #expect(throws: CredentialsError.self) { try CredentialChain(environment: ["HOME": home], profile: "nope").credentials() }
        #expect(missing?.description == "The config profile (nope) could not be found in \(home)/.aws/credentials or \(home)/.aws/config.")
        let empty = NSTemporaryDirectory() + "client-tests-empty-" + UUID().uuidString
        let none = #expect(throws: CredentialsError.self) { try CredentialChain(environment: ["HOME": empty]).credentials() }
        #expect(none?.description.hasPrefix("Unable to locate credentials.") == true)
    }

    /// What the client signs, the server's verifier accepts; a request changed in flight it refuses.
    @Test func signedRequestsVerifyWithTheServersVerifier() throws {
        for url in ["https://127.0.0.1:8443", "https://127.0.0.1:443/base/", "http://[::1]:8080"] {
            let client = try client(url)
            let body = Data(#"{"applicationName":"shop"}"#.utf8)
            let request = client.signedRequest(
                method: "POST", path: "/", query: "", headers: [("X-Amz-Target", "CodeDeploy_20141006.GetApplication")],
                payloadHash: SigV4.Request(method: "POST", path: "/", headers: [], body: body).payloadHash, service: "codedeploy")
            let headers = request.headers.map { (name: $0.name, value: $0.value) }
            let path = URLComponents(string: request.url)?.percentEncodedPath ?? "/"
            let signed = SigV4.Request(method: "POST", path: path, headers: headers, body: body)
            let signer = try SigV4.verify(signed, services: ["codedeploy"]) {
                $0 == Self.credentials.accessKeyId ? Self.credentials.secretAccessKey : nil
            }
            #expect(signer.accessKeyId == Self.credentials.accessKeyId)
            #expect(
                headers.first { $0.name == "Host" }?.value
                    == ["https://127.0.0.1:8443": "127.0.0.1:8443", "https://127.0.0.1:443/base/": "127.0.0.1", "http://[::1]:8080": "[::1]:8080"][
                        url])
            let retargeted = SigV4.Request(
                method: "POST", path: path,
                headers: headers.map { $0.name == "X-Amz-Target" ? ($0.name, "CodeDeploy_20141006.DeleteApplication") : $0 }, body: body)
            #expect(throws: SigV4.Refusal.self) {
                try SigV4.verify(retargeted, services: ["codedeploy"]) { _ in Self.credentials.secretAccessKey }
            }
        }
    }

    @Test func transportFailuresSayWhatToDo() async throws {
        // A port that was listening a moment ago and no longer is.
        let port: UInt16
        do { port = try ScriptedPeer([]).port }
        let refused = await #expect(throws: RemoteError.self) {
            _ = try await client("http://127.0.0.1:\(port)").send(method: "POST", path: "/", body: Data(), service: "codedeploy")
        }
        #expect(refused?.description.contains("Is deployctl server running there?") == true, "\(String(describing: refused))")
        #expect(throws: RemoteError.self) { try client("https://127.0.0.1:1", caBundle: "/nonexistent/ca.pem") }
    }

    @Test func errorAnswersAreReadAsBotocoreReadsThem() {
        let typed = RemoteCodeDeploy.serviceError(
            status: 400, text: #"{"__type":"com.amazonaws#DeploymentDoesNotExistException:extra","message":"gone"}"#)
        #expect(typed as? ServiceError == ServiceError("DeploymentDoesNotExistException", "gone"))
        #expect(RemoteCodeDeploy.serviceError(status: 502, text: "Bad Gateway") is RemoteError)
        #expect(RemoteCodeDeploy.serviceError(status: 500, text: "") is RemoteError)
        #expect(RemoteCodeDeploy.serviceError(status: 403, text: "Forbidden") as? ServiceError == ServiceError("403", "Forbidden"))
        #expect(RemoteRegistration.step(of: "CreateAccessKey: too many keys", default: "RegisterInstance") == ("CreateAccessKey", "too many keys"))
        #expect(RemoteRegistration.step(of: "Something: else", default: "RegisterInstance") == ("RegisterInstance", "Something: else"))
    }

    static let report = HostCommandReport(status: .succeeded, errorCode: "Success", message: "Succeeded")

    /// A completed result is never lost to a dropped connection: the complete is sent again until the server has it.
    @Test func completeIsRetriedUntilTheServerAnswers() async throws {
        let peer = try ScriptedPeer([.close, .close, .answer(status: 200, body: "{}")])
        let commands = RemoteHostCommands(client: try client("http://127.0.0.1:\(peer.port)"), hostIdentifier: "arn:aws:iam::0:user/web-1")
        try await commands.completeHostCommand(id: "command-1", report: Self.report)
        #expect(peer.requests.count == 3)
        #expect(peer.requests.allSatisfy { $0.contains("X-Amz-Target: CodeDeployCommandService_v20141006.PutHostCommandComplete") })
    }

    @Test func aRefusalByTheServerIsNotRetried() async throws {
        let peer = try ScriptedPeer([
            .answer(status: 400, body: #"{"__type":"ClientException","message":"stale command"}"#), .answer(status: 200, body: "{}"),
        ])
        let commands = RemoteHostCommands(client: try client("http://127.0.0.1:\(peer.port)"), hostIdentifier: "arn:aws:iam::0:user/web-1")
        await #expect(throws: ServiceError("ClientException", "stale command")) {
            try await commands.completeHostCommand(id: "command-1", report: Self.report)
        }
        #expect(peer.requests.count == 1)
    }

    @Test func retriesEndAtTheirLimit() async throws {
        let peer = try ScriptedPeer(Array(repeating: .close, count: 50))
        let commands = RemoteHostCommands(
            client: try client("http://127.0.0.1:\(peer.port)"), hostIdentifier: "arn:aws:iam::0:user/web-1", completeRetryLimit: .milliseconds(500))
        let started = ContinuousClock.now
        await #expect(throws: RemoteError.self) { try await commands.completeHostCommand(id: "command-1", report: Self.report) }
        // Gives up soon after the limit (one attempt may still be in flight when it passes), not after an hour. Alone
        // it takes under a second; the bound leaves room for the whole suite sharing two cores (once 32 s in CI).
        #expect(ContinuousClock.now - started < .seconds(120))
        #expect(peer.requests.count >= 1)
    }
}
