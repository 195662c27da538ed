import ArtifactStore
import DeployModel
import Foundation
import GRDB

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
            let digest = SHA256.hexDigest(of: Data(content.utf8))
            revision.string = RawString(content: content, sha256: digest)
            revision.s3Location = nil
            revision.gitHubLocation = nil
            revision.appSpecContent = nil
            return (revision, ["String", digest].joined(separator: "\u{1}"))
        case .appSpecContent:
            guard let content = revision.appSpecContent?.content, !content.isEmpty else {
                throw ServiceError("InvalidRevisionException", "An AppSpecContent revision needs appSpecContent.content.")
            }
            let digest = SHA256.hexDigest(of: Data(content.utf8))
            revision.appSpecContent = AppSpecContent(content: content, sha256: digest)
            revision.s3Location = nil
            revision.gitHubLocation = nil
            revision.string = nil
            return (revision, ["AppSpecContent", digest].joined(separator: "\u{1}"))
        }
    }

    /// Registers the revision if it is new (keeping an existing description unless a new one is given).
    func upsertRevision(_ db: Database, appId: String, revision: RevisionLocation, identity: String, description: String?) throws {
        let exists =
            try Bool.fetchOne(
                db, sql: "SELECT 1 FROM revisions WHERE application_id = ? AND location_key = ?", arguments: [appId, identity]) ?? false
        if exists {
            if let description {
                try db.execute(
                    sql: "UPDATE revisions SET description = ? WHERE application_id = ? AND location_key = ?",
                    arguments: [description, appId, identity])
            }
        } else {
            try db.execute(
                sql: """
                    INSERT INTO revisions (application_id, location_key, location, description, register_time)
                    VALUES (?, ?, ?, ?, ?)
                    """, arguments: [appId, identity, try storedJSON(revision), description, now().timeIntervalSince1970])
        }
    }

    /// Records that a deployment to `groupName` used the revision.
    func markRevisionUsed(_ db: Database, appId: String, identity: String, groupName: String, at time: Date) throws {
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT deployment_groups FROM revisions WHERE application_id = ? AND location_key = ?", arguments: [appId, identity])
        else { return }
        var groups = try fromStoredJSON([String].self, row["deployment_groups"])
        if !groups.contains(groupName) { groups.append(groupName) }
        try db.execute(
            sql: """
                UPDATE revisions SET deployment_groups = ?, last_used_time = ?, first_used_time = COALESCE(first_used_time, ?)
                WHERE application_id = ? AND location_key = ?
                """,
            arguments: [try storedJSON(groups), time.timeIntervalSince1970, time.timeIntervalSince1970, appId, identity])
    }

    func revisionInfo(_ row: Row) throws -> (RevisionLocation, GenericRevisionInfo) {
        let location = try fromStoredJSON(RevisionLocation.self, row["location"])
        let generic = GenericRevisionInfo(
            description: row["description"],
            deploymentGroups: try fromStoredJSON([String].self, row["deployment_groups"]),
            firstUsedTime: (row["first_used_time"] as Double?).map(Date.init(timeIntervalSince1970:)),
            lastUsedTime: (row["last_used_time"] as Double?).map(Date.init(timeIntervalSince1970:)),
            registerTime: Date(timeIntervalSince1970: row["register_time"]))
        return (location, generic)
    }

    public func registerApplicationRevision(_ input: RegisterApplicationRevisionInput) throws {
        let (revision, identity) = try normalizedRevision(input.revision)
        if let description = input.description, description.count > 100 {
            throw ServiceError("DescriptionTooLongException", "The description is longer than 100 characters.")
        }
        try state.write { db in
            let app = try requireApplication(db, input.applicationName)
            try upsertRevision(db, appId: app.id, revision: revision, identity: identity, description: input.description)
        }
    }

    public func getApplicationRevision(_ input: GetApplicationRevisionInput) throws -> GetApplicationRevisionOutput {
        let (revision, identity) = try normalizedRevision(input.revision)
        return try state.read { db in
            let app = try requireApplication(db, input.applicationName)
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT * FROM revisions WHERE application_id = ? AND location_key = ?", arguments: [app.id, identity])
            else {
                throw ServiceError(
                    "RevisionDoesNotExistException", "No application revision found for the given revision in application \(app.name).")
            }
            let (location, generic) = try revisionInfo(row)
            _ = revision
            return GetApplicationRevisionOutput(applicationName: app.name, revision: location, revisionInfo: generic)
        }
    }

    public func batchGetApplicationRevisions(_ input: BatchGetApplicationRevisionsInput) throws -> BatchGetApplicationRevisionsOutput {
        try Validate.batch(input.revisions, limit: 25, what: "revision", required: "RevisionRequiredException")
        let normalized = try input.revisions.map(normalizedRevision)
        return try state.read { db in
            let app = try requireApplication(db, input.applicationName)
            var infos: [RevisionInfo] = []
            var missing = 0
            for (_, identity) in normalized {
                guard
                    let row = try Row.fetchOne(
                        db, sql: "SELECT * FROM revisions WHERE application_id = ? AND location_key = ?", arguments: [app.id, identity])
                else {
                    missing += 1
                    continue
                }
                let (location, generic) = try revisionInfo(row)
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
        return try state.read { db in
            let app = try requireApplication(db, input.applicationName)
            let column: String
            switch input.sortBy {
            case .firstUsedTime?: column = "first_used_time"
            case .lastUsedTime?: column = "last_used_time"
            case .registerTime?, nil: column = "register_time"
            }
            let order = input.sortOrder == .descending ? "DESC" : "ASC"
            var sql = "SELECT * FROM revisions WHERE application_id = ?"
            switch input.deployed {
            case .include?: sql += " AND first_used_time IS NOT NULL"
            case .exclude?: sql += " AND first_used_time IS NULL"
            case .ignore?, nil: break
            }
            sql += " ORDER BY \(column) \(order), rowid \(order)"
            var locations: [RevisionLocation] = []
            for row in try Row.fetchAll(db, sql: sql, arguments: [app.id]) {
                let (location, _) = try revisionInfo(row)
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
