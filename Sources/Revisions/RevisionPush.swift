import ArtifactStore
import Bundles
import DeployModel
import Foundation

/// Why `push` stopped before registering anything.
public enum PushError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidS3Location(String)
    case noAppSpec(String)
    case invalidRevision(ValidationReport)
    case bundle(BundleError)
    case store(ArtifactStoreError)

    public var description: String {
        switch self {
        case .invalidS3Location(let text): return "--s3-location must specify the format s3://<bucket>/<key>; got '\(text)'"
        case .noAppSpec(let path): return "\(path) was not found"
        case .invalidRevision(let report): return "the revision has \(report.errors.count) error(s); nothing was pushed"
        case .bundle(let error): return error.description
        case .store(let error): return error.description
        }
    }
}

/// What `push` stored and registered.
public struct PushResult: Sendable, Equatable {
    public var applicationName: String
    public var location: S3Location
    public var description: String
    public var report: ValidationReport
    public var entries: Int
    public var bytes: Int64
}

/// `deployctl push`: validate a directory, bundle it, store it in the artifact store and register the revision.
public enum RevisionPush {
    /// Splits `s3://bucket/key` as the aws CLI does (`s3://(.+?)/(.+)`).
    public static func parseS3URL(_ text: String) throws(PushError) -> (bucket: String, key: String) {
        guard text.hasPrefix("s3://") else { throw .invalidS3Location(text) }
        let rest = text.dropFirst(5)
        guard let slash = rest.firstIndex(of: "/"), slash != rest.startIndex else { throw .invalidS3Location(text) }
        let bucket = String(rest[..<slash])
        let key = String(rest[rest.index(after: slash)...])
        guard !key.isEmpty else { throw .invalidS3Location(text) }
        return (bucket, key)
    }

    /// A step of a push that moves many bytes, for a progress display: the bundle being written, then uploaded.
    public enum Phase: Sendable {
        case bundling(path: String)
        case uploading(path: String, bytes: Int64)
        case done
    }

    public static func push(
        applicationName: String, s3Location: String, source: String, description: String?, bundleType: ArchiveFormat,
        ignoreHidden: Bool, api: any CodeDeployAPI, artifacts: any ObjectUploading, now: Date = Date(),
        phase: @Sendable (Phase) -> Void = { _ in }
    ) async throws -> PushResult {
        defer { phase(.done) }
        let (bucket, key) = try parseS3URL(s3Location)
        _ = try await api.getApplication(GetApplicationInput(applicationName: applicationName))
        let root = URL(fileURLWithPath: source).standardizedFileURL.path
        guard FileManager.default.fileExists(atPath: root + "/appspec.yml") || FileManager.default.fileExists(atPath: root + "/appspec.yaml") else {
            throw PushError.noAppSpec(root + "/appspec.yml")
        }
        let report = RevisionValidator.validate(directory: root, ignoreHidden: ignoreHidden)
        guard report.isValid else { throw PushError.invalidRevision(report) }

        let temporary = FileManager.default.temporaryDirectory.appendingPathComponent("deployctl-push-\(UUID().uuidString).\(bundleType.rawValue)")
        defer { try? FileManager.default.removeItem(at: temporary) }
        let summary: CreationSummary
        phase(.bundling(path: temporary.path))
        do throws(BundleError) {
            summary = try BundleArchive.create(from: root, to: temporary.path, type: bundleType, ignoreHidden: ignoreHidden)
        } catch {
            throw PushError.bundle(error)
        }
        let stored: StoredObject
        let size = (try? FileManager.default.attributesOfItem(atPath: temporary.path)[.size] as? NSNumber)?.int64Value ?? summary.bytes
        phase(.uploading(path: temporary.path, bytes: size))
        do {
            stored = try await artifacts.upload(bucket: bucket, key: key, contentsOf: temporary)
        } catch let error as ArtifactStoreError {
            throw PushError.store(error)
        }
        let text = description ?? "Uploaded by deployctl \(Timestamp.format(now))"
        let location = S3Location(
            bucket: bucket, key: key, bundleType: DeployModel.BundleType(rawValue: bundleType.rawValue), version: stored.versionId,
            eTag: stored.eTag)
        try await api.registerApplicationRevision(
            RegisterApplicationRevisionInput(
                applicationName: applicationName, description: text, revision: RevisionLocation(revisionType: .s3, s3Location: location)))
        return PushResult(
            applicationName: applicationName, location: location, description: text, report: report, entries: summary.entries,
            bytes: summary.bytes)
    }
}
