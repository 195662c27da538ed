import Crypto
import DeployModel
import Foundation
import Synchronization

/// AWS Signature Version 4 (`AWS4-HMAC-SHA256`), as botocore signs and AWS verifies: one implementation for the
/// remote client (signing) and the server (verifying every request). Headers-only signatures; the payload hash is
/// `X-Amz-Content-Sha256` when the request carries it (S3), else the body's SHA-256.
public enum SigV4 {
    public static let algorithm = "AWS4-HMAC-SHA256"
    /// The SHA-256 of an empty body.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// A request as it is signed: the path and query exactly as sent (percent-encoded), the headers, the payload hash.
    public struct Request: Sendable, Equatable {
        public var method: String
        /// The path as it appears in the request line, percent-encoded (`/`, `/bucket/my%20key`).
        public var path: String
        /// The query string as sent, without `?` (`Action=ListUsers&Version=2010-05-08`).
        public var query: String
        public var headers: [(name: String, value: String)]
        /// Hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`.
        public var payloadHash: String

        public init(method: String, path: String, query: String = "", headers: [(name: String, value: String)], payloadHash: String) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.payloadHash = payloadHash
        }

        public init(method: String, path: String, query: String = "", headers: [(name: String, value: String)], body: some DataProtocol) {
            self.init(method: method, path: path, query: query, headers: headers, payloadHash: SigV4.hex(SHA256.hash(data: body)))
        }

        public static func == (a: Request, b: Request) -> Bool {
            a.method == b.method && a.path == b.path && a.query == b.query && a.payloadHash == b.payloadHash
                && a.headers.map(\.name) == b.headers.map(\.name) && a.headers.map(\.value) == b.headers.map(\.value)
        }

