import AWSWire
import ArtifactStore
import ControlPlane
import Crypto
import Foundation
import Hummingbird
import NIOCore

/// The artifact store over S3's REST protocol, path-style (`/<bucket>/<key>`), SigV4 service `s3`: enough for
/// `aws s3 cp`, boto3's `upload_file`/`download_file` and `deployctl push --endpoint-url`. Objects stream to and
/// from disk (memory stays flat whatever their size); errors are S3's XML errors.
struct S3Routes {
    let responder: ServerResponder
    let requestId: String
    var store: ArtifactStore { responder.artifacts }

    struct Failure: Error {
        var status: Int
        var code: String
        var message: String
    }

    func error(_ status: Int, _ code: String, _ message: String, operation: String, resource: String, head: Bool) -> WireResponse {
        if head { return WireResponse(status: status, operation: operation, errorCode: code) }
        return WireResponse(
            status: status, contentType: "application/xml",
            text: S3XML.error(code: code, message: message, resource: resource, requestId: requestId), operation: operation, errorCode: code)
    }

    /// The S3 operation a request is, by method, path shape and query.
    static func operation(method: String, bucket: String?, key: String?, parameters: [String: String]) -> String {
        switch (method, bucket != nil, key != nil) {
        case ("GET", false, _): return "ListBuckets"
        case ("GET", true, false):
            return parameters["location"] != nil ? "GetBucketLocation" : parameters["list-type"] == "2" ? "ListObjectsV2" : "ListObjects"
        case ("HEAD", true, false): return "HeadBucket"
        case ("PUT", true, false): return "CreateBucket"
        case ("DELETE", true, false): return "DeleteBucket"
        case ("GET", true, true): return "GetObject"
        case ("HEAD", true, true): return "HeadObject"
        case ("PUT", true, true):
            return parameters["uploadId"] != nil ? "UploadPart" : parameters["x-id"] == "CopyObject" ? "CopyObject" : "PutObject"
        case ("DELETE", true, true): return parameters["uploadId"] != nil ? "AbortMultipartUpload" : "DeleteObject"
        case ("POST", true, true):
            return parameters["uploads"] != nil ? "CreateMultipartUpload" : parameters["uploadId"] != nil ? "CompleteMultipartUpload" : "PostObject"
        default: return "Unsupported"
        }
    }

