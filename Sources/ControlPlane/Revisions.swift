import ArtifactStore
import DeployModel
import DeployStore
import Foundation

extension ControlPlane {
    /// Checks a revision location and fills what AWS fills (the sha256 of inline content); returns it with its identity key.
    func normalizedRevision(_ revision: RevisionLocation?) throws -> (RevisionLocation, String) {
        guard var revision else { throw ServiceError("RevisionRequiredException", "A revision must be specified.") }
        guard let type = revision.revisionType else {
            throw ServiceError("InvalidRevisionException", "The revision needs a revisionType: S3, GitHub, String or AppSpecContent.")
        }
        switch type {
        case .s3:
            guard let s3 = revision.s3Location, let bucket = s3.bucket, !bucket.isEmpty, let key = s3.key, !key.isEmpty else {
                throw ServiceError("InvalidRevisionException", "An S3 revision needs s3Location with bucket and key.")
            }
            guard let bundleType = s3.bundleType else {
                throw ServiceError("InvalidRevisionException", "An S3 revision needs a bundleType: tar, tgz or zip.")
            }
            guard [.tar, .tgz, .zip].contains(bundleType) else {
                throw ServiceError(
                    "InvalidRevisionException", "The bundle type \(bundleType.rawValue) is for Lambda and ECS; a Server revision is tar, tgz or zip.")
            }
            revision.gitHubLocation = nil
            revision.string = nil
            revision.appSpecContent = nil
            let identity = ["S3", bucket, key, bundleType.rawValue, s3.version ?? "", s3.eTag ?? ""].joined(separator: "\u{1}")
            return (revision, identity)
        case .gitHub:
            guard let gh = revision.gitHubLocation, let repo = gh.repository, !repo.isEmpty, let commit = gh.commitId, !commit.isEmpty else {
                throw ServiceError("InvalidRevisionException", "A GitHub revision needs gitHubLocation with repository and commitId.")
            }
            revision.s3Location = nil
            revision.string = nil
            revision.appSpecContent = nil
            return (revision, ["GitHub", repo, commit].joined(separator: "\u{1}"))
        case .string:
            guard let content = revision.string?.content, !content.isEmpty else {
                throw ServiceError("InvalidRevisionException", "A String revision needs string.content.")
            }
            let digest = ContentDigest.hex(of: Data(content.utf8))
            revision.string = RawString(content: content, sha256: digest)
            revision.s3Location = nil
            revision.gitHubLocation = nil
            revision.appSpecContent = nil
            return (revision, ["String", digest].joined(separator: "\u{1}"))
        case .appSpecContent:
            guard let content = revision.appSpecContent?.content, !content.isEmpty else {
                throw ServiceError("InvalidRevisionException", "An AppSpecContent revision needs appSpecContent.content.")
            }
            let digest = ContentDigest.hex(of: Data(content.utf8))
            revision.appSpecContent = AppSpecContent(content: content, sha256: digest)
            revision.s3Location = nil
            revision.gitHubLocation = nil
            revision.string = nil
            return (revision, ["AppSpecContent", digest].joined(separator: "\u{1}"))
        }
    }

    /// Registers the revision if it is new (keeping an existing description unless a new one is given).
    func upsertRevision(_ tx: any StoreTransaction, appId: String, revision: RevisionLocation, identity: String, description: String?) throws {
        if var existing = try tx.revision(applicationId: appId, key: identity) {
            if let description {
                existing.description = description
                try tx.updateRevision(existing)
            }
        } else {
            try tx.insertRevision(
                RevisionRecord(applicationId: appId, key: identity, location: revision, description: description, registerTime: now()))
        }
    }

    /// Records that a deployment to `groupName` used the revision.
    func markRevisionUsed(_ tx: any StoreTransaction, appId: String, identity: String, groupName: String, at time: Date) throws {
        guard var record = try tx.revision(applicationId: appId, key: identity) else { return }
        if !record.deploymentGroups.contains(groupName) { record.deploymentGroups.append(groupName) }
        record.lastUsedTime = time
        if record.firstUsedTime == nil { record.firstUsedTime = time }
        try tx.updateRevision(record)
    }

