import DeployModel
import DeployStore
import Foundation
import HostCommandModel

extension DeploymentStatus {
    /// Created, Queued, InProgress, Baking and Ready deployments hold their group.
    public var isActive: Bool { ![.succeeded, .failed, .stopped].contains(self) }
}

extension ControlPlane {
    static let noInstancesMessage =
        "The deployment failed because no instances were found for your deployment group. Check your deployment group settings to make sure the tags for your on-premises instances correctly identify the instances you want to deploy to, and then try again."

    func findDeployment(_ tx: any StoreTransaction, _ id: String) throws -> DeploymentInfo? {
        try tx.deployment(id: id)
    }

    func requireDeployment(_ tx: any StoreTransaction, _ id: String?) throws -> DeploymentInfo {
        let id = try Validate.deploymentId(id)
        guard let info = try findDeployment(tx, id) else {
            throw ServiceError("DeploymentDoesNotExistException", "The deployment \(id) does not exist with the user or AWS account.")
        }
        return info
    }

    /// The registered instances a group (or a deployment's `targetInstances`) selects, by name.
    func selectTargets(_ tx: any StoreTransaction, group: DeploymentGroupInfo, override: TargetInstances?) throws -> [InstanceInfo] {
        let names = try tx.instanceNames(registered: true)
        var selected: [InstanceInfo] = []
        for name in names {
            let tags = try instanceTags(tx, name)
            let matches: Bool
            if let filters = override?.tagFilters, !filters.isEmpty {
                matches = TagMatching.matches(tags, anyOf: filters.map(TagFilter.init))
            } else if let set = group.onPremisesTagSet?.onPremisesTagSetList, !set.isEmpty {
                matches = TagMatching.matches(tags, everyGroupOf: set)
            } else {
                matches = TagMatching.matches(tags, anyOf: group.onPremisesInstanceTagFilters ?? [])
            }
            if matches, let info = try findInstance(tx, name) { selected.append(info) }
        }
        return selected
    }

    public func createDeployment(_ input: CreateDeploymentInput) throws -> CreateDeploymentOutput {
        try expireOverdueCommands()
        if let description = input.description, description.count > 100 {
            throw ServiceError("DescriptionTooLongException", "The description is longer than 100 characters.")
        }
        if let rollback = input.autoRollbackConfiguration, rollback.enabled == true, rollback.events?.isEmpty ?? true {
            throw ServiceError("InvalidAutoRollbackConfigException", "Automatic rollback is enabled but no events are given.")
        }
        if input.targetInstances?.autoScalingGroups?.isEmpty == false || input.targetInstances?.ec2TagSet != nil {
            throw ServiceError("InvalidTargetInstancesException", "targetInstances takes tagFilters for on-premises instances only.")
        }
        if let problem = TagMatching.problem(in: (input.targetInstances?.tagFilters ?? []).map(TagFilter.init)) {
            throw ServiceError("InvalidTargetInstancesException", "Invalid tag filter in targetInstances: \(problem).")
        }
        return try store.write { tx in
            try tx.deleteEvents(before: now().timeIntervalSince1970 - eventRetention, limit: 1000)
            try tx.deleteFinishedDeliveries(before: now().timeIntervalSince1970 - eventRetention, limit: 1000)
            return CreateDeploymentOutput(deploymentId: try insertDeployment(tx, input, creator: .user))
        }
    }