    func handle(_ request: Request, _ wire: WireRequest, keyId: inout String) async -> WireResponse {
        let parameters = wire.parameters
        let head = wire.method == "HEAD"
        // A route is chosen only from a well-formed path: `/bucket/%zz` is not DeleteBucket of `bucket`.
        guard let resource = wire.path.removingPercentEncoding else {
            return self.error(
                400, "InvalidURI", "Couldn't parse the specified URI: a percent sign must be followed by two hex digits.", operation: "Unknown",
                resource: LogText.clean(wire.path, limit: 100), head: head)
        }
        let segments = wire.path.dropFirst().split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let bucket = segments.first.flatMap { $0.isEmpty ? nil : String($0).removingPercentEncoding }
        let rawKey = segments.count > 1 ? String(segments[1]) : ""
        let key = rawKey.isEmpty ? nil : rawKey.removingPercentEncoding
        let operation = Self.operation(method: wire.method, bucket: bucket, key: key, parameters: parameters)

        // Authenticate before anything else; the body's hash is checked while it streams (below).
        let declaredHash = wire.header("x-amz-content-sha256")
        if let refusal = authorize(wire, operation: operation, bucket: bucket, key: key, resource: resource, head: head, keyId: &keyId) {
            return refusal
        }
        do {
            switch operation {
            case "ListBuckets": return listBuckets()
            case "CreateBucket": return try createBucket(bucket ?? "")
            case "HeadBucket":
                guard store.bucketExists(bucket ?? "") else {
                    throw Failure(status: 404, code: "NoSuchBucket", message: "The specified bucket does not exist")
                }
                return WireResponse(status: 200, operation: operation)
            case "DeleteBucket": return try deleteBucket(bucket ?? "")
            case "GetBucketLocation":
                try requireBucket(bucket ?? "")
                return WireResponse(
                    status: 200, contentType: "application/xml", text: S3XML.document("LocationConstraint", ""), operation: operation)
            case "ListObjectsV2": return try listObjects(bucket ?? "", parameters)
            case "GetObject", "HeadObject":
                return try getObject(bucket ?? "", key ?? "", parameters, range: wire.header("range"), head: head, operation: operation)
            case "DeleteObject":
                try requireBucket(bucket ?? "")
                try mapped { () throws(ArtifactStoreError) in try store.delete(bucket: bucket ?? "", key: key ?? "", version: parameters["versionId"])
                }
                return WireResponse(status: 204, operation: operation)
            case "PutObject":
                return try await putObject(request, wire, bucket ?? "", key ?? "", declaredHash: declaredHash)
            case "CreateMultipartUpload":
                let uploadId = try mapped { () throws(ArtifactStoreError) in
                    if !store.bucketExists(bucket ?? "") { try store.createBucket(bucket ?? "") }
                    return try store.createMultipartUpload(bucket: bucket ?? "", key: key ?? "")
                }
                let xml = S3XML.document(
                    "InitiateMultipartUploadResult",
                    S3XML.element("Bucket", bucket ?? "") + S3XML.element("Key", key ?? "") + S3XML.element("UploadId", uploadId))
                return WireResponse(status: 200, contentType: "application/xml", text: xml, operation: operation)
            case "UploadPart":
                return try await uploadPart(request, wire, bucket ?? "", key ?? "", parameters, declaredHash: declaredHash)
            case "CompleteMultipartUpload":
                return try await completeMultipartUpload(request, bucket ?? "", key ?? "", parameters)
            case "AbortMultipartUpload":
                let uploadId = parameters["uploadId"] ?? ""
                try requireUpload(uploadId, bucket: bucket ?? "", key: key ?? "")
                try multipart { () throws(MultipartError) in try store.abortMultipartUpload(uploadId: uploadId) }
                return WireResponse(status: 204, operation: operation)
            default:
                throw Failure(status: 501, code: "NotImplemented", message: "Not implemented.")
            }
        } catch let failure as Failure {
            return self.error(failure.status, failure.code, failure.message, operation: operation, resource: resource, head: head)
        } catch {
            return self.error(
                500, "InternalError", "We encountered an internal error. Please try again.", operation: operation, resource: resource, head: head)
        }
    }

    /// Who signed the request, and whether that caller may do `operation` on this resource: nil when it may, else
    /// the refusal to send (a bad signature, an operation deployctl does not implement, a role that does not allow
    /// it, an instance reading what is not the bundle of its own deployment in flight).
    private func authorize(
        _ wire: WireRequest, operation: String, bucket: String?, key: String?, resource: String, head: Bool, keyId: inout String
    ) -> WireResponse? {
        let payloadHash = wire.header("x-amz-content-sha256") ?? SigV4.emptyPayloadHash
        let signed = SigV4.Request(method: wire.method, path: wire.path, query: wire.query, headers: wire.headers, payloadHash: payloadHash)
        let role: AccessRole
        let userName: String
        do {
            let signer = try responder.credentials.verify(signed, services: ["s3"])
            keyId = signer.accessKeyId
            role = signer.role
            userName = signer.userName
        } catch {
            let code: String
            switch error {
            case .missing: code = "AccessDenied"
            case .unknownKey: code = "InvalidAccessKeyId"
            case .expired: code = "RequestTimeTooSkewed"
            case .invalidSignature: code = "SignatureDoesNotMatch"
            }
            return self.error(403, code, error.description, operation: operation, resource: resource, head: head)
        }
        guard operation != "Unsupported", operation != "PostObject", operation != "CopyObject", operation != "ListObjects" else {
            return self.error(
                501, "NotImplemented",
                "deployctl's artifact store does not implement \(wire.method) \(operation == "Unsupported" ? "on this resource" : operation).",
                operation: operation, resource: resource, head: head)
        }
        guard role.allows(operation) else {
            return self.error(
                403, "AccessDenied", "The access key \(keyId) (role \(role.rawValue)) is not allowed to call \(operation).", operation: operation,
                resource: resource, head: head)
        }
        if role == .instance {
            // An instance's key reads the bundles of deployments in flight on that instance, nothing else.
            var allowed = false
            do {
                allowed = try responder.plane.instanceMayRead(instanceName: userName, bucket: bucket ?? "", key: key ?? "")
            } catch {
                // The store could not say: refused, and said why.
                responder.logger.error("cannot check an instance's read", metadata: ["request_id": .string(requestId), "error": .string("\(error)")])
            }
            guard allowed else {
                responder.logger.warning(
                    "object read refused",
                    metadata: [
                        "request_id": .string(requestId), "key_id": .string(keyId), "caller_instance": .string(userName),
                        "resource": .string(LogText.clean(resource)),
                    ])
                return self.error(
                    403, "AccessDenied",
                    "The instance \(userName) may read only the bundle of a deployment in progress on it, not \(LogText.clean(resource)).",
                    operation: operation, resource: resource, head: head)
            }
        }
        return nil
    }