    func revisionInfo(_ record: RevisionRecord) -> (RevisionLocation, GenericRevisionInfo) {
        let generic = GenericRevisionInfo(
            description: record.description, deploymentGroups: record.deploymentGroups, firstUsedTime: record.firstUsedTime,
            lastUsedTime: record.lastUsedTime, registerTime: record.registerTime)
        return (record.location, generic)
    }

    public func registerApplicationRevision(_ input: RegisterApplicationRevisionInput) throws {
        let (revision, identity) = try normalizedRevision(input.revision)
        if let description = input.description, description.count > 100 {
            throw ServiceError("DescriptionTooLongException", "The description is longer than 100 characters.")
        }
        try store.write { tx in
            let app = try requireApplication(tx, input.applicationName)
            try upsertRevision(tx, appId: app.id, revision: revision, identity: identity, description: input.description)
        }
    }

    public func getApplicationRevision(_ input: GetApplicationRevisionInput) throws -> GetApplicationRevisionOutput {
        let (revision, identity) = try normalizedRevision(input.revision)
        return try store.read { tx in
            let app = try requireApplication(tx, input.applicationName)
            guard let record = try tx.revision(applicationId: app.id, key: identity) else {
                throw ServiceError(
                    "RevisionDoesNotExistException", "No application revision found for the given revision in application \(app.name).")
            }
            let (location, generic) = revisionInfo(record)
            _ = revision
            return GetApplicationRevisionOutput(applicationName: app.name, revision: location, revisionInfo: generic)
        }
    }

    public func batchGetApplicationRevisions(_ input: BatchGetApplicationRevisionsInput) throws -> BatchGetApplicationRevisionsOutput {
        try Validate.batch(input.revisions, limit: 25, what: "revision", required: "RevisionRequiredException")
        let normalized = try input.revisions.map(normalizedRevision)
        return try store.read { tx in
            let app = try requireApplication(tx, input.applicationName)
            var infos: [RevisionInfo] = []
            var missing = 0
            for (_, identity) in normalized {
                guard let record = try tx.revision(applicationId: app.id, key: identity) else {
                    missing += 1
                    continue
                }
                let (location, generic) = revisionInfo(record)
                infos.append(RevisionInfo(revisionLocation: location, genericRevisionInfo: generic))
            }
            let message = missing == 0 ? nil : "\(missing) of the requested revisions are not registered with application \(app.name)."
            return BatchGetApplicationRevisionsOutput(applicationName: app.name, errorMessage: message, revisions: infos)
        }
    }

    public func listApplicationRevisions(_ input: ListApplicationRevisionsInput) throws -> ListApplicationRevisionsOutput {
        if input.s3KeyPrefix != nil, input.s3Bucket == nil {
            throw ServiceError("BucketNameFilterRequiredException", "s3KeyPrefix needs s3Bucket.")
        }
        return try store.read { tx in
            let app = try requireApplication(tx, input.applicationName)
            var records = try tx.revisions(applicationId: app.id)
            switch input.deployed {
            case .include?: records = records.filter { $0.firstUsedTime != nil }
            case .exclude?: records = records.filter { $0.firstUsedTime == nil }
            case .ignore?, nil: break
            }
            // Sorted by the chosen time (a missing time first, as SQL sorts NULL), then registration order.
            let key: (RevisionRecord) -> Double = { record in
                switch input.sortBy {
                case .firstUsedTime?: record.firstUsedTime?.timeIntervalSince1970 ?? -Double.infinity
                case .lastUsedTime?: record.lastUsedTime?.timeIntervalSince1970 ?? -Double.infinity
                case .registerTime?, nil: record.registerTime.timeIntervalSince1970
                }
            }
            let ordered = records.enumerated().sorted { a, b in (key(a.element), a.offset) < (key(b.element), b.offset) }.map(\.element)
            var locations: [RevisionLocation] = []
            for record in input.sortOrder == .descending ? ordered.reversed() : ordered {
                let location = record.location
                if let bucket = input.s3Bucket {
                    guard location.s3Location?.bucket == bucket else { continue }
                    if let prefix = input.s3KeyPrefix, !(location.s3Location?.key ?? "").hasPrefix(prefix) { continue }
                }
                locations.append(location)
            }
            let (page, next) = try Paging.page(locations, token: input.nextToken)
            return ListApplicationRevisionsOutput(revisions: page, nextToken: next)
        }
    }
}