    /// Creates a deployment inside the caller's transaction (create-deployment, and automatic rollbacks).
    func insertDeployment(
        _ tx: any StoreTransaction, _ input: CreateDeploymentInput, creator: DeploymentCreator, rollbackInfo: RollbackInfo? = nil,
        rollingBack: [InstanceTarget]? = nil
    ) throws -> String {
        do {
            let app = try requireApplication(tx, input.applicationName)
            guard let groupName = input.deploymentGroupName, !groupName.isEmpty else {
                throw ServiceError("DeploymentGroupNameRequiredException", "The deployment group name must be specified.")
            }
            guard let group = try findGroup(tx, app: app, name: groupName) else {
                throw ServiceError(
                    "DeploymentGroupDoesNotExistException", "The deployment group \(groupName) does not exist for application \(app.name).")
            }
            let platform = ComputePlatform(rawValue: app.computePlatform) ?? .server
            guard platform == .server else {
                throw ServiceError(
                    "InvalidComputePlatformException",
                    "The application \(app.name) is for the \(platform.rawValue) compute platform; deployctl deploys to servers (EC2/on-premises) only. Its applications, groups and configurations are kept as AWS keeps them, but it cannot run a \(platform.rawValue) deployment."
                )
            }
            let current = try groupInfo(tx, app: app, group: group)
            let (revision, identity) = try normalizedRevision(input.revision ?? current.targetRevision)
            let configName = input.deploymentConfigName ?? group.configName
            let config = try requireConfig(tx, configName, for: .server)
            if Self.shiftPlan(config.info.trafficRoutingConfig) != nil, current.deploymentStyle?.deploymentType != .blueGreen {
                throw ServiceError(
                    "InvalidDeploymentConfigNameException",
                    "The deployment configuration \(configName) shifts traffic in steps (\(config.info.trafficRoutingConfig?.type?.rawValue ?? "")): it needs a BLUE_GREEN deployment group, and \(group.name) deploys in place."
                )
            }

            if let active = try tx.activeDeploymentId(groupId: group.id) {
                throw ServiceError(
                    "DeploymentLimitExceededException", "The Deployment Group '\(group.name)' already has an active Deployment '\(active)'.")
            }

            try upsertRevision(tx, appId: app.id, revision: revision, identity: identity, description: nil)
            let created = now()
            try markRevisionUsed(tx, appId: app.id, identity: identity, groupName: group.name, at: created)

            var id = Identifier.deploymentId()
            while try findDeployment(tx, id) != nil { id = Identifier.deploymentId() }
            let blueGreen = current.deploymentStyle?.deploymentType == .blueGreen
            let fleets = blueGreen && rollingBack == nil ? try blueGreenFleets(tx, group: current, input: input) : nil
            let blueGreenTargets = blueGreen ? self.blueGreenTargets(id: id, created: created, fleets: fleets, rollingBack: rollingBack) : []
            // Instances whose last deployment in this group failed go first, as on AWS.
            let targets =
                blueGreen
                ? []
                : try selectTargets(tx, group: current, override: input.targetInstances).enumerated().sorted { a, b in
                    let af = try? lastTargetFailed(tx, groupId: group.id, instance: a.element.instanceName ?? "")
                    let bf = try? lastTargetFailed(tx, groupId: group.id, instance: b.element.instanceName ?? "")
                    if (af ?? false) != (bf ?? false) { return af ?? false }
                    return a.offset < b.offset
                }.map(\.element)
            let previous = try tx.newestDeployment(groupId: group.id, status: "Succeeded", excluding: nil)

            var info = DeploymentInfo(
                applicationName: app.name, deploymentGroupName: group.name, deploymentConfigName: configName, deploymentId: id,
                previousRevision: previous?.revision, revision: revision, status: .created, createTime: created,
                deploymentOverview: DeploymentOverview(
                    pending: targets.count + blueGreenTargets.count, inProgress: 0, succeeded: 0, failed: 0, skipped: 0, ready: 0),
                description: input.description, creator: creator,
                ignoreApplicationStopFailures: input.ignoreApplicationStopFailures ?? false,
                autoRollbackConfiguration: input.autoRollbackConfiguration ?? current.autoRollbackConfiguration,
                updateOutdatedInstancesOnly: input.updateOutdatedInstancesOnly ?? false,
                deploymentStyle: current.deploymentStyle, targetInstances: input.targetInstances,
                instanceTerminationWaitTimeStarted: false,
                blueGreenDeploymentConfiguration: blueGreen ? current.blueGreenDeploymentConfiguration : nil,
                loadBalancerInfo: current.loadBalancerInfo,
                fileExistsBehavior: input.fileExistsBehavior ?? .disallow,
                deploymentStatusMessages: [], computePlatform: .server)
            info.rollbackInfo = rollbackInfo
            info.overrideAlarmConfiguration = try input.overrideAlarmConfiguration.map(Self.validAlarmConfiguration)
            if targets.isEmpty, blueGreenTargets.isEmpty {
                info.status = .failed
                info.completeTime = created
                info.errorInformation = ErrorInformation(code: .noInstances, message: Self.noInstancesMessage)
            }
            try tx.insertDeployment(DeploymentRecord(id: id, applicationId: app.id, groupId: group.id, createTime: created, info: info))
            for (position, target) in blueGreenTargets.enumerated() {
                try tx.insertTarget(target, deploymentId: id, position: position)
            }
            for (position, instance) in targets.enumerated() {
                let name = instance.instanceName ?? ""
                let target = InstanceTarget(
                    deploymentId: id, targetId: name, targetArn: instance.instanceArn, status: .pending, lastUpdatedAt: created,
                    lifecycleEvents: LifecycleEventName.all.map { LifecycleEvent(lifecycleEventName: $0, status: .pending) })
                try tx.insertTarget(target, deploymentId: id, position: position)
            }
            try announceDeployment(tx, info, state: "CREATED")
            if info.status == .failed { try announceDeployment(tx, info, state: "FAILURE") }
            try checkAlarmsAtCreation(tx, &info)
            return id
        }
    }