    // MARK: Buckets

    func requireBucket(_ name: String) throws {
        guard store.bucketExists(name) else { throw Failure(status: 404, code: "NoSuchBucket", message: "The specified bucket does not exist") }
    }

    func listBuckets() -> WireResponse {
        let buckets = store.buckets().map {
            "<Bucket>" + S3XML.element("Name", $0.name) + S3XML.element("CreationDate", S3XML.timestamp($0.creationDate)) + "</Bucket>"
        }
        let xml = S3XML.document(
            "ListAllMyBucketsResult",
            "<Owner><ID>deployctl</ID><DisplayName>deployctl</DisplayName></Owner><Buckets>" + buckets.joined() + "</Buckets>")
        return WireResponse(status: 200, contentType: "application/xml", text: xml, operation: "ListBuckets")
    }

    func createBucket(_ name: String) throws -> WireResponse {
        try mapped { () throws(ArtifactStoreError) in _ = try store.createBucket(name) }
        return WireResponse(status: 200, headers: [("Location", "/" + name)], operation: "CreateBucket")
    }

    func deleteBucket(_ name: String) throws -> WireResponse {
        let removed = try mapped { () throws(ArtifactStoreError) in try store.deleteBucket(name) }
        guard removed else { throw Failure(status: 409, code: "BucketNotEmpty", message: "The bucket you tried to delete is not empty") }
        return WireResponse(status: 204, operation: "DeleteBucket")
    }

    func listObjects(_ bucket: String, _ parameters: [String: String]) throws -> WireResponse {
        let maxKeys = min(max(Int(parameters["max-keys"] ?? "") ?? 1000, 0), 1000)
        let prefix = parameters["prefix"] ?? ""
        let delimiter = parameters["delimiter"].flatMap { $0.isEmpty ? nil : $0 }
        var startAfter = parameters["start-after"]
        if let token = parameters["continuation-token"] {
            guard let data = Data(base64Encoded: token), let text = String(data: data, encoding: .utf8) else {
                throw Failure(status: 400, code: "InvalidArgument", message: "The continuation token provided is incorrect")
            }
            startAfter = text
        }
        let listing = try mapped { () throws(ArtifactStoreError) in
            try store.list(bucket: bucket, prefix: prefix, delimiter: delimiter, startAfter: startAfter, maxKeys: maxKeys)
        }
        let urlEncoded = parameters["encoding-type"] == "url"
        func text(_ value: String) -> String {
            urlEncoded ? (value.addingPercentEncoding(withAllowedCharacters: Self.urlUnreserved) ?? value) : value
        }
        var children = S3XML.element("Name", bucket) + S3XML.element("Prefix", text(prefix))
        if let delimiter { children += S3XML.element("Delimiter", text(delimiter)) }
        if urlEncoded { children += S3XML.element("EncodingType", "url") }
        children += S3XML.element("KeyCount", String(listing.objects.count + listing.commonPrefixes.count))
        children += S3XML.element("MaxKeys", String(maxKeys))
        children += S3XML.element("IsTruncated", listing.nextStartAfter == nil ? "false" : "true")
        if let token = parameters["continuation-token"] { children += S3XML.element("ContinuationToken", token) }
        if let next = listing.nextStartAfter { children += S3XML.element("NextContinuationToken", Data(next.utf8).base64EncodedString()) }
        if let after = parameters["start-after"] { children += S3XML.element("StartAfter", text(after)) }
        for object in listing.objects {
            children +=
                "<Contents>" + S3XML.element("Key", text(object.key)) + S3XML.element("LastModified", S3XML.timestamp(modified(object)))
                + S3XML.element("ETag", "\"\(object.eTag)\"") + S3XML.element("Size", String(object.size))
                + S3XML.element("StorageClass", "STANDARD") + "</Contents>"
        }
        for prefix in listing.commonPrefixes { children += "<CommonPrefixes>" + S3XML.element("Prefix", text(prefix)) + "</CommonPrefixes>" }
        return WireResponse(
            status: 200, contentType: "application/xml", text: S3XML.document("ListBucketResult", children), operation: "ListObjectsV2")
    }

