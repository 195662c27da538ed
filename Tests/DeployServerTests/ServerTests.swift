import AWSWire
import ArtifactStore
import ControlPlane
import DeployClient
import DeployModel
import DeployServer
import DeployStore
import DeployStoreSQLite
import Foundation
import Logging
import Testing

/// A `deployctl server` on 127.0.0.1 with its own CA, over a real SQLite state file, with one key per role.
final class RunningServer: @unchecked Sendable {
    let directory: String
    let plane: ControlPlane
    let artifacts: ArtifactStore
    let tls: TLSMaterial
    let keys: [AccessRole: AccessKey]
    var url = URL(fileURLWithPath: "/")
    private var task: Task<Void, any Error>?

    init() async throws {
        directory = NSTemporaryDirectory() + "deployctl-server-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let file = try StateFile(path: directory + "/state.db", concurrentReaders: 4)
        plane = ControlPlane(store: SQLiteStore(file: file), expiresOnRead: false)
        artifacts = ArtifactStore(besideStateFile: directory + "/state.db")
        var keys: [AccessRole: AccessKey] = [:]
        for role in AccessRole.allCases { keys[role] = try plane.createAccessKey(userName: "test-\(role.rawValue)", role: role) }
        self.keys = keys
        tls = try TLSMaterial.prepare(directory: directory + "/tls", names: ["127.0.0.1", "localhost"])
        let server = try DeployServer(
            plane: plane, artifacts: artifacts,
            configuration: ServerConfiguration(
                listen: ListenAddress(host: "127.0.0.1", port: 0), tls: tls, signingDirectory: directory + "/tls", maxObjectBytes: 64 << 20),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        task = Task { try await server.run { url in continuation.yield(url) } }
        for await text in stream {
            url = URL(string: text) ?? url
            break
        }
    }

    func client(_ role: AccessRole, secret: String? = nil, keyId: String? = nil, caBundle: String? = nil) throws -> SignedClient {
        let key = try #require(keys[role])
        let credentials = AWSCredentials(
            accessKeyId: keyId ?? key.accessKeyId, secretAccessKey: secret ?? key.secretAccessKey ?? "", source: "test")
        return try SignedClient(endpoint: RemoteEndpoint(url: url, region: "us-east-1", credentials: credentials, caBundle: caBundle ?? tls.caPath))
    }

    func api(_ role: AccessRole = .admin) throws -> RemoteCodeDeploy { RemoteCodeDeploy(client: try client(role)) }

    deinit {
        task?.cancel()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

@Suite(.serialized) struct ServerTests {
    static func encoded(_ value: some Encodable) throws -> String { try JSONValueEncoder().encode(value).compact() }

    @Test func theSameOperationAnswersTheSameInProcessAndOverHTTPS() async throws {
        let server = try await RunningServer()
        let remote = try server.api()
        _ = try await remote.createApplication(CreateApplicationInput(applicationName: "web"))
        _ = try await remote.registerOnPremisesInstance(RegisterOnPremisesInstanceInput(instanceName: "h1", iamUserArn: "arn:aws:iam::1:user/h1"))
        let local: any CodeDeployAPI = server.plane
        let inProcess = try await local.getApplication(GetApplicationInput(applicationName: "web"))
        let overHTTPS = try await remote.getApplication(GetApplicationInput(applicationName: "web"))
        #expect(try Self.encoded(inProcess) == Self.encoded(overHTTPS))
        let instances = try await remote.listOnPremisesInstances(ListOnPremisesInstancesInput())
        #expect(instances.instanceNames == ["h1"])
        let inProcessError = await #expect(throws: ServiceError.self) { try await local.getApplication(GetApplicationInput(applicationName: "nope")) }
        let wire = await #expect(throws: ServiceError.self) { try await remote.getApplication(GetApplicationInput(applicationName: "nope")) }
        #expect(inProcessError == wire)
        #expect(wire?.code == "ApplicationDoesNotExistException")
    }

    @Test func aKeyMayCallOnlyWhatItsRoleAllows() async throws {
        let server = try await RunningServer()
        _ = try await server.api(.admin).createApplication(CreateApplicationInput(applicationName: "web"))
        let reader = try server.api(.readOnly)
        #expect(try await reader.listApplications(ListApplicationsInput()).applications == ["web"])
        let refused = await #expect(throws: ServiceError.self) { try await reader.createApplication(CreateApplicationInput(applicationName: "x")) }
        #expect(refused?.code == "AccessDeniedException")
        let deployer = try server.api(.deployer)
        let deleting = await #expect(throws: ServiceError.self) {
            try await deployer.deleteApplication(DeleteApplicationInput(applicationName: "web"))
        }
        #expect(deleting?.code == "AccessDeniedException")
        // Nothing changed.
        #expect(try server.plane.listApplications(ListApplicationsInput()).applications == ["web"])
        // S3: a read-only key cannot upload.
        let file = URL(fileURLWithPath: server.directory + "/small.bin")
        try Data("hello".utf8).write(to: file)
        let upload = await #expect(throws: RemoteError.self) {
            try await RemoteArtifacts(client: server.client(.readOnly)).upload(bucket: "releases", key: "a.zip", contentsOf: file)
        }
        #expect(upload?.description.contains("AccessDenied") == true)
        #expect(throws: ArtifactStoreError.self) { try server.artifacts.head(bucket: "releases", key: "a.zip", version: nil) }
    }

    @Test func requestsThatAreNotSignedByAnActiveKeyAreRefused() async throws {
        let server = try await RunningServer()
        let wrongSecret = RemoteCodeDeploy(client: try server.client(.admin, secret: "not-the-secret-at-all-0000"))
        let bad = await #expect(throws: ServiceError.self) { try await wrongSecret.listApplications(ListApplicationsInput()) }
        #expect(bad?.code == "InvalidSignatureException")
        let unknown = RemoteCodeDeploy(client: try server.client(.admin, keyId: "AKIAUNKNOWNUNKNOWN00"))
        let stranger = await #expect(throws: ServiceError.self) { try await unknown.listApplications(ListApplicationsInput()) }
        #expect(stranger?.code == "UnrecognizedClientException")
        let retired = try server.plane.createAccessKey(userName: "retired", role: .admin)
        try server.plane.updateAccessKey(accessKeyId: retired.accessKeyId, status: "Inactive")
        let inactive = RemoteCodeDeploy(
            client: try SignedClient(
                endpoint: RemoteEndpoint(
                    url: server.url, region: "eu-west-1",
                    credentials: AWSCredentials(accessKeyId: retired.accessKeyId, secretAccessKey: retired.secretAccessKey ?? "", source: "test"),
                    caBundle: server.tls.caPath)))
        let off = await #expect(throws: ServiceError.self) { try await inactive.listApplications(ListApplicationsInput()) }
        #expect(off?.code == "UnrecognizedClientException")
        // A client that does not trust the server's CA does not talk to it.
        let untrusting = RemoteCodeDeploy(client: try server.client(.admin, caBundle: "/etc/ssl/certs/ca-certificates.crt"))
        let tls = await #expect(throws: RemoteError.self) { try await untrusting.listApplications(ListApplicationsInput()) }
        #expect(tls?.description.contains("SSL validation failed") == true)
    }

    @Test func objectsGoUpInPartsAndComeBackWhole() async throws {
        let server = try await RunningServer()
        let file = URL(fileURLWithPath: server.directory + "/bundle.bin")
        let random = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/dev/urandom"))
        let bytes = [UInt8](try random.read(upToCount: RemoteArtifacts.partSize * 2 + 12345) ?? Data())
        try random.close()
        try Data(bytes).write(to: file)
        let stored = try await RemoteArtifacts(client: server.client(.deployer)).upload(bucket: "releases", key: "app/v1.zip", contentsOf: file)
        let local = try server.artifacts.head(bucket: "releases", key: "app/v1.zip", version: nil)
        #expect(stored.eTag == local.eTag)
        #expect(stored.versionId == local.versionId)
        #expect(local.eTag == ContentDigest.hex(of: bytes))
        #expect(try Data(contentsOf: URL(fileURLWithPath: local.path)) == Data(bytes))
        // A range comes back as those bytes, with 206.
        let client = try server.client(.readOnly)
        let ranged = try await client.send(
            method: "GET", path: "/releases/app/v1.zip", headers: [("Range", "bytes=100-199")], body: Data(), service: "s3")
        #expect(ranged.status == 206)
        #expect(ranged.body == Data(bytes[100...199]))
        #expect(ranged.header("Content-Range") == "bytes 100-199/\(bytes.count)")
        let missing = try await client.send(method: "GET", path: "/releases/nope.zip", body: Data(), service: "s3")
        #expect(missing.status == 404)
        #expect(String(decoding: missing.body, as: UTF8.self).contains("<Code>NoSuchKey</Code>"))
        let listing = try await client.send(method: "GET", path: "/releases", query: "list-type=2&prefix=app%2F", body: Data(), service: "s3")
        #expect(String(decoding: listing.body, as: UTF8.self).contains("<Key>app/v1.zip</Key>"))
        let admin = try server.client(.admin)
        let deleted = try await admin.send(method: "DELETE", path: "/releases/app/v1.zip", body: Data(), service: "s3")
        #expect(deleted.status == 204)
        #expect(throws: ArtifactStoreError.self) { try server.artifacts.head(bucket: "releases", key: "app/v1.zip", version: nil) }
    }

    @Test func plainHTTPIsForLoopbackOnly() throws {
        let plane = ControlPlane(store: MemoryStore())
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        for host in ["0.0.0.0", "10.1.2.3", "::"] {
            #expect(throws: ServerStartError.self) {
                try DeployServer(
                    plane: plane, artifacts: ArtifactStore(root: URL(fileURLWithPath: "/nonexistent")),
                    configuration: ServerConfiguration(
                        listen: ListenAddress(host: host, port: 8443), tls: nil,
                        signingDirectory: NSTemporaryDirectory() + "deployctl-sign-" + UUID().uuidString), logger: logger)
            }
        }
        for host in ["127.0.0.1", "::1", "localhost"] {
            #expect(
                throws: Never.self,
                performing: {
                    _ = try DeployServer(
                        plane: plane, artifacts: ArtifactStore(root: URL(fileURLWithPath: "/nonexistent")),
                        configuration: ServerConfiguration(
                            listen: ListenAddress(host: host, port: 8443), tls: nil,
                            signingDirectory: NSTemporaryDirectory() + "deployctl-sign-" + UUID().uuidString), logger: logger)
                })
        }
    }

    @Test func listenAddressesParseOrSayWhatIsExpected() throws {
        #expect(try ListenAddress(parsing: "127.0.0.1:8443") == ListenAddress(host: "127.0.0.1", port: 8443))
        #expect(try ListenAddress(parsing: "[::1]:0") == ListenAddress(host: "::1", port: 0))
        #expect(try ListenAddress(parsing: "0.0.0.0:443").isLoopback == false)
        for bad in ["8443", "host:", "host:99999", ":80", "[::1]8443", "h:-1"] {
            #expect(throws: ServerStartError.self, "\(bad)") { try ListenAddress(parsing: bad) }
        }
    }
}
