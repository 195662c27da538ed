import AWSWire
import AsyncHTTPClient
import Crypto
import DeployModel
import Foundation
import HostCommandModel
import NIOCore
import ServiceLifecycle
import SwiftASN1
import Synchronization

/// deployctl's agent talking to `deployctl server` (or anything that speaks CodeDeploy's command protocol) over
/// HTTPS: `PollHostCommand` (held by the server until there is work), `GetDeploymentSpecification` (a PKCS7/JSON
/// envelope), `PutHostCommandAcknowledgement`, `PutHostCommandComplete` (retried until the server has it),
/// `PostHostCommandUpdate`. The host is identified by its ARN and the request signatures of its own key.
public final class RemoteHostCommands: HostCommandService {
    let client: SignedClient
    let hostIdentifier: String
    /// Specifications already fetched, by execution id (one per deployment).
    let specifications = Mutex<[String: DeploymentSpecification]>([:])
    /// How long a `Complete` is retried while the server cannot be reached (a result is never dropped early).
    let completeRetryLimit: Duration
    /// Whether the agent has been asked to stop (SIGTERM): then a `Complete` the server cannot take is retried for
    /// ``stopGrace`` only, and the result waits on disk for the agent's next start (`AgentLoop` keeps it in the
    /// event's marker), rather than holding the stop for up to ``completeRetryLimit``.
    let stopping: @Sendable () -> Bool
    let stopGrace: Duration

    public static let target = "CodeDeployCommandService_v20141006."

    public init(
        client: SignedClient, hostIdentifier: String, completeRetryLimit: Duration = .seconds(3600),
        stopping: @escaping @Sendable () -> Bool = { false }, stopGrace: Duration = .seconds(10)
    ) {
        self.client = client
        self.hostIdentifier = hostIdentifier
        self.completeRetryLimit = completeRetryLimit
        self.stopping = stopping
        self.stopGrace = stopGrace
    }

    func call(_ operation: String, _ body: JSONValue) async throws -> JSONValue {
        let answer = try await client.send(
            method: "POST", path: "/",
            headers: [
                ("Content-Type", JSONProtocol.contentType), ("X-Amz-Target", Self.target + operation),
                ("X-Amz-Codedeploy-Agent-Version", "deployctl-0.1.0"),
            ], body: Data(body.compact().utf8), service: "codedeploy-commands", maxAnswerBytes: 1 << 20)
        let text = String(decoding: answer.body, as: UTF8.self)
        guard (200..<300).contains(answer.status) else { throw RemoteCodeDeploy.serviceError(status: answer.status, text: text) }
        return text.isEmpty ? .object([]) : try JSONValue.parse(text)
    }

    public func pollHostCommand(instanceName: String) async throws -> HostCommand? {
        // A held poll ends at once when the agent is asked to stop (nothing is lost: nothing was handed out yet, or
        // the server hands it out again after its acknowledgement window).
        let hostIdentifier = self.hostIdentifier
        let answer = try await cancelWhenGracefulShutdown {
            try await self.call("PollHostCommand", .members([("HostIdentifier", .string(hostIdentifier))]))
        }
        guard let command = answer["HostCommand"], case .object = command, let id = command["HostCommandIdentifier"]?.stringValue,
            let execution = command["DeploymentExecutionId"]?.stringValue, let event = command["CommandName"]?.stringValue
        else { return nil }
        let spec = try await specification(execution)
        return HostCommand(
            id: id, deploymentId: spec.deploymentId, instanceName: instanceName, lifecycleEvent: event, applicationName: spec.applicationName,
            deploymentGroupName: spec.deploymentGroupName, deploymentGroupId: spec.deploymentGroupId, bundle: spec.bundle,
            fileExistsBehavior: spec.fileExistsBehavior, ignoreApplicationStopFailures: spec.ignoreApplicationStopFailures)
    }