    static let urlUnreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~/")

    // MARK: Objects

    func modified(_ object: StoredObject) -> Date {
        (try? FileManager.default.attributesOfItem(atPath: object.path)[.modificationDate] as? Date) ?? Date()
    }

    func objectHeaders(_ object: StoredObject) -> [(String, String)] {
        [
            ("ETag", "\"\(object.eTag)\""), ("Last-Modified", S3XML.httpDate(modified(object))), ("x-amz-version-id", object.versionId),
            ("Accept-Ranges", "bytes"), ("Content-Type", "binary/octet-stream"),
        ]
    }

    func getObject(_ bucket: String, _ key: String, _ parameters: [String: String], range: String?, head: Bool, operation: String) throws
        -> WireResponse
    {
        try requireBucket(bucket)
        let object: StoredObject
        do {
            object = try store.head(bucket: bucket, key: key, version: parameters["versionId"])
        } catch .noSuchObject(_, _, let version) {
            if version != nil {
                throw Failure(status: 404, code: "NoSuchVersion", message: "The specified version does not exist.")
            }
            throw Failure(status: 404, code: "NoSuchKey", message: "The specified key does not exist.")
        } catch {
            throw Self.failure(error)
        }
        var headers = objectHeaders(object)
        var status = 200
        var first: Int64 = 0
        var length = object.size
        if let range {
            guard let (from, to) = Self.byteRange(range, size: object.size) else {
                throw Failure(status: 416, code: "InvalidRange", message: "The requested range is not satisfiable")
            }
            first = from
            length = to - from + 1
            status = 206
            headers.append(("Content-Range", "bytes \(from)-\(to)/\(object.size)"))
        }
        headers.append(("Content-Length", String(length)))
        if head { return WireResponse(status: status, headers: headers, operation: operation) }
        let fd = open(object.path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw Failure(status: 500, code: "InternalError", message: "cannot read the object") }
        let descriptor = FileDescriptorBox(fd)
        let start = first
        let total = length
        let files = responder.files
        let body = ResponseBody(contentLength: Int(length)) { writer in
            defer { descriptor.close() }
            var offset = start
            let end = start + total
            while offset < end {
                let want = Int(min(Int64(256 << 10), end - offset))
                let at = offset
                // The read blocks (a cold page cache, a slow disk): it runs on the file threads.
                let buffer = try await files.perform { () -> ByteBuffer in
                    var buffer = ByteBufferAllocator().buffer(capacity: want)
                    buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { raw in
                        max(0, pread(descriptor.fd, raw.baseAddress, want, off_t(at)))
                    }
                    return buffer
                }
                if buffer.readableBytes == 0 { throw Failure(status: 500, code: "InternalError", message: "the object is shorter than its size") }
                offset += Int64(buffer.readableBytes)
                try await writer.write(buffer)
            }
            try await writer.finish(nil)
        }
        return WireResponse(status: status, headers: headers, body: body, operation: operation)
    }

