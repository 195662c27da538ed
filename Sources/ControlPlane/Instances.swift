import DeployModel
import Foundation
import GRDB

extension ControlPlane {
    func instanceTags(_ db: Database, _ name: String) throws -> [Tag] {
        try Row.fetchAll(db, sql: "SELECT key, value FROM instance_tags WHERE instance_name = ? ORDER BY position", arguments: [name])
            .map { Tag(key: $0["key"], value: $0["value"]) }
    }

    func findInstance(_ db: Database, _ name: String) throws -> InstanceInfo? {
        guard let row = try Row.fetchOne(db, sql: "SELECT info FROM instances WHERE name = ?", arguments: [name]) else { return nil }
        var info = try fromStoredJSON(InstanceInfo.self, row["info"])
        info.tags = try instanceTags(db, name)
        return info
    }

    func requireRegisteredInstance(_ db: Database, _ name: String) throws -> InstanceInfo {
        guard let info = try findInstance(db, name), info.deregisterTime == nil else {
            throw ServiceError("InstanceNotRegisteredException", "The on-premises instance \(name) is not registered.")
        }
        return info
    }

    public func registerOnPremisesInstance(_ input: RegisterOnPremisesInstanceInput) throws {
        let name = try Validate.instanceName(input.instanceName)
        if input.iamSessionArn != nil, input.iamUserArn != nil {
            throw ServiceError("MultipleIamArnsProvidedException", "Give either iamSessionArn or iamUserArn, not both.")
        }
        if let arn = input.iamUserArn, !arn.hasPrefix("arn:") {
            throw ServiceError("InvalidIamUserArnException", "'\(arn)' is not an IAM user ARN.")
        }
        if let arn = input.iamSessionArn, !arn.hasPrefix("arn:") {
            throw ServiceError("InvalidIamSessionArnException", "'\(arn)' is not an IAM session ARN.")
        }
        try state.write { db in
            if let existing = try findInstance(db, name), existing.deregisterTime == nil {
                throw ServiceError("InstanceNameAlreadyRegisteredException", "The on-premises instance name \(name) is already registered.")
            }
            let info = InstanceInfo(
                instanceName: name, iamSessionArn: input.iamSessionArn, iamUserArn: input.iamUserArn,
                instanceArn: arnPrefix() + "instance/\(name)_\(Identifier.suffix(10))", registerTime: now())
            try db.execute(sql: "DELETE FROM instances WHERE name = ?", arguments: [name])
            try db.execute(
                sql: "INSERT INTO instances (name, registered, info) VALUES (?, 1, ?)", arguments: [name, try storedJSON(info)])
        }
    }

    /// Marks the instance deregistered; it stays listed (with `--registration-status Deregistered`) as on AWS.
    public func deregisterOnPremisesInstance(_ input: DeregisterOnPremisesInstanceInput) throws {
        let name = try Validate.instanceName(input.instanceName)
        try state.write { db in
            guard var info = try findInstance(db, name), info.deregisterTime == nil else { return }
            info.deregisterTime = now()
            info.tags = nil
            try db.execute(sql: "UPDATE instances SET registered = 0, info = ? WHERE name = ?", arguments: [try storedJSON(info), name])
        }
    }

    public func getOnPremisesInstance(_ input: GetOnPremisesInstanceInput) throws -> GetOnPremisesInstanceOutput {
        let name = try Validate.instanceName(input.instanceName)
        return try state.read { db in
            guard let info = try findInstance(db, name) else {
                throw ServiceError("InstanceNotRegisteredException", "The on-premises instance \(name) is not registered.")
            }
            return GetOnPremisesInstanceOutput(instanceInfo: info)
        }
    }

    public func batchGetOnPremisesInstances(_ input: BatchGetOnPremisesInstancesInput) throws -> BatchGetOnPremisesInstancesOutput {
        try Validate.batch(input.instanceNames, limit: 25, what: "instance name", required: "InstanceNameRequiredException")
        return try state.read { db in
            var infos: [InstanceInfo] = []
            for name in input.instanceNames {
                if let info = try findInstance(db, try Validate.instanceName(name)) { infos.append(info) }
            }
            return BatchGetOnPremisesInstancesOutput(instanceInfos: infos)
        }
    }

    public func listOnPremisesInstances(_ input: ListOnPremisesInstancesInput) throws -> ListOnPremisesInstancesOutput {
        let filters = input.tagFilters ?? []
        if let problem = TagMatching.problem(in: filters) {
            throw ServiceError("InvalidTagFilterException", "Invalid tag filter: \(problem).")
        }
        return try state.read { db in
            var sql = "SELECT name FROM instances"
            switch input.registrationStatus {
            case .registered?: sql += " WHERE registered = 1"
            case .deregistered?: sql += " WHERE registered = 0"
            case nil: break
            }
            var names = try String.fetchAll(db, sql: sql + " ORDER BY name")
            if !filters.isEmpty {
                names = try names.filter { TagMatching.matches(try instanceTags(db, $0), anyOf: filters) }
            }
            let (page, next) = try Paging.page(names, token: input.nextToken)
            return ListOnPremisesInstancesOutput(instanceNames: page, nextToken: next)
        }
    }

    func validatedInstanceTagChange(_ tags: [Tag], _ names: [String]) throws -> [(String, String)] {
        guard !tags.isEmpty else { throw ServiceError("TagRequiredException", "At least one tag must be specified.") }
        guard !names.isEmpty else { throw ServiceError("InstanceNameRequiredException", "At least one instance name must be specified.") }
        guard names.count <= 10 else {
            throw ServiceError("InstanceLimitExceededException", "At most 10 instances can be tagged in one call; got \(names.count).")
        }
        guard tags.count <= 10 else {
            throw ServiceError("TagLimitExceededException", "At most 10 tags can be given in one call; got \(tags.count).")
        }
        return try validatedTags(tags, error: "InvalidTagException")
    }

    public func addTagsToOnPremisesInstances(_ input: AddTagsToOnPremisesInstancesInput) throws {
        let tags = try validatedInstanceTagChange(input.tags, input.instanceNames)
        try state.write { db in
            for name in input.instanceNames {
                _ = try requireRegisteredInstance(db, try Validate.instanceName(name))
                let count = try upsertTags(db, table: "instance_tags", ownerColumn: "instance_name", owner: name, tags: tags)
                guard count <= 10 else {
                    throw ServiceError("TagLimitExceededException", "An on-premises instance can have at most 10 tags; \(name) would have \(count).")
                }
            }
        }
    }

    /// Removes the given tags; a tag is removed when its key matches and, if a value is given, the value matches too.
    public func removeTagsFromOnPremisesInstances(_ input: RemoveTagsFromOnPremisesInstancesInput) throws {
        _ = try validatedInstanceTagChange(input.tags, input.instanceNames)
        try state.write { db in
            for name in input.instanceNames {
                _ = try requireRegisteredInstance(db, try Validate.instanceName(name))
                for tag in input.tags {
                    if let value = tag.value {
                        try db.execute(
                            sql: "DELETE FROM instance_tags WHERE instance_name = ? AND key = ? AND value = ?", arguments: [name, tag.key, value])
                    } else {
                        try db.execute(sql: "DELETE FROM instance_tags WHERE instance_name = ? AND key = ?", arguments: [name, tag.key])
                    }
                }
            }
        }
    }
}
