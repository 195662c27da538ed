import Crypto
import Foundation

/// Why a multipart request was refused, in S3's terms.
public enum MultipartError: Error, Sendable, Equatable {
    case noSuchUpload(String)
    /// A part named in the completion is missing or its ETag differs.
    case invalidPart(Int)
    /// Parts must be listed in ascending order.
    case invalidPartOrder
    case store(ArtifactStoreError)
}

/// S3 multipart uploads on the file store: each upload is a private folder `.uploads/<uploadId>` holding the target
/// and the parts received so far (`part-<n>` plus its SHA-256); completing it concatenates the parts into one new
/// object version, aborting removes the folder.
extension ArtifactStore {
    var uploadsDirectory: URL { root.appendingPathComponent(".uploads", isDirectory: true) }

    func uploadDirectory(_ uploadId: String) throws(MultipartError) -> URL {
        guard !uploadId.isEmpty, uploadId.count <= 64, uploadId.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
            throw .noSuchUpload(uploadId)
        }
        let directory = uploadsDirectory.appendingPathComponent(uploadId, isDirectory: true)
        guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("target").path) else { throw .noSuchUpload(uploadId) }
        return directory
    }

    /// Starts an upload to `bucket/key`; answers its id.
    public func createMultipartUpload(bucket: String, key: String) throws(ArtifactStoreError) -> String {
        try Self.validate(bucket: bucket, key: key)
        let uploadId = Self.newVersionId() + Self.newVersionId()
        let directory = uploadsDirectory.appendingPathComponent(uploadId, isDirectory: true)
        try makePrivateDirectories(down: directory)
        do {
            try Data((bucket + "\n" + key).utf8).write(to: directory.appendingPathComponent("target"), options: .atomic)
        } catch {
            throw .io("cannot start an upload to s3://\(bucket)/\(key): \(error.localizedDescription)")
        }
        return uploadId
    }

    /// The bucket and key an upload goes to.
    public func multipartTarget(uploadId: String) throws(MultipartError) -> (bucket: String, key: String) {
        let directory = try uploadDirectory(uploadId)
        guard let text = try? String(contentsOf: directory.appendingPathComponent("target"), encoding: .utf8),
            let newline = text.firstIndex(of: "\n")
        else { throw .noSuchUpload(uploadId) }
        return (String(text[..<newline]), String(text[text.index(after: newline)...]))
    }

    /// Makes `file` (streamed to ``incomingDirectory``, hashed) part `number` of the upload, replacing an earlier one.
    public func adoptPart(uploadId: String, number: Int, file: String, sha256: String) throws(MultipartError) {
        let directory = try uploadDirectory(uploadId)
        let part = directory.appendingPathComponent("part-\(number)")
        guard rename(file, part.path) == 0 else { throw .store(.io("cannot store part \(number): \(String(cString: strerror(errno)))")) }
        do {
            try Data(sha256.utf8).write(to: directory.appendingPathComponent("part-\(number).sha256"), options: .atomic)
        } catch {
            throw .store(.io("cannot store part \(number): \(error.localizedDescription)"))
        }
    }

    /// Joins the listed parts (ascending numbers, each with the ETag it was given) into a new version of the
    /// upload's object, streamed, and removes the upload.
    public func completeMultipartUpload(uploadId: String, parts: [(number: Int, eTag: String)]) throws(MultipartError) -> StoredObject {
        let directory = try uploadDirectory(uploadId)
        let (bucket, key) = try multipartTarget(uploadId: uploadId)
        guard !parts.isEmpty else { throw .invalidPart(0) }
        for (previous, next) in zip(parts, parts.dropFirst()) where next.number <= previous.number { throw .invalidPartOrder }
        let incoming: (path: String, descriptor: Int32)
        do {
            incoming = try makeIncomingFile()
        } catch {
            throw .store(error)
        }
        var hasher = SHA256()
        var size: Int64 = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var failure: MultipartError?
        partLoop: for part in parts {
            let path = directory.appendingPathComponent("part-\(part.number)").path
            let recorded = try? String(contentsOf: directory.appendingPathComponent("part-\(part.number).sha256"), encoding: .utf8)
            guard let recorded, recorded == part.eTag.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) else {
                failure = .invalidPart(part.number)
                break
            }
            let input = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            guard input >= 0 else {
                failure = .invalidPart(part.number)
                break
            }
            defer { close(input) }
            while true {
                let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                if count == 0 { break }
                guard count > 0 else {
                    failure = .store(.io("cannot read part \(part.number): \(String(cString: strerror(errno)))"))
                    break partLoop
                }
                hasher.update(data: buffer[0..<count])
                let written = buffer.withUnsafeBytes { write(incoming.descriptor, $0.baseAddress, count) }
                guard written == count else {
                    failure = .store(.io("cannot write s3://\(bucket)/\(key): \(String(cString: strerror(errno)))"))
                    break partLoop
                }
                size += Int64(count)
            }
        }
        close(incoming.descriptor)
        if let failure {
            unlink(incoming.path)
            throw failure
        }
        let digest = hasher.finalize().hexString
        let object: StoredObject
        do {
            object = try adopt(bucket: bucket, key: key, file: incoming.path, sha256: digest, size: size)
        } catch {
            unlink(incoming.path)
            throw .store(error)
        }
        try? FileManager.default.removeItem(at: directory)
        return object
    }

    public func abortMultipartUpload(uploadId: String) throws(MultipartError) {
        let directory = try uploadDirectory(uploadId)
        try? FileManager.default.removeItem(at: directory)
    }
}