    /// `bytes=a-b`, `bytes=a-`, `bytes=-n` (one range) → inclusive offsets within `size`, or nil when unsatisfiable.
    static func byteRange(_ header: String, size: Int64) -> (Int64, Int64)? {
        guard header.hasPrefix("bytes="), !header.contains(",") else { return nil }
        let spec = header.dropFirst(6).split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard spec.count == 2 else { return nil }
        if spec[0].isEmpty {
            guard let suffix = Int64(spec[1]), suffix > 0, size > 0 else { return nil }
            return (max(0, size - suffix), size - 1)
        }
        guard let from = Int64(spec[0]), from >= 0, from < size else { return nil }
        let to = spec[1].isEmpty ? size - 1 : min(Int64(spec[1]) ?? -1, size - 1)
        guard to >= from else { return nil }
        return (from, to)
    }

    func putObject(_ request: Request, _ wire: WireRequest, _ bucket: String, _ key: String, declaredHash: String?) async throws -> WireResponse {
        try mapped { () throws(ArtifactStoreError) in
            if !store.bucketExists(bucket) { try store.createBucket(bucket) }
        }
        let received = try await receiveBody(request, wire, declaredHash: declaredHash)
        do {
            let object = try store.adopt(bucket: bucket, key: key, file: received.path, sha256: received.sha256, size: received.size)
            return WireResponse(
                status: 200, headers: [("ETag", "\"\(object.eTag)\""), ("x-amz-version-id", object.versionId)], operation: "PutObject")
        } catch {
            unlink(received.path)
            throw Self.failure(error)
        }
    }

    /// An upload id is good only with the bucket and key it was made for: one upload's id cannot write, complete or
    /// abort another object's upload.
    func requireUpload(_ uploadId: String, bucket: String, key: String) throws {
        let target = try multipart { () throws(MultipartError) in try store.multipartTarget(uploadId: uploadId) }
        guard target.bucket == bucket, target.key == key else {
            throw Failure(status: 404, code: "NoSuchUpload", message: "The specified upload does not exist for this key.")
        }
    }

    func uploadPart(_ request: Request, _ wire: WireRequest, _ bucket: String, _ key: String, _ parameters: [String: String], declaredHash: String?)
        async throws -> WireResponse
    {
        let uploadId = parameters["uploadId"] ?? ""
        guard let number = Int(parameters["partNumber"] ?? ""), (1...S3XML.maxParts).contains(number) else {
            throw Failure(status: 400, code: "InvalidArgument", message: "Part number must be an integer between 1 and 10000, inclusive")
        }
        try requireUpload(uploadId, bucket: bucket, key: key)
        let received = try await receiveBody(request, wire, declaredHash: declaredHash)
        do {
            try store.adoptPart(uploadId: uploadId, number: number, file: received.path, sha256: received.sha256)
        } catch {
            unlink(received.path)
            throw Self.failure(error)
        }
        return WireResponse(status: 200, headers: [("ETag", "\"\(received.sha256)\"")], operation: "UploadPart")
    }

