import AWSWire
import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOSSL
import Synchronization

/// A request could not be sent or its answer could not be read (not an answer of the service).
public struct RemoteError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Where and how to reach a `deployctl server` (or AWS itself): the endpoint, the credentials, TLS trust.
public struct RemoteEndpoint: Sendable {
    public var url: URL
    public var region: String
    public var credentials: AWSCredentials
    /// PEM file of the CAs to trust instead of the system's (`--ca-bundle`, `AWS_CA_BUNDLE`).
    public var caBundle: String?
    /// `--no-verify-ssl`: no certificate check at all.
    public var verifyTLS: Bool

    public init(url: URL, region: String, credentials: AWSCredentials, caBundle: String? = nil, verifyTLS: Bool = true) {
        self.url = url
        self.region = region
        self.credentials = credentials
        self.caBundle = caBundle
        self.verifyTLS = verifyTLS
    }

    /// Checks an `--endpoint-url` value: http or https, a host, no query.
    public static func parseURL(_ text: String) throws -> URL {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "https" || scheme == "http",
            let host = url.host, !host.isEmpty, url.query == nil
        else {
            throw RemoteError("Invalid endpoint: \(text.prefix(200)) (expected https://HOST[:PORT], e.g. https://deploy.example.com:8443)")
        }
        return url
    }
}

/// Sends SigV4-signed requests with AsyncHTTPClient. One client per trust setting lives as long as the process (a
/// CLI invocation), so connections are reused between the pages of a listing and the parts of an upload.
public final class SignedClient: Sendable {
    public let endpoint: RemoteEndpoint
    let client: HTTPClient

    static let clients = Mutex<[String: HTTPClient]>([:])

    public init(endpoint: RemoteEndpoint) throws {
        self.endpoint = endpoint
        let cacheKey = "\(endpoint.caBundle ?? "-")|\(endpoint.verifyTLS)"
        if let existing = Self.clients.withLock({ $0[cacheKey] }) {
            client = existing
            return
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caBundle = endpoint.caBundle {
            guard FileManager.default.isReadableFile(atPath: caBundle) else {
                throw RemoteError("The CA bundle \(caBundle) cannot be read (--ca-bundle / AWS_CA_BUNDLE).")
            }
            tls.trustRoots = .file(caBundle)
        }
        if !endpoint.verifyTLS { tls.certificateVerification = .none }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(120))
        configuration.decompression = .disabled
        // A refused connection or a certificate that does not verify fails the command at once instead of being retried
        // until the connect timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        let created = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        client = Self.clients.withLock { clients in
            if let existing = clients[cacheKey] { return existing }
            clients[cacheKey] = created
            return created
        }
        if client !== created { try? created.syncShutdown() }
    }

    /// A received answer.
    public struct Answer: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: Data

        public func header(_ name: String) -> String? {
            headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
        }
    }

    /// Signs and sends one request. `path` is percent-encoded as it goes on the wire; `payloadHash` goes into
    /// `x-amz-content-sha256` for S3.
    public func send(
        method: String, path: String, query: String = "", headers extra: [(String, String)] = [], body: Data, service: String,
        maxAnswerBytes: Int = 64 << 20
    ) async throws -> Answer {
        let url = endpoint.url
        var request = signedRequest(
            method: method, path: path, query: query, headers: extra, payloadHash: SigV4.hex(SHA256.hash(data: body)), service: service)
        if !body.isEmpty || method == "PUT" || method == "POST" {
            request.headers.replaceOrAdd(name: "Content-Length", value: String(body.count))
            request.body = .bytes(ByteBuffer(data: body))
        }
        do {
            let response = try await client.execute(request, timeout: .seconds(300))
            let received = try await response.body.collect(upTo: maxAnswerBytes)
            return Answer(
                status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) }, body: Data(buffer: received))
        } catch let error as RemoteError {
            throw error
        } catch {
            throw RemoteError(Self.explain(error, url: url, caBundle: endpoint.caBundle))
        }
    }

    /// A request to the endpoint signed for `service`: `Host`, `X-Amz-Date`, the session token, S3's
    /// `X-Amz-Content-SHA256`, `Authorization`. `path` is percent-encoded as it goes on the wire.
    func signedRequest(
        method: String, path: String, query: String, headers extra: [(String, String)], payloadHash: String, service: String
    ) -> HTTPClientRequest {
        let url = endpoint.url
        let defaultPort = url.scheme == "https" ? 443 : 80
        let rawHost = url.host ?? ""
        let host = (rawHost.contains(":") ? "[\(rawHost)]" : rawHost) + (url.port.map { $0 == defaultPort ? "" : ":\($0)" } ?? "")
        let basePath = url.path.hasSuffix("/") ? String(url.path.dropLast()) : url.path
        let fullPath = basePath + path
        var headers: [(name: String, value: String)] = [("Host", host), ("X-Amz-Date", SigV4.formatAmzDate(Date()))]
        for (name, value) in extra { headers.append((name, value)) }
        if service == "s3" { headers.append(("X-Amz-Content-SHA256", payloadHash)) }
        if let token = endpoint.credentials.sessionToken { headers.append(("X-Amz-Security-Token", token)) }
        let signable = SigV4.Request(method: method, path: fullPath, query: query, headers: headers, payloadHash: payloadHash)
        let authorization = SigV4.authorization(
            for: signable, accessKeyId: endpoint.credentials.accessKeyId, secretAccessKey: endpoint.credentials.secretAccessKey,
            region: endpoint.region, service: service)
        var request = HTTPClientRequest(url: "\(url.scheme ?? "https")://\(host)\(fullPath)\(query.isEmpty ? "" : "?" + query)")
        request.method = .init(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.headers.add(name: "Authorization", value: authorization)
        request.headers.add(name: "User-Agent", value: "deployctl/0.1.0")
        return request
    }

    /// Words for a transport failure, with the fix where there is an obvious one.
    static func explain(_ error: any Error, url: URL, caBundle: String?) -> String {
        let text = String(describing: error)
        let target = url.absoluteString
        if text.contains("connectTimeout") || text.contains("connectionRefused") || text.contains("Connection refused") {
            return "Could not connect to the endpoint URL: \"\(target)\" (\(text.prefix(200))). Is deployctl server running there?"
        }
        if text.contains("handshake") || text.contains("certificate") || text.contains("CERTIFICATE") || text.contains("NIOSSL") {
            let hint =
                caBundle == nil
                ? " Pass the server's CA with --ca-bundle (or AWS_CA_BUNDLE): deployctl server printed its path when it started." : ""
            let reason = text.contains("CERTIFICATE_VERIFY_FAILED") ? "certificate verify failed" : String(text.prefix(300))
            return "SSL validation failed for \(target): \(reason).\(hint)"
        }
        if text.contains("deadlineExceeded") || text.contains("readTimeout") {
            return "Read timeout on endpoint URL: \"\(target)\""
        }
        return "Request to \(target) failed: \(text.prefix(300))"
    }
}
