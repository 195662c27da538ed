import DeployModel
import DeployStore
import Foundation

extension ControlPlane {
    func findGroup(_ tx: any StoreTransaction, app: ApplicationRecord, name: String) throws -> GroupRecord? {
        try tx.group(applicationId: app.id, name: name)
    }

    func requireGroup(_ tx: any StoreTransaction, app: ApplicationRecord, name: String?) throws -> GroupRecord {
        let name = try Validate.groupName(name)
        guard let group = try findGroup(tx, app: app, name: name) else {
            throw ServiceError("DeploymentGroupDoesNotExistException", "The deployment group \(name) does not exist with the user or AWS account.")
        }
        return group
    }

    /// The group as `get-deployment-group` shows it, with its last attempted and last successful deployments.
    func groupInfo(_ tx: any StoreTransaction, app: ApplicationRecord, group: GroupRecord) throws -> DeploymentGroupInfo {
        var info = group.info
        info.applicationName = app.name
        info.deploymentGroupId = group.id
        info.deploymentGroupName = group.name
        info.deploymentConfigName = group.configName
        info.computePlatform = ComputePlatform(rawValue: app.computePlatform) ?? .server
        func newest(_ status: String?) throws -> DeploymentInfo? {
            try tx.newestDeployment(groupId: group.id, status: status, excluding: nil)
        }
        func summary(_ d: DeploymentInfo) -> LastDeploymentInfo {
            LastDeploymentInfo(deploymentId: d.deploymentId, status: d.status, endTime: d.completeTime, createTime: d.createTime)
        }
        if let latest = try newest(nil) {
            info.lastAttemptedDeployment = summary(latest)
            info.targetRevision = latest.revision
        }
        info.lastSuccessfulDeployment = try newest("Succeeded").map(summary)
        return info
    }

    /// Checks the parts of a group definition deployctl acts on. Lambda and ECS groups are stored as given (nothing
    /// deploys them here).
    func validateGroupSettings(_ info: DeploymentGroupInfo, platform: ComputePlatform) throws {
        if let filters = info.onPremisesInstanceTagFilters, !filters.isEmpty, info.onPremisesTagSet?.onPremisesTagSetList?.isEmpty == false {
            throw ServiceError(
                "InvalidOnPremisesTagCombinationException",
                "onPremisesInstanceTagFilters and onPremisesTagSet cannot be used together.")
        }
        if let problem = TagMatching.problem(in: info.onPremisesInstanceTagFilters ?? []) {
            throw ServiceError("InvalidTagException", "Invalid on-premises instance tag filter: \(problem).")
        }
        let tagSet = info.onPremisesTagSet?.onPremisesTagSetList ?? []
        guard tagSet.count <= 3 else {
            throw ServiceError("TagSetListLimitExceededException", "An on-premises tag set holds at most 3 tag groups; got \(tagSet.count).")
        }
        for (index, group) in tagSet.enumerated() {
            guard !group.isEmpty, group.count <= 10 else {
                throw ServiceError("InvalidTagException", "Tag group \(index + 1) of the on-premises tag set must hold 1 to 10 filters.")
            }
            if let problem = TagMatching.problem(in: group) {
                throw ServiceError("InvalidTagException", "Invalid filter in tag group \(index + 1) of the on-premises tag set: \(problem).")
            }
        }
        if platform == .server {
            try Self.validateBlueGreen(info)
            try Self.validateTrafficControl(info)
        }
        if let rollback = info.autoRollbackConfiguration, rollback.enabled == true, rollback.events?.isEmpty ?? true {
            throw ServiceError(
                "InvalidAutoRollbackConfigException",
                "Automatic rollback is enabled but no events are given (DEPLOYMENT_FAILURE, DEPLOYMENT_STOP_ON_REQUEST).")
        }
    }

    public func createDeploymentGroup(_ input: CreateDeploymentGroupInput) throws -> CreateDeploymentGroupOutput {
        let name = try Validate.groupName(input.deploymentGroupName)
        let tags = try validatedTags(input.tags ?? [], error: "InvalidTagsToAddException")
        var info = DeploymentGroupInfo(
            ec2TagFilters: input.ec2TagFilters ?? [],
            onPremisesInstanceTagFilters: input.onPremisesInstanceTagFilters ?? [],
            autoScalingGroups: [],
            serviceRoleArn: input.serviceRoleArn,
            triggerConfigurations: input.triggerConfigurations ?? [],
            alarmConfiguration: try input.alarmConfiguration.map(Self.validAlarmConfiguration),
            autoRollbackConfiguration: input.autoRollbackConfiguration,
            deploymentStyle: input.deploymentStyle,
            outdatedInstancesStrategy: input.outdatedInstancesStrategy ?? .update,
            blueGreenDeploymentConfiguration: input.blueGreenDeploymentConfiguration,
            loadBalancerInfo: input.loadBalancerInfo,
            ec2TagSet: input.ec2TagSet,
            onPremisesTagSet: input.onPremisesTagSet,
            ecsServices: input.ecsServices,
            terminationHookEnabled: input.terminationHookEnabled ?? false)
        return try store.write { tx in
            let app = try requireApplication(tx, input.applicationName)
            let platform = ComputePlatform(rawValue: app.computePlatform) ?? .server
            if info.deploymentStyle == nil {
                info.deploymentStyle =
                    platform == .server
                    ? DeploymentStyle(deploymentType: .inPlace, deploymentOption: .withoutTrafficControl)
                    : DeploymentStyle(deploymentType: .blueGreen, deploymentOption: .withTrafficControl)
            }
            try validateGroupSettings(info, platform: platform)
            let configName = input.deploymentConfigName ?? Self.defaultConfigName(for: platform)
            _ = try requireConfig(tx, configName, for: platform)
            if try findGroup(tx, app: app, name: name) != nil {
                throw ServiceError(
                    "DeploymentGroupAlreadyExistsException", "The deployment group \(name) already exists for application \(app.name).")
            }
            let id = Identifier.uuid()
            try tx.insertGroup(GroupRecord(id: id, applicationId: app.id, name: name, configName: configName, info: info))
            try replaceTags(tx, resourceId: id, adding: tags)
            return CreateDeploymentGroupOutput(deploymentGroupId: id)
        }
    }

