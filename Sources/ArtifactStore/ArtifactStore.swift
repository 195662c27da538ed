import Foundation

/// What the store knows about one stored object version.
public struct StoredObject: Sendable, Equatable, Codable {
    public var bucket: String
    public var key: String
    /// The SHA-256 of the content, in hex: the object's eTag.
    public var eTag: String
    public var versionId: String
    public var size: Int64
    /// Where the content lives on disk (empty for an object of a remote store).
    public var path: String

    public init(bucket: String, key: String, eTag: String, versionId: String, size: Int64, path: String) {
        self.bucket = bucket
        self.key = key
        self.eTag = eTag
        self.versionId = versionId
        self.size = size
        self.path = path
    }
}

/// Why the store refused a request.
public enum ArtifactStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidBucketName(String)
    case invalidKey(String)
    /// Longer than S3's 1,024 bytes.
    case keyTooLong(String)
    case noSuchObject(bucket: String, key: String, version: String?)
    case noSuchBucket(String)
    case io(String)

    public var description: String {
        switch self {
        case .invalidBucketName(let b):
            return "invalid bucket name '\(b)': use 3-63 characters of lowercase letters, digits, '.' and '-'"
        case .invalidKey(let k):
            return "invalid object key '\(k.prefix(100))': it must be non-empty and must not contain NUL"
        case .keyTooLong(let k):
            return "the object key '\(k.prefix(100))…' is \(k.utf8.count) bytes long; S3 keys are at most 1024 bytes of UTF-8"
        case .noSuchObject(let b, let k, let v):
            return "no object s3://\(b)/\(k)\(v.map { " (version \($0))" } ?? "") in the artifact store"
        case .noSuchBucket(let b): return "no bucket \(b) in the artifact store"
        case .io(let m): return m
        }
    }
}

/// Where bundles are stored: the part of S3 deployctl uses. The file store below implements it; an S3 client (the
/// server's own S3 API, reached with `--endpoint-url`) will implement it too.
public protocol ArtifactStorage: Sendable {
    /// Stores `file` as a new version of `bucket/key`.
    func put(bucket: String, key: String, contentsOf file: URL) throws(ArtifactStoreError) -> StoredObject
    /// The stored object, its newest version unless `version` names one.
    func head(bucket: String, key: String, version: String?) throws(ArtifactStoreError) -> StoredObject
}

/// The built-in artifact store: an S3-shaped object store in a directory beside the state file.
///
/// Each bucket is a folder; each object version is stored as `<bucket>/<key>@v/<versionId>` with a
/// `meta.json` beside it, and `<bucket>/<key>@v/latest` names the newest version. The interface is
/// the part of S3 deployctl uses (put, head, locate), so an S3-compatible endpoint can stand behind it later.
public struct ArtifactStore: ArtifactStorage {
    public let root: URL

    public init(root: URL) {
        self.root = root
    }

    /// The store that belongs to a state file: `<state dir>/artifacts`.
    public init(besideStateFile statePath: String) {
        let directory = URL(fileURLWithPath: statePath).deletingLastPathComponent()
        self.root = directory.appendingPathComponent("artifacts", isDirectory: true)
    }

    /// Copies `file` into the store as a new version of `bucket/key`.
    public func put(bucket: String, key: String, contentsOf file: URL) throws(ArtifactStoreError) -> StoredObject {
        try Self.validate(bucket: bucket, key: key)
        let incoming = try makeIncomingFile()
        close(incoming.descriptor)
        do {
            let digest = try ContentDigest.hex(ofFile: file)
            unlink(incoming.path)
            try FileManager.default.copyItem(atPath: file.path, toPath: incoming.path)
            chmod(incoming.path, 0o600)
            let size = (try FileManager.default.attributesOfItem(atPath: incoming.path)[.size] as? NSNumber)?.int64Value ?? 0
            return try adopt(bucket: bucket, key: key, file: incoming.path, sha256: digest, size: size)
        } catch let error as ArtifactStoreError {
            unlink(incoming.path)
            throw error
        } catch {
            unlink(incoming.path)
            throw .io("cannot store s3://\(bucket)/\(key): \(error.localizedDescription)")
        }
    }