    public func getDeployment(_ input: GetDeploymentInput) throws -> GetDeploymentOutput {
        expireOverdueCommandsIfWritable()
        return try store.read { tx in GetDeploymentOutput(deploymentInfo: try requireDeployment(tx, input.deploymentId)) }
    }

    public func batchGetDeployments(_ input: BatchGetDeploymentsInput) throws -> BatchGetDeploymentsOutput {
        expireOverdueCommandsIfWritable()
        try Validate.batch(input.deploymentIds, limit: 25, what: "deployment ID", required: "DeploymentIdRequiredException")
        return try store.read { tx in
            var infos: [DeploymentInfo] = []
            for id in input.deploymentIds {
                if let info = try findDeployment(tx, try Validate.deploymentId(id)) { infos.append(info) }
            }
            return BatchGetDeploymentsOutput(deploymentsInfo: infos)
        }
    }

    /// Newest first, as the console and `aws deploy list-deployments` show them.
    public func listDeployments(_ input: ListDeploymentsInput) throws -> ListDeploymentsOutput {
        expireOverdueCommandsIfWritable()
        if input.applicationName != nil, input.deploymentGroupName == nil {
            throw ServiceError("DeploymentGroupNameRequiredException", "If applicationName is specified, then deploymentGroupName must be specified.")
        }
        if input.applicationName == nil, input.deploymentGroupName != nil {
            throw ServiceError("ApplicationNameRequiredException", "If deploymentGroupName is specified, then applicationName must be specified.")
        }
        if let range = input.createTimeRange, let start = range.start, let end = range.end, start > end {
            throw ServiceError("InvalidTimeRangeException", "The start of createTimeRange is after its end.")
        }
        return try store.read { tx in
            var filter = DeploymentFilter(
                statuses: (input.includeOnlyStatuses ?? []).map(\.rawValue), createdFrom: input.createTimeRange?.start,
                createdTo: input.createTimeRange?.end)
            if input.applicationName != nil {
                let app = try requireApplication(tx, input.applicationName)
                filter.groupId = try requireGroup(tx, app: app, name: input.deploymentGroupName).id
            }
            let ids = try tx.deploymentIds(matching: filter)
            let (page, next) = try Paging.page(ids, token: input.nextToken)
            return ListDeploymentsOutput(deployments: page, nextToken: next)
        }
    }

    /// Stops the deployment in `tx`: its targets not started are skipped at once, it is Stopped with `error`; answers
    /// the instances whose event is still running (their agents report it, and their targets end Skipped).
    func stop(_ tx: any StoreTransaction, _ info: inout DeploymentInfo, because error: ErrorInformation) throws -> Set<String> {
        let id = info.deploymentId ?? ""
        let stopped = now()
        let outstanding = Set(try tx.commandInstances(deploymentId: id))
        for var target in try targets(tx, deploymentId: id) where target.status == .pending || target.status == .inProgress || target.status == .ready
        {
            if outstanding.contains(target.targetId ?? "") { continue }
            let previous = target
            target.status = .skipped
            target.lastUpdatedAt = stopped
            target.lifecycleEvents = target.lifecycleEvents?.map { event in
                var event = event
                if event.status == .pending || event.status == .inProgress {
                    event.status = .skipped
                    event.endTime = stopped
                }
                return event
            }
            try saveTarget(tx, target, previous: previous)
        }
        let previousStatus = info.status
        info.status = .stopped
        info.completeTime = stopped
        info.errorInformation = error
        info = try withOverview(tx, info)
        try saveDeployment(tx, info, previous: previousStatus)
        return outstanding
    }

