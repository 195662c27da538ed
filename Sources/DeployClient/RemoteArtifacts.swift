import AWSWire
import ArtifactStore
import Foundation

/// Uploads bundles to a server's S3 API (`push --endpoint-url`), as `aws deploy push` does: one PutObject up to
/// ``partSize``, a multipart upload above it, one part in memory at a time.
public struct RemoteArtifacts: ObjectUploading {
    public static let partSize = 8 << 20
    let client: SignedClient

    public init(client: SignedClient) {
        self.client = client
    }

    static func objectPath(bucket: String, key: String) -> String {
        "/" + SigV4.encode(bucket, keepingSlash: false) + "/" + SigV4.encode(key, keepingSlash: true)
    }

    public func upload(bucket: String, key: String, contentsOf file: URL) async throws -> StoredObject {
        let handle: FileHandle
        do {
            handle = try FileHandle(forReadingFrom: file)
        } catch {
            throw RemoteError("cannot read \(file.path): \(error.localizedDescription)")
        }
        defer { try? handle.close() }
        let size = Int64((try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? NSNumber)?.int64Value ?? 0)
        let path = Self.objectPath(bucket: bucket, key: key)
        if size <= Int64(Self.partSize) {
            let body = (try? handle.readToEnd()) ?? Data()
            let answer = try await client.send(method: "PUT", path: path, body: body, service: "s3")
            try Self.check(answer, "PutObject", bucket: bucket, key: key)
            return StoredObject(
                bucket: bucket, key: key, eTag: Self.unquoted(answer.header("ETag")), versionId: answer.header("x-amz-version-id") ?? "",
                size: size, path: "")
        }
        let created = try await client.send(method: "POST", path: path, query: "uploads=", body: Data(), service: "s3")
        try Self.check(created, "CreateMultipartUpload", bucket: bucket, key: key)
        guard let uploadId = Self.element("UploadId", in: created.body) else {
            throw RemoteError("CreateMultipartUpload for s3://\(bucket)/\(key) answered no UploadId")
        }
        let uploadQuery = "uploadId=" + SigV4.encode(uploadId, keepingSlash: false)
        do {
            var parts: [(Int, String)] = []
            var number = 1
            while let chunk = try handle.read(upToCount: Self.partSize), !chunk.isEmpty {
                let answer = try await client.send(
                    method: "PUT", path: path, query: "partNumber=\(number)&" + uploadQuery, body: chunk, service: "s3")
                try Self.check(answer, "UploadPart", bucket: bucket, key: key)
                parts.append((number, answer.header("ETag") ?? ""))
                number += 1
            }
            let list = parts.map { "<Part><PartNumber>\($0.0)</PartNumber><ETag>\(S3XML.escape($0.1))</ETag></Part>" }.joined()
            let body = Data("<CompleteMultipartUpload xmlns=\"\(S3XML.namespace)\">\(list)</CompleteMultipartUpload>".utf8)
            let done = try await client.send(method: "POST", path: path, query: uploadQuery, body: body, service: "s3")
            try Self.check(done, "CompleteMultipartUpload", bucket: bucket, key: key)
            return StoredObject(
                bucket: bucket, key: key, eTag: Self.unquoted(Self.element("ETag", in: done.body) ?? done.header("ETag")),
                versionId: done.header("x-amz-version-id") ?? "", size: size, path: "")
        } catch {
            _ = try? await client.send(method: "DELETE", path: path, query: uploadQuery, body: Data(), service: "s3")
            throw error
        }
    }

    static func check(_ answer: SignedClient.Answer, _ operation: String, bucket: String, key: String) throws {
        guard !(200..<300).contains(answer.status) else { return }
        let code = element("Code", in: answer.body) ?? "HTTP \(answer.status)"
        let message = element("Message", in: answer.body) ?? ""
        throw RemoteError("An error occurred (\(code)) when calling the \(operation) operation on s3://\(bucket)/\(key): \(message)")
    }

    static func element(_ name: String, in body: Data) -> String? {
        S3XML.elementText(name, in: String(decoding: body, as: UTF8.self))
    }

    static func unquoted(_ text: String?) -> String {
        (text ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "\""))
    }
}