    /// The stored object, its newest version unless `version` names one.
    public func head(bucket: String, key: String, version: String? = nil) throws(ArtifactStoreError) -> StoredObject {
        try Self.validate(bucket: bucket, key: key)
        let versions = versionsDirectory(bucket: bucket, key: key)
        let chosen: String
        if let version {
            chosen = version
        } else {
            guard let latest = try? String(contentsOf: versions.appendingPathComponent("latest"), encoding: .utf8) else {
                throw .noSuchObject(bucket: bucket, key: key, version: nil)
            }
            chosen = latest.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard !chosen.contains("/"), !chosen.hasPrefix("."),
            let data = try? Data(contentsOf: versions.appendingPathComponent(chosen).appendingPathComponent("meta.json")),
            let object = try? JSONDecoder().decode(StoredObject.self, from: data)
        else {
            throw .noSuchObject(bucket: bucket, key: key, version: version)
        }
        return object
    }

    /// Creates every directory from the store's root down to `directory` with mode 0700 (whatever the umask, and
    /// also when the root already existed with a wider mode): bundles are readable by the state file's owner only.
    func makePrivateDirectories(down directory: URL) throws(ArtifactStoreError) {
        let rootPath = root.standardizedFileURL.path
        let parent = (rootPath as NSString).deletingLastPathComponent
        if !FileManager.default.fileExists(atPath: parent) {
            do {
                try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw .io("cannot create \(parent): \(error.localizedDescription)")
            }
        }
        var path = rootPath
        let relative = directory.standardizedFileURL.path.dropFirst(rootPath.count).split(separator: "/")
        for component in [""] + relative.map(String.init) {
            if !component.isEmpty { path += "/" + component }
            if mkdir(path, 0o700) != 0, errno != EEXIST {
                throw .io("cannot create \(path): \(String(cString: strerror(errno)))")
            }
            chmod(path, 0o700)
        }
    }

    /// Where the versions of `bucket/key` live. A key that reads as a short relative path keeps it
    /// (`<bucket>/<key>@v`, so an operator can find a bundle by its key); any other valid key — a component over 200
    /// bytes, a key over 512, empty, `.` or `..` components, a first component starting with `.`, a component
    /// ending in `@v` — lives under a name made from its SHA-256 (`<bucket>/.keys/<hex>@v`, with the key in a `key`
    /// file for listing), so every key S3 accepts (1,024 bytes of UTF-8) can be stored, however long or deep.
    func versionsDirectory(bucket: String, key: String) -> URL {
        let base = root.appendingPathComponent(bucket, isDirectory: true)
        if Self.keepsItsPath(key) { return base.appendingPathComponent(key + "@v", isDirectory: true) }
        return base.appendingPathComponent(Self.hashedKeysFolder, isDirectory: true).appendingPathComponent(
            ContentDigest.hex(of: Array(key.utf8)) + "@v", isDirectory: true)
    }

    static let hashedKeysFolder = ".keys"
    /// S3's limit on a key: 1,024 bytes of UTF-8.
    public static let maxKeyBytes = 1024

    /// Whether `key` is stored under its own path (see ``versionsDirectory(bucket:key:)``).
    static func keepsItsPath(_ key: String) -> Bool {
        guard key.utf8.count <= 512, !key.isEmpty else { return false }
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard let first = parts.first, !first.hasPrefix(".") else { return false }
        return !parts.contains { $0.isEmpty || $0 == "." || $0 == ".." || $0.hasSuffix("@v") || $0.utf8.count > 200 }
    }

    static func validate(bucket: String, key: String) throws(ArtifactStoreError) {
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789.-")
        guard (3...63).contains(bucket.count), bucket.allSatisfy({ allowed.contains($0) }),
            bucket.first != ".", bucket.first != "-"
        else { throw .invalidBucketName(bucket) }
        guard !key.isEmpty, !key.contains("\0") else { throw .invalidKey(key) }
        guard key.utf8.count <= maxKeyBytes else { throw .keyTooLong(key) }
    }

    static func newVersionId() -> String {
        let stamp = String(UInt64(Date().timeIntervalSince1970 * 1_000_000), radix: 36)
        let random = (0..<8).map { _ in String("abcdefghijklmnopqrstuvwxyz0123456789".randomElement() ?? "0") }.joined()
        return stamp + random
    }
}
