import Foundation

/// A bucket as `ListBuckets` shows it.
public struct BucketInfo: Sendable, Equatable {
    public var name: String
    public var creationDate: Date
}

/// One page of `ListObjectsV2`.
public struct ObjectListing: Sendable, Equatable {
    /// The newest version of each key, sorted by key.
    public var objects: [StoredObject]
    /// With a delimiter: the key prefixes rolled up at it, sorted.
    public var commonPrefixes: [String]
    /// The last key (or prefix) of this page when more follow.
    public var nextStartAfter: String?
}

/// What remote `push` needs of a bundle store: put a file, answer its eTag and version. The file store and the S3
/// client (`--endpoint-url`) both do it.
public protocol ObjectUploading: Sendable {
    func upload(bucket: String, key: String, contentsOf file: URL) async throws -> StoredObject
}

extension ArtifactStore: ObjectUploading {
    public func upload(bucket: String, key: String, contentsOf file: URL) async throws -> StoredObject {
        try put(bucket: bucket, key: key, contentsOf: file)
    }
}

/// The rest of the S3 operations `deployctl server` serves on this store: buckets, listing, delete, and adopting a
/// file the server has already streamed to disk (no second copy of a 100 MB upload).
extension ArtifactStore {
    /// A folder inside the store (same file system) where uploads stream before they become objects.
    public var incomingDirectory: URL { root.appendingPathComponent(".incoming", isDirectory: true) }