    func specification(_ execution: String) async throws -> DeploymentSpecification {
        if let known = specifications.withLock({ $0[execution] }) { return known }
        let answer = try await call(
            "GetDeploymentSpecification", .members([("DeploymentExecutionId", .string(execution)), ("HostIdentifier", .string(hostIdentifier))]))
        guard answer["DeploymentSystem"]?.stringValue == "CodeDeploy", let envelope = answer["DeploymentSpecification"]?["GenericEnvelope"],
            let payload = envelope["Payload"]?.stringValue
        else {
            throw RemoteError("The server's deployment specification for \(execution.prefix(140)) has no CodeDeploy envelope.")
        }
        let json: String
        switch envelope["Format"]?.stringValue {
        case "PKCS7/JSON"?: json = try PKCS7Content.extract(pem: payload)
        case "TEXT/JSON"?: json = payload
        default: throw RemoteError("Unsupported deployment specification format \(envelope["Format"]?.stringValue ?? "none").")
        }
        guard let spec = CommandProtocol.parseSpecification(json) else {
            throw RemoteError("The deployment specification for \(execution.prefix(140)) lacks required fields.")
        }
        specifications.withLock { cache in
            if cache.count > 100 { cache.removeAll() }
            cache[execution] = spec
        }
        return spec
    }

    /// A server that answers `Failed` cancelled the command (the deployment was stopped): the agent skips it.
    public struct Cancelled: Error, CustomStringConvertible {
        public var description: String
    }

    public func acknowledgeHostCommand(id: String, expectedSeconds: Int) async throws {
        let payload = JSONValue.members([("IsCommandNoop", .bool(false)), ("ExpectedSeconds", .int(expectedSeconds))]).compact()
        let answer = try await call(
            "PutHostCommandAcknowledgement",
            .members([
                ("HostCommandIdentifier", .string(id)), ("Diagnostics", .members([("Format", .string("JSON")), ("Payload", .string(payload))])),
            ]))
        if let status = answer["CommandStatus"]?.stringValue, status == "Failed" || status == "Succeeded" {
            throw Cancelled(description: "The server cancelled the command (\(status)); the deployment was stopped or the command expired.")
        }
    }

    public func postHostCommandUpdate(id: String, note: String) async throws {
        let payload = JSONValue.members([("note", .string(note))]).compact()
        _ = try await call(
            "PostHostCommandUpdate",
            .members([
                ("HostCommandIdentifier", .string(id)), ("Diagnostics", .members([("Format", .string("JSON")), ("Payload", .string(payload))])),
            ]))
    }

    /// Retried with backoff and jitter until the server answers (a completed result is never lost to a network
    /// error); a refusal by the server ends it, and so does a stop once ``stopGrace`` has passed (the result then
    /// waits on disk for the next start).
    public func completeHostCommand(id: String, report: HostCommandReport) async throws {
        let body = JSONValue.members([
            ("HostCommandIdentifier", .string(id)), ("CommandStatus", .string(report.status == .failed ? "Failed" : "Succeeded")),
            ("Diagnostics", CommandProtocol.diagnostics(report)),
        ])
        let started = ContinuousClock.now
        var stopSeen: ContinuousClock.Instant?
        var delay = 0.2
        while true {
            do {
                _ = try await call("PutHostCommandComplete", body)
                return
            } catch let error as RemoteError {
                let now = ContinuousClock.now
                guard now - started < completeRetryLimit else { throw error }
                if stopSeen == nil, stopping() { stopSeen = now }
                if let stopSeen, now - stopSeen >= stopGrace {
                    throw RemoteError(
                        "stopping: the result of host command \(id.prefix(200)) could not be reported (\(error.description)); it stays on disk and is reported when the agent next starts"
                    )
                }
                var pause = delay * Double.random(in: 0.5...1.5)
                if stopSeen != nil { pause = min(pause, 1) }
                try await Task.sleep(for: .milliseconds(Int(pause * 1000)))
                delay = min(delay * 2, 30)
            }
        }
    }

    /// A remote host is identified by its key: no lease is needed.
    public func acquireAgentLease(instanceName: String, agent: AgentIdentity) async throws {}
    public func releaseAgentLease(instanceName: String, agent: AgentIdentity) async throws {}
}