    public func getDeploymentGroup(_ input: GetDeploymentGroupInput) throws -> GetDeploymentGroupOutput {
        expireOverdueCommandsIfWritable()
        return try store.read { tx in
            let app = try requireApplication(tx, input.applicationName)
            let group = try requireGroup(tx, app: app, name: input.deploymentGroupName)
            return GetDeploymentGroupOutput(deploymentGroupInfo: try groupInfo(tx, app: app, group: group))
        }
    }

    public func listDeploymentGroups(_ input: ListDeploymentGroupsInput) throws -> ListDeploymentGroupsOutput {
        try store.read { tx in
            let app = try requireApplication(tx, input.applicationName)
            let names = try tx.groupNames(applicationId: app.id)
            let (page, next) = try Paging.page(names, token: input.nextToken)
            return ListDeploymentGroupsOutput(applicationName: app.name, deploymentGroups: page, nextToken: next)
        }
    }

    public func batchGetDeploymentGroups(_ input: BatchGetDeploymentGroupsInput) throws -> BatchGetDeploymentGroupsOutput {
        expireOverdueCommandsIfWritable()
        try Validate.batch(input.deploymentGroupNames, limit: 100, what: "deployment group name", required: "DeploymentGroupNameRequiredException")
        return try store.read { tx in
            let app = try requireApplication(tx, input.applicationName)
            var infos: [DeploymentGroupInfo] = []
            var missing: [String] = []
            for name in input.deploymentGroupNames {
                if let group = try findGroup(tx, app: app, name: try Validate.groupName(name)) {
                    infos.append(try groupInfo(tx, app: app, group: group))
                } else {
                    missing.append(name)
                }
            }
            let message = missing.isEmpty ? nil : "Deployment groups not found: \(missing.joined(separator: ", "))"
            return BatchGetDeploymentGroupsOutput(deploymentGroupsInfo: infos, errorMessage: message)
        }
    }

    public func updateDeploymentGroup(_ input: UpdateDeploymentGroupInput) throws -> UpdateDeploymentGroupOutput {
        try store.write { tx in
            let app = try requireApplication(tx, input.applicationName)
            var group = try requireGroup(tx, app: app, name: input.currentDeploymentGroupName)
            if let newName = input.newDeploymentGroupName, newName != group.name {
                let newName = try Validate.groupName(newName)
                if try findGroup(tx, app: app, name: newName) != nil {
                    throw ServiceError(
                        "DeploymentGroupAlreadyExistsException", "The deployment group \(newName) already exists for application \(app.name).")
                }
                group.name = newName
            }
            let platform = ComputePlatform(rawValue: app.computePlatform) ?? .server
            if let configName = input.deploymentConfigName {
                _ = try requireConfig(tx, configName, for: platform)
                group.configName = configName
            }
            var info = group.info
            if let v = input.ec2TagFilters { info.ec2TagFilters = v }
            if let v = input.onPremisesInstanceTagFilters {
                info.onPremisesInstanceTagFilters = v
                if !v.isEmpty, input.onPremisesTagSet == nil { info.onPremisesTagSet = nil }
            }
            if let v = input.onPremisesTagSet {
                info.onPremisesTagSet = v
                if v.onPremisesTagSetList?.isEmpty == false, input.onPremisesInstanceTagFilters == nil { info.onPremisesInstanceTagFilters = [] }
            }
            if let v = input.serviceRoleArn { info.serviceRoleArn = v }
            if let v = input.triggerConfigurations { info.triggerConfigurations = v }
            if let v = input.alarmConfiguration { info.alarmConfiguration = try Self.validAlarmConfiguration(v) }
            if let v = input.autoRollbackConfiguration { info.autoRollbackConfiguration = v }
            if let v = input.outdatedInstancesStrategy { info.outdatedInstancesStrategy = v }
            if let v = input.deploymentStyle { info.deploymentStyle = v }
            if let v = input.blueGreenDeploymentConfiguration { info.blueGreenDeploymentConfiguration = v }
            if let v = input.loadBalancerInfo { info.loadBalancerInfo = v }
            if let v = input.ec2TagSet { info.ec2TagSet = v }
            if let v = input.ecsServices { info.ecsServices = v }
            if let v = input.terminationHookEnabled { info.terminationHookEnabled = v }
            try validateGroupSettings(info, platform: platform)
            try tx.updateGroup(
                GroupRecord(id: group.id, applicationId: group.applicationId, name: group.name, configName: group.configName, info: info))
            eventSubjects.forget()
            return UpdateDeploymentGroupOutput(hooksNotCleanedUp: [])
        }
    }

    /// Deletes a group. Like AWS, a missing group is not an error; its past deployments stay readable.
    public func deleteDeploymentGroup(_ input: DeleteDeploymentGroupInput) throws -> DeleteDeploymentGroupOutput {
        let name = try Validate.groupName(input.deploymentGroupName)
        return try store.write { tx in
            let app = try requireApplication(tx, input.applicationName)
            if let group = try findGroup(tx, app: app, name: name) {
                try tx.deleteGroup(id: group.id)
                eventSubjects.forget()
            }
            return DeleteDeploymentGroupOutput(hooksNotCleanedUp: [])
        }
    }
}
