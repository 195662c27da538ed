import DeployModel
import Foundation
import GRDB

extension ControlPlane {
    static let tagLimit = 50

    func validatedTags(_ tags: [Tag], error code: String) throws -> [(String, String)] {
        guard tags.count <= Self.tagLimit else {
            throw ServiceError(code, "At most \(Self.tagLimit) tags can be set on a resource; got \(tags.count).")
        }
        return try tags.map { tag in
            guard let key = tag.key, !key.isEmpty else { throw ServiceError(code, "Every tag needs a non-empty Key.") }
            guard key.count <= 128 else { throw ServiceError(code, "The tag key '\(key)' is longer than 128 characters.") }
            let value = tag.value ?? ""
            guard value.count <= 256 else { throw ServiceError(code, "The value of tag '\(key)' is longer than 256 characters.") }
            return (key, value)
        }
    }

    /// Sets the given tags on a resource, replacing the values of keys it already has.
    func replaceTags(_ db: Database, resourceId: String, adding tags: [(String, String)]) throws {
        try upsertTags(db, table: "resource_tags", ownerColumn: "resource_id", owner: resourceId, tags: tags)
    }

    /// Adds tags to one owner in a tag table (new keys go last; existing keys keep their place); returns the owner's tag count.
    @discardableResult
    func upsertTags(_ db: Database, table: String, ownerColumn: String, owner: String, tags: [(String, String)]) throws -> Int {
        var position =
            try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(position), -1) FROM \(table) WHERE \(ownerColumn) = ?", arguments: [owner]) ?? -1
        for (key, value) in tags {
            position += 1
            try db.execute(
                sql: """
                    INSERT INTO \(table) (\(ownerColumn), key, value, position) VALUES (?, ?, ?, ?)
                    ON CONFLICT (\(ownerColumn), key) DO UPDATE SET value = excluded.value
                    """,
                arguments: [owner, key, value, position])
        }
        return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table) WHERE \(ownerColumn) = ?", arguments: [owner]) ?? 0
    }

    func resourceTags(_ db: Database, resourceId: String) throws -> [Tag] {
        try Row.fetchAll(db, sql: "SELECT key, value FROM resource_tags WHERE resource_id = ? ORDER BY position", arguments: [resourceId])
            .map { Tag(key: $0["key"], value: $0["value"]) }
    }

    /// Resolves an application, deployment group or deployment config ARN to the stored resource's ID.
    func resolveResourceArn(_ db: Database, _ arn: String?) throws -> String {
        guard let arn, !arn.isEmpty else { throw ServiceError("ResourceArnRequiredException", "A resource ARN must be specified.") }
        let parts = arn.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 6, parts[0] == "arn", parts[2] == "codedeploy" else {
            throw ServiceError("InvalidArnException", "'\(arn)' is not a CodeDeploy ARN (arn:aws:codedeploy:REGION:ACCOUNT:TYPE:NAME).")
        }
        let resource = parts[5]
        guard let colon = resource.firstIndex(of: ":") else {
            throw ServiceError("ArnNotSupportedException", "The ARN '\(arn)' names a resource type that cannot be tagged.")
        }
        let type = String(resource[..<colon])
        let name = String(resource[resource.index(after: colon)...])
        switch type {
        case "application":
            guard let app = try findApplication(db, name) else {
                throw ServiceError("ApplicationDoesNotExistException", "The application \(name) does not exist with the user or AWS account.")
            }
            return app.id
        case "deploymentgroup":
            guard let slash = name.firstIndex(of: "/") else {
                throw ServiceError("InvalidArnException", "A deployment group ARN ends in deploymentgroup:APPLICATION/GROUP; got '\(arn)'.")
            }
            let appName = String(name[..<slash])
            let groupName = String(name[name.index(after: slash)...])
            guard let app = try findApplication(db, appName), let group = try findGroup(db, app: app, name: groupName) else {
                throw ServiceError(
                    "DeploymentGroupDoesNotExistException", "The deployment group \(groupName) does not exist with the user or AWS account.")
            }
            return group.id
        case "deploymentconfig":
            guard let config = try findConfig(db, name) else {
                throw ServiceError(
                    "DeploymentConfigDoesNotExistException", "The deployment configuration \(name) does not exist with the user or AWS account.")
            }
            guard !config.predefined else {
                throw ServiceError("ArnNotSupportedException", "The predefined deployment configuration \(name) cannot be tagged.")
            }
            return config.id
        default:
            throw ServiceError(
                "ArnNotSupportedException",
                "Resources of type '\(type)' cannot be tagged; use an application, deployment group or deployment config ARN.")
        }
    }

    public func tagResource(_ input: TagResourceInput) throws {
        guard !input.tags.isEmpty else { throw ServiceError("TagRequiredException", "At least one tag must be specified.") }
        let tags = try validatedTags(input.tags, error: "InvalidTagsToAddException")
        return try state.write { db in
            let id = try resolveResourceArn(db, input.resourceArn)
            let count = try upsertTags(db, table: "resource_tags", ownerColumn: "resource_id", owner: id, tags: tags)
            guard count <= Self.tagLimit else {
                throw ServiceError("InvalidTagsToAddException", "A resource can have at most \(Self.tagLimit) tags; this would make \(count).")
            }
        }
    }

    public func untagResource(_ input: UntagResourceInput) throws {
        guard !input.tagKeys.isEmpty else { throw ServiceError("TagRequiredException", "At least one tag key must be specified.") }
        return try state.write { db in
            let id = try resolveResourceArn(db, input.resourceArn)
            for key in input.tagKeys {
                try db.execute(sql: "DELETE FROM resource_tags WHERE resource_id = ? AND key = ?", arguments: [id, key])
            }
        }
    }

    public func listTagsForResource(_ input: ListTagsForResourceInput) throws -> ListTagsForResourceOutput {
        try state.read { db in
            let id = try resolveResourceArn(db, input.resourceArn)
            let (page, next) = try Paging.page(try resourceTags(db, resourceId: id), token: input.nextToken)
            return ListTagsForResourceOutput(tags: page, nextToken: next)
        }
    }
}
