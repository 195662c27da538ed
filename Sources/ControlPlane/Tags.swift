import DeployModel
import DeployStore
import Foundation

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
    func replaceTags(_ tx: any StoreTransaction, resourceId: String, adding tags: [(String, String)]) throws {
        try tx.upsertTags(tags.map { (key: $0.0, value: $0.1) }, on: .resource(resourceId))
    }

    func resourceTags(_ tx: any StoreTransaction, resourceId: String) throws -> [Tag] {
        try tx.tags(of: .resource(resourceId))
    }

    /// Resolves an application, deployment group or deployment config ARN to the stored resource's ID.
    func resolveResourceArn(_ tx: any StoreTransaction, _ arn: String?) throws -> String {
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
            guard let app = try findApplication(tx, name) else {
                throw ServiceError("ApplicationDoesNotExistException", "The application \(name) does not exist with the user or AWS account.")
            }
            return app.id
        case "deploymentgroup":
            guard let slash = name.firstIndex(of: "/") else {
                throw ServiceError("InvalidArnException", "A deployment group ARN ends in deploymentgroup:APPLICATION/GROUP; got '\(arn)'.")
            }
            let appName = String(name[..<slash])
            let groupName = String(name[name.index(after: slash)...])
            guard let app = try findApplication(tx, appName), let group = try findGroup(tx, app: app, name: groupName) else {
                throw ServiceError(
                    "DeploymentGroupDoesNotExistException", "The deployment group \(groupName) does not exist with the user or AWS account.")
            }
            return group.id
        case "deploymentconfig":
            guard let config = try findConfig(tx, name) else {
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
        return try store.write { tx in
            let id = try resolveResourceArn(tx, input.resourceArn)
            let count = try tx.upsertTags(tags.map { (key: $0.0, value: $0.1) }, on: .resource(id))
            guard count <= Self.tagLimit else {
                throw ServiceError("InvalidTagsToAddException", "A resource can have at most \(Self.tagLimit) tags; this would make \(count).")
            }
        }
    }

    public func untagResource(_ input: UntagResourceInput) throws {
        guard !input.tagKeys.isEmpty else { throw ServiceError("TagRequiredException", "At least one tag key must be specified.") }
        return try store.write { tx in
            let id = try resolveResourceArn(tx, input.resourceArn)
            for key in input.tagKeys {
                try tx.removeTag(key: key, value: nil, from: .resource(id))
            }
        }
    }

    public func listTagsForResource(_ input: ListTagsForResourceInput) throws -> ListTagsForResourceOutput {
        try store.read { tx in
            let id = try resolveResourceArn(tx, input.resourceArn)
            let (page, next) = try Paging.page(try resourceTags(tx, resourceId: id), token: input.nextToken)
            return ListTagsForResourceOutput(tags: page, nextToken: next)
        }
    }
}