    func completeMultipartUpload(_ request: Request, _ bucket: String, _ key: String, _ parameters: [String: String]) async throws -> WireResponse {
        let uploadId = parameters["uploadId"] ?? ""
        try requireUpload(uploadId, bucket: bucket, key: key)
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: S3XML.maxCompletionBytes)
        } catch {
            throw Failure(
                status: 400, code: "MalformedXML",
                message: "The CompleteMultipartUpload body is larger than \(S3XML.maxCompletionBytes >> 20) MiB (room for \(S3XML.maxParts) parts).")
        }
        guard let parts = S3XML.completedParts(String(decoding: body.readableBytesView, as: UTF8.self)) else {
            throw Failure(
                status: 400, code: "MalformedXML",
                message: "The XML you provided was not well-formed or did not validate against our published schema")
        }
        guard parts.count <= S3XML.maxParts else {
            throw Failure(
                status: 400, code: "InvalidArgument", message: "An upload has at most \(S3XML.maxParts) parts; this one lists \(parts.count).")
        }
        let object = try multipart { () throws(MultipartError) in try store.completeMultipartUpload(uploadId: uploadId, parts: parts) }
        let xml = S3XML.document(
            "CompleteMultipartUploadResult",
            S3XML.element("Location", "/\(bucket)/\(key)") + S3XML.element("Bucket", bucket) + S3XML.element("Key", key)
                + S3XML.element("ETag", "\"\(object.eTag)\""))
        var answer = WireResponse(status: 200, contentType: "application/xml", text: xml, operation: "CompleteMultipartUpload")
        answer.headers.append(("x-amz-version-id", object.versionId))
        return answer
    }

    // MARK: Receiving a body

    struct ReceivedBody {
        var path: String
        var sha256: String
        var size: Int64
    }

    /// Streams the request body into a new file in the store (decoding `aws-chunked`), checking the declared
    /// length, the size limit, `x-amz-content-sha256`, `Content-MD5` and a CRC-32 checksum in a header or trailer.
    func receiveBody(_ request: Request, _ wire: WireRequest, declaredHash: String?) async throws -> ReceivedBody {
        let limit = responder.maxObjectBytes
        guard let declaredHash else {
            throw Failure(status: 400, code: "InvalidRequest", message: "Missing required header for this request: x-amz-content-sha256")
        }
        let chunked = declaredHash.hasPrefix("STREAMING-") || wire.header("content-encoding")?.contains("aws-chunked") == true
        if declaredHash.hasPrefix("STREAMING-AWS4-HMAC-SHA256") {
            throw Failure(
                status: 501, code: "NotImplemented",
                message:
                    "Signed aws-chunked uploads are not supported; send UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER or the payload's SHA-256."
            )
        }
        let expectedLength = Int64(wire.header(chunked ? "x-amz-decoded-content-length" : "content-length") ?? "")
        if let expectedLength, expectedLength > limit {
            throw Failure(
                status: 400, code: "EntityTooLarge", message: "Your proposed upload exceeds the maximum allowed size (\(limit) bytes on this server)."
            )
        }
        let incoming: (path: String, descriptor: Int32)
        do {
            incoming = try store.makeIncomingFile()
        } catch {
            throw Self.failure(error)
        }
        var keep = false
        defer {
            if !keep { unlink(incoming.path) }
        }
        var sha = SHA256()
        let contentMD5 = wire.header("content-md5")
        var md5 = Insecure.MD5()
        let trailerNames = (wire.header("x-amz-trailer") ?? "").lowercased().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let wantsCRC = trailerNames.contains("x-amz-checksum-crc32") || wire.header("x-amz-checksum-crc32") != nil
        var crc = CRC32()
        var size: Int64 = 0
        var decoder = chunked ? AWSChunkedDecoder() : nil
        do {
            defer { close(incoming.descriptor) }
            for try await buffer in request.body {
                try buffer.withUnsafeReadableBytes { raw in
                    func consume(_ bytes: UnsafeRawBufferPointer) throws {
                        size += Int64(bytes.count)
                        if size > limit {
                            throw Failure(
                                status: 400, code: "EntityTooLarge",
                                message: "Your proposed upload exceeds the maximum allowed size (\(limit) bytes on this server).")
                        }
                        sha.update(bufferPointer: bytes)
                        if contentMD5 != nil { md5.update(bufferPointer: bytes) }
                        if wantsCRC { crc.update(bytes) }
                        var done = 0
                        while done < bytes.count {
                            let n = write(incoming.descriptor, bytes.baseAddress?.advanced(by: done), bytes.count - done)
                            if n <= 0 {
                                let reason = String(cString: strerror(errno))
                                throw Failure(status: 500, code: "InternalError", message: "The server could not store the object: \(reason)")
                            }
                            done += n
                        }
                    }
                    if decoder != nil {
                        try decoder?.feed(raw, emit: consume)
                    } else {
                        try consume(raw)
                    }
                }
            }
        } catch let failure as Failure {
            throw failure
        } catch let malformed as AWSChunkedDecoder.Malformed {
            throw Failure(status: 400, code: "IncompleteBody", message: malformed.description)
        } catch {
            throw Failure(status: 400, code: "IncompleteBody", message: "The request body ended early or could not be read.")
        }
        if let decoder, !decoder.isComplete {
            throw Failure(status: 400, code: "IncompleteBody", message: "The aws-chunked body ended before its last chunk.")
        }
        if let expectedLength, expectedLength != size {
            throw Failure(
                status: 400, code: "IncompleteBody", message: "You did not provide the number of bytes specified by the Content-Length HTTP header.")
        }
        let digest = sha.finalize().hexString
        if declaredHash.count == 64, declaredHash.lowercased() != digest {
            throw Failure(
                status: 400, code: "XAmzContentSHA256Mismatch",
                message: "The provided 'x-amz-content-sha256' header does not match what was computed.")
        }
        if let contentMD5, contentMD5 != Data(md5.finalize()).base64EncodedString() {
            throw Failure(status: 400, code: "BadDigest", message: "The Content-MD5 you specified did not match what we received.")
        }
        let checksum = decoder?.trailers["x-amz-checksum-crc32"] ?? wire.header("x-amz-checksum-crc32")
        if let checksum, checksum != crc.base64 {
            throw Failure(status: 400, code: "BadDigest", message: "The CRC32 you specified did not match the calculated checksum.")
        }
        keep = true
        return ReceivedBody(path: incoming.path, sha256: digest, size: size)
    }

    // MARK: Errors

    func mapped<T>(_ body: () throws(ArtifactStoreError) -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw Self.failure(error)
        }
    }

    func multipart<T>(_ body: () throws(MultipartError) -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw Self.failure(error)
        }
    }

    static func failure(_ error: any Error) -> Failure {
        switch error {
        case let error as ArtifactStoreError:
            switch error {
            case .invalidBucketName: return Failure(status: 400, code: "InvalidBucketName", message: "The specified bucket is not valid.")
            case .invalidKey:
                return Failure(status: 400, code: "InvalidArgument", message: "\(error)")
            case .keyTooLong:
                return Failure(status: 400, code: "KeyTooLongError", message: "Your key is too long: \(error)")
            case .noSuchObject: return Failure(status: 404, code: "NoSuchKey", message: "The specified key does not exist.")
            case .noSuchBucket: return Failure(status: 404, code: "NoSuchBucket", message: "The specified bucket does not exist")
            case .io: return Failure(status: 500, code: "InternalError", message: "We encountered an internal error. Please try again.")
            }
        case let error as MultipartError:
            switch error {
            case .noSuchUpload:
                return Failure(
                    status: 404, code: "NoSuchUpload",
                    message: "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
            case .invalidPart(let n):
                return Failure(
                    status: 400, code: "InvalidPart",
                    message: "One or more of the specified parts could not be found (part \(n)), or its entity tag did not match.")
            case .invalidPartOrder:
                return Failure(status: 400, code: "InvalidPartOrder", message: "The list of parts was not in ascending order.")
            case .store(let inner): return failure(inner)
            }
        case let failure as Failure: return failure
        case let refusal as BlockingExecutor.Refusal: return Failure(status: 503, code: "SlowDown", message: refusal.description)
        default: return Failure(status: 500, code: "InternalError", message: "We encountered an internal error. Please try again.")
        }
    }
}

/// A descriptor a streaming response closes when it ends (or is abandoned by a dropped client).
final class FileDescriptorBox: @unchecked Sendable {
    let fd: Int32
    private var closed = false
    private let lock = NSLock()

    init(_ fd: Int32) { self.fd = fd }

    func close() {
        lock.lock()
        defer { lock.unlock() }
        if !closed {
            closed = true
            _ = Glibc.close(fd)
        }
    }

    deinit { close() }
}