    /// A new private file in ``incomingDirectory`` opened for writing: its path and descriptor.
    public func makeIncomingFile() throws(ArtifactStoreError) -> (path: String, descriptor: Int32) {
        try makePrivateDirectories(down: incomingDirectory)
        let path = incomingDirectory.appendingPathComponent("upload-" + Self.newVersionId()).path
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .io("cannot create \(path): \(String(cString: strerror(errno)))") }
        return (path, fd)
    }

    /// Makes `file` (in ``incomingDirectory``, already hashed) the newest version of `bucket/key` by renaming it.
    public func adopt(bucket: String, key: String, file: String, sha256: String, size: Int64) throws(ArtifactStoreError) -> StoredObject {
        try Self.validate(bucket: bucket, key: key)
        let versions = versionsDirectory(bucket: bucket, key: key)
        let versionId = Self.newVersionId()
        let target = versions.appendingPathComponent(versionId, isDirectory: true)
        do {
            try makePrivateDirectories(down: target)
            let content = target.appendingPathComponent("content")
            guard rename(file, content.path) == 0 else {
                throw ArtifactStoreError.io("cannot store s3://\(bucket)/\(key): \(String(cString: strerror(errno)))")
            }
            let object = StoredObject(bucket: bucket, key: key, eTag: sha256, versionId: versionId, size: size, path: content.path)
            let meta = target.appendingPathComponent("meta.json")
            try JSONEncoder().encode(object).write(to: meta, options: .atomic)
            chmod(meta.path, 0o600)
            if !Self.keepsItsPath(key) {
                // The folder's name is the key's hash: the key itself is kept beside it, for listing.
                let keyFile = versions.appendingPathComponent("key")
                try Data(key.utf8).write(to: keyFile, options: .atomic)
                chmod(keyFile.path, 0o600)
            }
            let latest = versions.appendingPathComponent("latest")
            try Data(versionId.utf8).write(to: latest, options: .atomic)
            chmod(latest.path, 0o600)
            return object
        } catch let error as ArtifactStoreError {
            try? FileManager.default.removeItem(at: target)
            throw error
        } catch {
            try? FileManager.default.removeItem(at: target)
            throw .io("cannot store s3://\(bucket)/\(key): \(error.localizedDescription)")
        }
    }

    public func bucketExists(_ name: String) -> Bool {
        var isDirectory: ObjCBool = false
        return Self.isValidBucketName(name)
            && FileManager.default.fileExists(atPath: root.appendingPathComponent(name).path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// Removes the temporary files of uploads that never finished (a server killed mid-upload); answers their
    /// names. Run at start, before anything streams there.
    public func sweepIncoming() -> [String] {
        let folder = incomingDirectory.path
        var removed: [String] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] {
            let path = folder + "/" + entry
            if unlink(path) == 0 { removed.append(path) }
        }
        return removed.sorted()
    }

    /// Creates the bucket's folder; true when it was new.
    @discardableResult
    public func createBucket(_ name: String) throws(ArtifactStoreError) -> Bool {
        guard Self.isValidBucketName(name) else { throw .invalidBucketName(name) }
        let existed = bucketExists(name)
        try makePrivateDirectories(down: root.appendingPathComponent(name, isDirectory: true))
        return !existed
    }

    /// Removes an empty bucket; false when it still holds objects.
    public func deleteBucket(_ name: String) throws(ArtifactStoreError) -> Bool {
        guard bucketExists(name) else { throw .noSuchBucket(name) }
        let path = root.appendingPathComponent(name).path
        if rmdir(path) == 0 { return true }
        if errno == ENOTEMPTY || errno == EEXIST { return false }
        throw .io("cannot remove \(path): \(String(cString: strerror(errno)))")
    }

    public func buckets() -> [BucketInfo] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.filter { Self.isValidBucketName($0) && bucketExists($0) }.sorted().map { name in
            let attributes = try? FileManager.default.attributesOfItem(atPath: root.appendingPathComponent(name).path)
            return BucketInfo(name: name, creationDate: attributes?[.creationDate] as? Date ?? attributes?[.modificationDate] as? Date ?? Date())
        }
    }

    /// The newest version of every key in `bucket` under `prefix` after `startAfter`, at most `maxKeys` (keys and
    /// rolled-up prefixes together), sorted by key as S3 lists them.
    public func list(bucket: String, prefix: String = "", delimiter: String? = nil, startAfter: String? = nil, maxKeys: Int = 1000)
        throws(ArtifactStoreError) -> ObjectListing
    {
        guard bucketExists(bucket) else { throw .noSuchBucket(bucket) }
        let base = root.appendingPathComponent(bucket, isDirectory: true)
        var keys: [String] = []
        collectKeys(in: base.path, relative: "", into: &keys)
        let hashed = base.appendingPathComponent(Self.hashedKeysFolder).path
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: hashed)) ?? [] where entry.hasSuffix("@v") {
            let folder = hashed + "/" + entry
            if FileManager.default.fileExists(atPath: folder + "/latest"),
                let key = try? String(contentsOfFile: folder + "/key", encoding: .utf8)
            {
                keys.append(key)
            }
        }
        keys.sort()
        var listing = ObjectListing(objects: [], commonPrefixes: [], nextStartAfter: nil)
        var count = 0
        for key in keys where key.hasPrefix(prefix) {
            if let startAfter, key <= startAfter { continue }
            var rolledUp: String?
            if let delimiter, !delimiter.isEmpty, let range = key.dropFirst(prefix.count).range(of: delimiter) {
                rolledUp = String(key[..<range.upperBound])
            }
            if let rolledUp {
                if listing.commonPrefixes.last == rolledUp { continue }
                if let startAfter, rolledUp <= startAfter || startAfter.hasPrefix(rolledUp) { continue }
            }
            if count == maxKeys {
                listing.nextStartAfter = listing.commonPrefixes.last.map { max($0, listing.objects.last?.key ?? "") } ?? listing.objects.last?.key
                break
            }
            if let rolledUp {
                listing.commonPrefixes.append(rolledUp)
            } else if let object = try? head(bucket: bucket, key: key) {
                listing.objects.append(object)
            } else {
                continue
            }
            count += 1
        }
        return listing
    }

    /// Keys are the folders named `<key>@v` that hold a `latest` file.
    private func collectKeys(in directory: String, relative: String, into keys: inout [String]) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for entry in entries where !entry.hasPrefix(".") || !relative.isEmpty {
            let path = directory + "/" + entry
            var info = stat()
            guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { continue }
            if entry.hasSuffix("@v"), FileManager.default.fileExists(atPath: path + "/latest") {
                keys.append(relative + entry.dropLast(2))
            }
            if !entry.hasSuffix("@v") || FileManager.default.fileExists(atPath: path + "/latest") == false {
                collectKeys(in: path, relative: relative + entry + "/", into: &keys)
            }
        }
    }

    /// Deletes one version, or (without `version`) the key with all its versions. Deleting what is not there
    /// succeeds, as in S3.
    public func delete(bucket: String, key: String, version: String?) throws(ArtifactStoreError) {
        try Self.validate(bucket: bucket, key: key)
        guard bucketExists(bucket) else { throw .noSuchBucket(bucket) }
        let versions = versionsDirectory(bucket: bucket, key: key)
        guard let version else {
            try? FileManager.default.removeItem(at: versions)
            return
        }
        guard !version.contains("/"), !version.hasPrefix("."), !version.isEmpty else { return }
        try? FileManager.default.removeItem(at: versions.appendingPathComponent(version))
        let latest = try? String(contentsOf: versions.appendingPathComponent("latest"), encoding: .utf8)
        guard latest?.trimmingCharacters(in: .whitespacesAndNewlines) == version else { return }
        // The newest version went: the newest remaining one (version ids sort by time) becomes the latest.
        let remaining = ((try? FileManager.default.contentsOfDirectory(atPath: versions.path)) ?? []).filter { $0 != "latest" && $0 != "key" }
            .sorted()
        if let newest = remaining.last {
            try? Data(newest.utf8).write(to: versions.appendingPathComponent("latest"), options: .atomic)
        } else {
            try? FileManager.default.removeItem(at: versions)
        }
    }

    static func isValidBucketName(_ name: String) -> Bool {
        (try? validate(bucket: name, key: "k")) != nil
    }
}