    /// Stops dispatching: targets not started are skipped at once; events already running finish (their agents
    /// report them, and their targets end Skipped). With `--auto-rollback-enabled`, or the deployment's
    /// `autoRollbackConfiguration` listing DEPLOYMENT_STOP_ON_REQUEST, the last successful revision is redeployed.
    public func stopDeployment(_ input: StopDeploymentInput) throws -> StopDeploymentOutput {
        try expireOverdueCommands()
        return try store.write { tx in
            var info = try requireDeployment(tx, input.deploymentId)
            let id = info.deploymentId ?? ""
            guard info.status?.isActive ?? false else {
                throw ServiceError("DeploymentAlreadyCompletedException", "The deployment \(id) has already completed.")
            }
            let outstanding = try stop(
                tx, &info, because: ErrorInformation(code: .manualStop, message: "The deployment was stopped by a stop-deployment request."))
            let requested = input.autoRollbackEnabled
            if requested == true
                || (requested == nil && info.autoRollbackConfiguration?.enabled == true
                    && info.autoRollbackConfiguration?.events?.contains(.deploymentStopOnRequest) == true)
            {
                try rollBackIfConfigured(tx, info, event: .deploymentStopOnRequest, force: true)
            }
            if outstanding.isEmpty {
                return StopDeploymentOutput(status: .succeeded, statusMessage: "Deployment \(id) stopped.")
            }
            return StopDeploymentOutput(
                status: .pending,
                statusMessage: "Deployment \(id) is stopping: \(outstanding.count) lifecycle event(s) already running will finish first.")
        }
    }

    func lastTargetFailed(_ tx: any StoreTransaction, groupId: String, instance: String) throws -> Bool {
        try tx.newestTargetStatus(groupId: groupId, instance: instance) == "Failed"
    }

    // MARK: Targets

    func targets(_ tx: any StoreTransaction, deploymentId: String) throws -> [InstanceTarget] {
        try tx.targets(deploymentId: deploymentId)
    }

    /// The target named by its id, the last part of its ARN, or its ARN. One keyed read for the usual cases (a
    /// batch of 25 over a 500-instance deployment read every target 25 times before: 278 ms for its dashboard page).
    func requireTarget(_ tx: any StoreTransaction, deploymentId: String, targetId: String) throws -> InstanceTarget {
        let wanted = targetId.split(separator: "/").last.map { String($0) } ?? targetId
        if let direct = try tx.target(deploymentId: deploymentId, instance: targetId) { return direct }
        if wanted != targetId, let direct = try tx.target(deploymentId: deploymentId, instance: wanted) { return direct }
        let all = try targets(tx, deploymentId: deploymentId)
        guard let target = all.first(where: { $0.targetId == targetId || $0.targetId == wanted || $0.targetArn == targetId }) else {
            throw ServiceError("DeploymentTargetDoesNotExistException", "The target \(targetId) is not part of deployment \(deploymentId).")
        }
        return target
    }

    public func listDeploymentTargets(_ input: ListDeploymentTargetsInput) throws -> ListDeploymentTargetsOutput {
        expireOverdueCommandsIfWritable()
        return try store.read { tx in
            let info = try requireDeployment(tx, input.deploymentId)
            var all = try targets(tx, deploymentId: info.deploymentId ?? "")
            for (name, values) in input.targetFilters ?? [:] {
                switch name {
                case "TargetStatus":
                    let allowed = TargetStatus.allCases.map(\.rawValue)
                    if let bad = values.first(where: { !allowed.contains($0) }) {
                        throw ServiceError(
                            "InvalidInstanceStatusException", "'\(bad)' is not a target status; use \(allowed.joined(separator: ", ")).")
                    }
                    all = all.filter { values.contains($0.status?.rawValue ?? "") }
                case "ServerInstanceLabel":
                    all = all.filter { values.contains($0.instanceLabel?.rawValue ?? "") }
                default:
                    throw ServiceError(
                        "InvalidTargetFilterNameException", "'\(name)' is not a target filter; use TargetStatus or ServerInstanceLabel.")
                }
            }
            let (page, next) = try Paging.page(all.compactMap(\.targetId), token: input.nextToken)
            return ListDeploymentTargetsOutput(targetIds: page, nextToken: next)
        }
    }

    public func getDeploymentTarget(_ input: GetDeploymentTargetInput) throws -> GetDeploymentTargetOutput {
        expireOverdueCommandsIfWritable()
        return try store.read { tx in
            let info = try requireDeployment(tx, input.deploymentId)
            let targetId = input.targetId
            guard !targetId.isEmpty else {
                throw ServiceError("DeploymentTargetIdRequiredException", "A target ID must be specified.")
            }
            let target = try requireTarget(tx, deploymentId: info.deploymentId ?? "", targetId: targetId)
            return GetDeploymentTargetOutput(
                deploymentTarget: DeploymentTarget(deploymentTargetType: .instanceTarget, instanceTarget: target))
        }
    }

