import DeployModel
import DeployStore
import Foundation

extension ControlPlane {
    func instanceTags(_ tx: any StoreTransaction, _ name: String) throws -> [Tag] {
        try tx.tags(of: .instance(name))
    }

    func findInstance(_ tx: any StoreTransaction, _ name: String) throws -> InstanceInfo? {
        guard var info = try tx.instance(named: name)?.info else { return nil }
        info.tags = try instanceTags(tx, name)
        return info
    }

    func requireRegisteredInstance(_ tx: any StoreTransaction, _ name: String) throws -> InstanceInfo {
        guard let info = try findInstance(tx, name), info.deregisterTime == nil else {
            throw ServiceError("InstanceNotRegisteredException", "The on-premises instance \(name) is not registered.")
        }
        return info
    }

    public func registerOnPremisesInstance(_ input: RegisterOnPremisesInstanceInput) throws {
        let name = try validatedRegistration(input)
        try store.write { tx in try insertRegistration(tx, name: name, input) }
    }

    /// The instance name of a valid registration; every check that needs no store.
    func validatedRegistration(_ input: RegisterOnPremisesInstanceInput) throws -> String {
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
        return name
    }

    func insertRegistration(_ tx: any StoreTransaction, name: String, _ input: RegisterOnPremisesInstanceInput) throws {
        if let existing = try findInstance(tx, name), existing.deregisterTime == nil {
            throw ServiceError("InstanceNameAlreadyRegisteredException", "The on-premises instance name \(name) is already registered.")
        }
        let info = InstanceInfo(
            instanceName: name, iamSessionArn: input.iamSessionArn, iamUserArn: input.iamUserArn,
            instanceArn: arnPrefix() + "instance/\(name)_\(Identifier.suffix(10))", registerTime: now())
        noteAccessChange()
        try tx.insertInstance(InstanceRecord(name: name, registered: true, info: info))
    }

    /// Marks the instance deregistered; it stays listed (with `--registration-status Deregistered`) as on AWS.
    public func deregisterOnPremisesInstance(_ input: DeregisterOnPremisesInstanceInput) throws {
        let name = try Validate.instanceName(input.instanceName)
        try store.write { tx in try markDeregistered(tx, name) }
    }

    func markDeregistered(_ tx: any StoreTransaction, _ name: String) throws {
        guard var info = try findInstance(tx, name), info.deregisterTime == nil else { return }
        info.deregisterTime = now()
        info.tags = nil
        noteAccessChange()
        try tx.updateInstance(InstanceRecord(name: name, registered: false, info: info))
    }

    public func getOnPremisesInstance(_ input: GetOnPremisesInstanceInput) throws -> GetOnPremisesInstanceOutput {
        let name = try Validate.instanceName(input.instanceName)
        return try store.read { tx in
            guard let info = try findInstance(tx, name) else {
                throw ServiceError("InstanceNotRegisteredException", "The on-premises instance \(name) is not registered.")
            }
            return GetOnPremisesInstanceOutput(instanceInfo: info)
        }
    }

    public func batchGetOnPremisesInstances(_ input: BatchGetOnPremisesInstancesInput) throws -> BatchGetOnPremisesInstancesOutput {
        try Validate.batch(input.instanceNames, limit: 25, what: "instance name", required: "InstanceNameRequiredException")
        return try store.read { tx in
            var infos: [InstanceInfo] = []
            for name in input.instanceNames {
                if let info = try findInstance(tx, try Validate.instanceName(name)) { infos.append(info) }
            }
            return BatchGetOnPremisesInstancesOutput(instanceInfos: infos)
        }
    }

    public func listOnPremisesInstances(_ input: ListOnPremisesInstancesInput) throws -> ListOnPremisesInstancesOutput {
        let filters = input.tagFilters ?? []
        if let problem = TagMatching.problem(in: filters) {
            throw ServiceError("InvalidTagFilterException", "Invalid tag filter: \(problem).")
        }
        return try store.read { tx in
            let registered: Bool? =
                switch input.registrationStatus {
                case .registered?: true
                case .deregistered?: false
                case nil: nil
                }
            var names = try tx.instanceNames(registered: registered)
            if !filters.isEmpty {
                names = try names.filter { TagMatching.matches(try instanceTags(tx, $0), anyOf: filters) }
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
        try store.write { tx in try addTags(tx, tags, to: input.instanceNames) }
    }

    func addTags(_ tx: any StoreTransaction, _ tags: [(String, String)], to instanceNames: [String]) throws {
        for name in instanceNames {
            _ = try requireRegisteredInstance(tx, try Validate.instanceName(name))
            let count = try tx.upsertTags(tags.map { (key: $0.0, value: $0.1) }, on: .instance(name))
            guard count <= 10 else {
                throw ServiceError("TagLimitExceededException", "An on-premises instance can have at most 10 tags; \(name) would have \(count).")
            }
        }
    }

    /// Removes the given tags; a tag is removed when its key matches and, if a value is given, the value matches too.
    public func removeTagsFromOnPremisesInstances(_ input: RemoveTagsFromOnPremisesInstancesInput) throws {
        _ = try validatedInstanceTagChange(input.tags, input.instanceNames)
        try store.write { tx in
            for name in input.instanceNames {
                _ = try requireRegisteredInstance(tx, try Validate.instanceName(name))
                for tag in input.tags {
                    try tx.removeTag(key: tag.key ?? "", value: tag.value, from: .instance(name))
                }
            }
        }
    }
}

extension ControlPlane {
    /// The ARNs an agent of `instanceName` may present as its HostIdentifier (its IAM user or session ARN).
    public func instanceIdentities(instanceName: String) throws -> [String] {
        try store.read { tx in try identities(tx, instanceName) }
    }

    func identities(_ tx: any StoreTransaction, _ instanceName: String) throws -> [String] {
        guard let record = try tx.instance(named: instanceName), record.registered else { return [] }
        return [record.info.iamUserArn, record.info.iamSessionArn].compactMap { $0 }
    }
}