        /// `name` lowercase; a header sent in another case is found too.
        func header(_ name: String) -> String? {
            if let exact = headers.first(where: { $0.name == name }) { return exact.value }
            return headers.first { $0.name.lowercased() == name }?.value
        }
    }

    /// Where and what a signature is for: `20150830/us-east-1/iam/aws4_request`.
    public struct Scope: Sendable, Equatable {
        public var date: String
        public var region: String
        public var service: String

        public init(date: String, region: String, service: String) {
            self.date = date
            self.region = region
            self.service = service
        }

        public var text: String { "\(date)/\(region)/\(service)/aws4_request" }
    }

    // MARK: Signing

    /// The `Authorization` header for `request` (which must carry `X-Amz-Date` and `Host`), signing every header it
    /// carries except `Authorization` itself.
    public static func authorization(
        for request: Request, accessKeyId: String, secretAccessKey: String, region: String, service: String
    ) -> String {
        let amzDate = request.header("x-amz-date") ?? ""
        let scope = Scope(date: String(amzDate.prefix(8)), region: region, service: service)
        let signed = signedHeaderNames(request.headers.map(\.name).filter { $0.lowercased() != "authorization" })
        let signature = self.signature(
            request, signedHeaders: signed, scope: scope, amzDate: amzDate, secretAccessKey: secretAccessKey, service: service)
        return "\(algorithm) Credential=\(accessKeyId)/\(scope.text), SignedHeaders=\(signed.joined(separator: ";")), Signature=\(signature)"
    }

    /// Whether `names` are lowercase, sorted and without repeats (what ``signedHeaderNames(_:)`` makes).
    static func isSortedLowercaseUnique(_ names: [String]) -> Bool {
        for (index, name) in names.enumerated() {
            if name.utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) { return false }
            if index > 0, !(names[index - 1] < name) { return false }
        }
        return true
    }

    static func signedHeaderNames(_ names: [String]) -> [String] {
        Array(Set(names.map { $0.lowercased() })).sorted()
    }

    static func signature(
        _ request: Request, signedHeaders: [String], scope: Scope, amzDate: String, secretAccessKey: String, service: String
    ) -> String {
        let canonical = canonicalRequest(request, signedHeaders: signedHeaders, service: service)
        let stringToSign = [algorithm, amzDate, scope.text, hex(SHA256.hash(data: Data(canonical.utf8)))].joined(separator: "\n")
        let key = signingKey(secretAccessKey: secretAccessKey, scope: scope)
        return hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key))
    }

    /// Signing keys already derived, by secret and scope: a server verifies many requests of the same key on the
    /// same day, and the four HMACs were a fifth of verifying. Bounded; kept in memory only.
    static let signingKeys = Mutex<[String: SymmetricKey]>([:])

    /// The signing key: HMAC chain over the date, region, service and `aws4_request`.
    static func signingKey(secretAccessKey: String, scope: Scope) -> SymmetricKey {
        let cacheKey = secretAccessKey + "\u{0}" + scope.text
        if let known = signingKeys.withLock({ $0[cacheKey] }) { return known }
        let key = deriveSigningKey(secretAccessKey: secretAccessKey, scope: scope)
        signingKeys.withLock { keys in
            if keys.count >= 65_536 { keys.removeAll() }
            keys[cacheKey] = key
        }
        return key
    }

    static func deriveSigningKey(secretAccessKey: String, scope: Scope) -> SymmetricKey {
        var key = SymmetricKey(data: Data(("AWS4" + secretAccessKey).utf8))
        for part in [scope.date, scope.region, scope.service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        return key
    }

    /// The canonical request of SigV4, as botocore builds it.
    public static func canonicalRequest(_ request: Request, signedHeaders: [String], service: String) -> String {
        var text = request.method.uppercased()
        text.reserveCapacity(512)
        text += "\n" + canonicalPath(request.path, service: service) + "\n" + canonicalQuery(request.query) + "\n"
        for name in signedHeaders {
            // Every value of the header in the order sent, joined by commas; names compared case-insensitively
            // (a server's headers are lowercase already, so the cheap comparison is tried first).
            var first = true
            text += name + ":"
            for header in request.headers where header.name == name || (header.name.utf8.count == name.utf8.count && header.name.lowercased() == name)
            {
                if !first { text += "," }
                text += trimmed(header.value)
                first = false
            }
            text += "\n"
        }
        text += "\n" + signedHeaders.joined(separator: ";") + "\n" + request.payloadHash
        return text
    }

    /// S3 signs the path as sent; other services sign it normalized (`.`, `..`, empty segments removed) and encoded
    /// once more, as botocore does.
    static func canonicalPath(_ path: String, service: String) -> String {
        let raw = path.isEmpty ? "/" : path
        if service == "s3" { return raw }
        var segments: [Substring] = []
        for part in raw.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." {
                _ = segments.popLast()
                continue
            }
            segments.append(part)
        }
        var normalized = "/" + segments.joined(separator: "/")
        if raw.hasSuffix("/"), normalized != "/" { normalized += "/" }
        return encode(normalized, keepingSlash: true)
    }

    /// Query parameters sorted by name then value, each encoded with the RFC 3986 unreserved set.
    static func canonicalQuery(_ query: String) -> String {
        guard !query.isEmpty else { return "" }
        let pairs = query.split(separator: "&", omittingEmptySubsequences: true).map { part -> (String, String) in
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = decode(String(pieces[0]))
            let value = pieces.count > 1 ? decode(String(pieces[1])) : ""
            return (encode(name, keepingSlash: false), encode(value, keepingSlash: false))
        }
        return pairs.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// The value with leading and trailing blanks removed and inner runs of spaces collapsed (the common case, a
    /// value with none, is returned as it is).
    static func trimmed(_ value: String) -> String {
        let bytes = value.utf8
        var clean = bytes.first != UInt8(ascii: " ") && bytes.first != UInt8(ascii: "\t")
        clean = clean && bytes.last != UInt8(ascii: " ") && bytes.last != UInt8(ascii: "\t")
        if clean {
            var previousSpace = false
            for byte in bytes {
                let space = byte == UInt8(ascii: " ")
                if space && previousSpace || byte == UInt8(ascii: "\t") {
                    clean = false
                    break
                }
                previousSpace = space
            }
        }
        if clean { return value }
        return value.trimmingCharacters(in: .whitespaces).split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }

    static let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~".utf8)

    /// RFC 3986 percent-encoding of everything but the unreserved characters (and `/` when `keepingSlash`), as
    /// SigV4 and S3 paths need it.
    public static func encode(_ text: String, keepingSlash: Bool) -> String {
        var out = ""
        for byte in text.utf8 {
            if unreserved.contains(byte) || (keepingSlash && byte == UInt8(ascii: "/")) {
                out.append(Character(Unicode.Scalar(byte)))
            } else {
                let digits = Array("0123456789ABCDEF".unicodeScalars)
                out.unicodeScalars.append("%")
                out.unicodeScalars.append(digits[Int(byte >> 4)])
                out.unicodeScalars.append(digits[Int(byte & 0x0F)])
            }
        }
        return out
    }

    static func decode(_ text: String) -> String {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? text
    }

    /// Lowercase hex, without Foundation's format machinery (it was a tenth of a server's time per request).
    public static func hex(_ digest: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: Verifying

    /// Why a request is refused, with the exception name AWS answers with.
    public enum Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        /// No `Authorization` header (or not SigV4).
        case missing
        /// The access key is not known (or is inactive).
        case unknownKey(String)
        /// The header cannot be read, the scope is for another service, or the signature does not match.
        case invalidSignature(String)
        /// `X-Amz-Date` is more than the allowed skew from now.
        case expired(String)

        /// The AWS JSON 1.1 exception name.
        public var code: String {
            switch self {
            case .missing: return "MissingAuthenticationTokenException"
            case .unknownKey: return "UnrecognizedClientException"
            case .invalidSignature, .expired: return "InvalidSignatureException"
            }
        }

        public var description: String {
            switch self {
            case .missing: return "Request is missing Authentication Token"
            case .unknownKey: return "The security token included in the request is invalid."
            case .invalidSignature(let why): return why
            case .expired(let why): return why
            }
        }
    }

    /// Who signed a request that verified.
    public struct Signer: Sendable, Equatable {
        public var accessKeyId: String
        public var scope: Scope
        /// The headers the signature covers (lowercase, sorted).
        public var signedHeaders: [String] = []
    }

    /// Verifies `request`'s `Authorization` header: the algorithm, the access key (`secret(accessKeyId)` answers nil
    /// for an unknown one), the service of the scope (any of `services`; any region), `X-Amz-Date` within
    /// `allowedSkew` of `now`, the payload hash, and the signature (compared in constant time).
    public static func verify(
        _ request: Request, services: Set<String>, now: Date = Date(), allowedSkew: TimeInterval = 15 * 60,
        secret: (String) -> String?
    ) throws(Refusal) -> Signer {
        guard let header = request.header("authorization"), header.hasPrefix(algorithm + " ") else { throw .missing }
        let fields = authorizationFields(header.utf8.dropFirst(algorithm.utf8.count + 1))
        guard let credential = fields["Credential"], let signedList = fields["SignedHeaders"], let signature = fields["Signature"] else {
            throw .invalidSignature("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.")
        }
        let parts = split(credential, on: UInt8(ascii: "/"))
        guard parts.count == 5, parts[4] == "aws4_request" else {
            throw .invalidSignature("Credential should be scoped to a valid date, region, service and 'aws4_request'.")
        }
        let scope = Scope(date: parts[1], region: parts[2], service: parts[3])
        guard services.contains(scope.service) else {
            throw .invalidSignature("Credential should be scoped to correct service: '\(services.sorted().joined(separator: "' or '"))'.")
        }
        guard let secretAccessKey = secret(parts[0]) else { throw .unknownKey(parts[0]) }
        guard let amzDate = request.header("x-amz-date"), let signedAt = parseAmzDate(amzDate), amzDate.hasPrefix(scope.date) else {
            throw .invalidSignature("X-Amz-Date is missing or does not match the date of the credential scope.")
        }
        if abs(signedAt.timeIntervalSince(now)) > allowedSkew {
            throw .expired(
                "Signature expired: \(amzDate) is now earlier than \(formatAmzDate(now.addingTimeInterval(-allowedSkew))) (\(formatAmzDate(now)) - \(Int(allowedSkew / 60)) min.)"
            )
        }
        let signedHeaders = split(signedList, on: UInt8(ascii: ";")).filter { !$0.isEmpty }
        guard signedHeaders.contains("host"), isSortedLowercaseUnique(signedHeaders) else {
            throw .invalidSignature("SignedHeaders must be sorted, lowercase, and include host.")
        }
        if let declared = request.header("x-amz-content-sha256"), declared != "UNSIGNED-PAYLOAD", declared != request.payloadHash {
            throw .invalidSignature("The provided 'x-amz-content-sha256' header does not match what was computed.")
        }
        var signedRequest = request
        if let declared = request.header("x-amz-content-sha256") { signedRequest.payloadHash = declared }
        let expected = self.signature(
            signedRequest, signedHeaders: signedHeaders, scope: scope, amzDate: amzDate, secretAccessKey: secretAccessKey, service: scope.service)
        guard constantTimeEqual(expected, signature) else {
            throw .invalidSignature(
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."
            )
        }
        return Signer(accessKeyId: parts[0], scope: scope, signedHeaders: signedHeaders)
    }

    /// The `name=value` fields of an `Authorization` header after its algorithm, split on commas, blanks before a
    /// name skipped; read by bytes (splitting by `Character` was a visible share of verifying).
    static func authorizationFields(_ bytes: Substring.UTF8View) -> [String: String] {
        var fields: [String: String] = [:]
        for part in bytes.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: true) {
            let field = part.drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
            guard let equals = field.firstIndex(of: UInt8(ascii: "=")), equals != field.startIndex, field.index(after: equals) != field.endIndex
            else { continue }
            fields[String(decoding: field[..<equals], as: UTF8.self)] = String(decoding: field[field.index(after: equals)...], as: UTF8.self)
        }
        return fields
    }

    /// `text` split on a byte, empty pieces kept.
    static func split(_ text: String, on separator: UInt8) -> [String] {
        text.utf8.split(separator: separator, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Compares two secrets or signatures without leaking where they differ.
    public static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }

    /// `20150830T123600Z`.
    public static func formatAmzDate(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(
            format: "%04d%02d%02dT%02d%02d%02dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday), Int(parts.tm_hour),
            Int(parts.tm_min), Int(parts.tm_sec))
    }

    /// `YYYYMMDDTHHMMSSZ` (every signed request has one; read byte by byte, the ranges checked by `Timestamp.utc`).
    static func parseAmzDate(_ text: String) -> Date? {
        var text = text
        text.makeContiguousUTF8()
        return text.utf8.withContiguousStorageIfAvailable { bytes -> Date? in
            guard bytes.count == 16, bytes[8] == UInt8(ascii: "T"), bytes[15] == UInt8(ascii: "Z") else { return nil }
            func number(_ from: Int, _ to: Int) -> Int? {
                var value = 0
                for index in from..<to {
                    let digit = bytes[index] &- UInt8(ascii: "0")
                    guard digit < 10 else { return nil }
                    value = value * 10 + Int(digit)
                }
                return value
            }
            guard let year = number(0, 4), let month = number(4, 6), let day = number(6, 8), let hour = number(9, 11),
                let minute = number(11, 13), let second = number(13, 15)
            else { return nil }
            return Timestamp.utc(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        } ?? nil
    }
}