    public func batchGetDeploymentTargets(_ input: BatchGetDeploymentTargetsInput) throws -> BatchGetDeploymentTargetsOutput {
        expireOverdueCommandsIfWritable()
        guard !input.targetIds.isEmpty else { throw ServiceError("DeploymentTargetIdRequiredException", "At least one target ID must be specified.") }
        guard input.targetIds.count <= 25 else {
            throw ServiceError("DeploymentTargetListSizeExceededException", "At most 25 targets can be requested; got \(input.targetIds.count).")
        }
        return try store.read { tx in
            let info = try requireDeployment(tx, input.deploymentId)
            let found = try input.targetIds.map { id in
                DeploymentTarget(
                    deploymentTargetType: .instanceTarget,
                    instanceTarget: try requireTarget(tx, deploymentId: info.deploymentId ?? "", targetId: id))
            }
            return BatchGetDeploymentTargetsOutput(deploymentTargets: found)
        }
    }

    // MARK: Deprecated instance views

    func summary(_ target: InstanceTarget) -> InstanceSummary {
        InstanceSummary(
            deploymentId: target.deploymentId, instanceId: target.targetId,
            status: target.status.flatMap { InstanceStatus(rawValue: $0.rawValue) }, lastUpdatedAt: target.lastUpdatedAt,
            lifecycleEvents: target.lifecycleEvents, instanceType: target.instanceLabel.flatMap { InstanceType(rawValue: $0.rawValue) })
    }

    public func listDeploymentInstances(_ input: ListDeploymentInstancesInput) throws -> ListDeploymentInstancesOutput {
        expireOverdueCommandsIfWritable()
        return try store.read { tx in
            let info = try requireDeployment(tx, input.deploymentId)
            var all = try targets(tx, deploymentId: info.deploymentId ?? "")
            if let statuses = input.instanceStatusFilter, !statuses.isEmpty {
                all = all.filter { target in statuses.contains { $0.rawValue == target.status?.rawValue } }
            }
            if let types = input.instanceTypeFilter, !types.isEmpty {
                guard Self.isBlueGreen(info) else {
                    throw ServiceError("InvalidDeploymentInstanceTypeException", "Instance types are supported for blue/green deployments only.")
                }
                all = all.filter { target in types.contains { $0.rawValue == target.instanceLabel?.rawValue } }
            }
            let (page, next) = try Paging.page(all.compactMap(\.targetId), token: input.nextToken)
            return ListDeploymentInstancesOutput(instancesList: page, nextToken: next)
        }
    }

    public func getDeploymentInstance(_ input: GetDeploymentInstanceInput) throws -> GetDeploymentInstanceOutput {
        expireOverdueCommandsIfWritable()
        return try store.read { tx in
            let info = try requireDeployment(tx, input.deploymentId)
            guard !input.instanceId.isEmpty else { throw ServiceError("InstanceIdRequiredException", "An instance ID must be specified.") }
            do {
                let target = try requireTarget(tx, deploymentId: info.deploymentId ?? "", targetId: input.instanceId)
                return GetDeploymentInstanceOutput(instanceSummary: summary(target))
            } catch let error as ServiceError where error.code == "DeploymentTargetDoesNotExistException" {
                throw ServiceError("InstanceDoesNotExistException", error.message)
            }
        }
    }

    public func batchGetDeploymentInstances(_ input: BatchGetDeploymentInstancesInput) throws -> BatchGetDeploymentInstancesOutput {
        expireOverdueCommandsIfWritable()
        try Validate.batch(input.instanceIds, limit: 25, what: "instance ID", required: "InstanceIdRequiredException")
        return try store.read { tx in
            let info = try requireDeployment(tx, input.deploymentId)
            var summaries: [InstanceSummary] = []
            var missing: [String] = []
            for id in input.instanceIds {
                if let target = try? requireTarget(tx, deploymentId: info.deploymentId ?? "", targetId: id) {
                    summaries.append(summary(target))
                } else {
                    missing.append(id)
                }
            }
            let message = missing.isEmpty ? nil : "Instances not in deployment \(info.deploymentId ?? ""): \(missing.joined(separator: ", "))"
            return BatchGetDeploymentInstancesOutput(instancesSummary: summaries, errorMessage: message)
        }
    }
}