/// The content of a PKCS#7 SignedData with attached content (RFC 2315/5652), in PEM `PKCS7` armour.
enum PKCS7Content {
    static func extract(pem: String) throws -> String {
        let lines = pem.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        guard lines.first?.hasPrefix("-----BEGIN PKCS7") == true || lines.first?.hasPrefix("-----BEGIN CMS") == true,
            let der = Data(base64Encoded: lines.dropFirst().filter { !$0.hasPrefix("-----") }.joined())
        else { throw RemoteError("The deployment specification is not a PEM PKCS7 envelope.") }
        do {
            // ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT SignedData }
            // SignedData ::= SEQUENCE { version, digestAlgorithms SET, encapContentInfo SEQUENCE { OID, [0] EXPLICIT OCTET STRING }, … }
            let root = try DER.parse(Array(der))
            guard case .constructed(let info) = root.content else { throw RemoteError("not a ContentInfo") }
            var parts = info.makeIterator()
            _ = parts.next()
            guard let explicit = parts.next(), case .constructed(let wrapped) = explicit.content,
                let signedData = wrapped.first(where: { _ in true }),
                case .constructed(let signedParts) = signedData.content
            else { throw RemoteError("no SignedData") }
            var fields = signedParts.makeIterator()
            _ = fields.next()
            _ = fields.next()
            guard let encapsulated = fields.next(), case .constructed(let encapsulatedParts) = encapsulated.content else {
                throw RemoteError("no encapsulated content")
            }
            var inner = encapsulatedParts.makeIterator()
            _ = inner.next()
            guard let contentExplicit = inner.next(), case .constructed(let contentWrapper) = contentExplicit.content,
                let octets = contentWrapper.first(where: { _ in true })
            else { throw RemoteError("the envelope carries no content (detached signature)") }
            let bytes: [UInt8]
            switch octets.content {
            case .primitive(let value): bytes = Array(value)
            case .constructed(let chunks):
                bytes = chunks.flatMap { node -> [UInt8] in
                    if case .primitive(let value) = node.content { return Array(value) }
                    return []
                }
            }
            return String(decoding: bytes, as: UTF8.self)
        } catch let error as RemoteError {
            throw RemoteError("Could not read the deployment specification's PKCS7 envelope: \(error.description)")
        } catch {
            throw RemoteError("Could not read the deployment specification's PKCS7 envelope: \(error)")
        }
    }
}

/// Downloads bundles with S3 GetObject from the server, streamed to `<directory>/<deployment id>.bundle`, the ETag
/// checked against the spec's, once per deployment.
public struct RemoteBundles: BundleFetching {
    let client: SignedClient
    let directory: String

    public init(client: SignedClient, directory: String) {
        self.client = client
        self.directory = directory
    }

    public func fetch(bucket: String, key: String, version: String?, eTag: String?, deploymentId: String) async throws -> String {
        let safeId = deploymentId.filter { $0.isLetter || $0.isNumber || $0 == "-" }
        let target = directory + "/" + safeId + ".bundle"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let partial = target + ".partial"
        let query = version.map { "versionId=" + SigV4.encode($0, keepingSlash: false) } ?? ""
        let (status, headers) = try await client.download(
            path: RemoteArtifacts.objectPath(bucket: bucket, key: key), query: query, to: partial)
        guard status == 200 else {
            let text = (try? String(contentsOfFile: partial, encoding: .utf8)) ?? ""
            unlink(partial)
            let code = RemoteArtifacts.element("Code", in: Data(text.utf8)) ?? "HTTP \(status)"
            let message = RemoteArtifacts.element("Message", in: Data(text.utf8)) ?? ""
            throw RemoteError("Could not download s3://\(bucket)/\(key): \(code) \(message)")
        }
        let served = (headers.first { $0.0.lowercased() == "etag" }?.1 ?? "").replacingOccurrences(of: "\"", with: "")
        if let eTag, !eTag.isEmpty, eTag.replacingOccurrences(of: "\"", with: "") != served {
            unlink(partial)
            throw RemoteError("Expected deployment artifact bundle etag \(eTag) but was actually \"\(served)\"")
        }
        guard rename(partial, target) == 0 else { throw RemoteError("cannot store the bundle at \(target): \(String(cString: strerror(errno)))") }
        return target
    }
}

extension SignedClient {
    /// A signed S3 GET streamed into `file` (memory flat in the object's size); answers the status and headers.
    func download(path: String, query: String, to file: String) async throws -> (Int, [(String, String)]) {
        let url = endpoint.url
        let request = signedRequest(method: "GET", path: path, query: query, headers: [], payloadHash: SigV4.emptyPayloadHash, service: "s3")
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw RemoteError("cannot create \(file): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        do {
            let response = try await client.execute(request, timeout: .seconds(3600))
            for try await buffer in response.body {
                let written = buffer.withUnsafeReadableBytes { raw in write(fd, raw.baseAddress, raw.count) }
                guard written == buffer.readableBytes else { throw RemoteError("cannot write \(file): \(String(cString: strerror(errno)))") }
            }
            return (Int(response.status.code), response.headers.map { ($0.name, $0.value) })
        } catch let error as RemoteError {
            throw error
        } catch {
            throw RemoteError(Self.explain(error, url: url, caBundle: endpoint.caBundle))
        }
    }
}
