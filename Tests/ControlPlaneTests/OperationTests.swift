import ControlPlane
import DeployModel
import Foundation
import HostCommandModel
import Testing

@Suite struct ApplicationTests {
    @Test(arguments: StoreKind.selected) func createGetRenameDelete(_ store: StoreKind) throws {
        let f = try PlaneFixture(store)
        let id = try f.plane.createApplication(CreateApplicationInput(applicationName: "shop")).applicationId
        #expect(id?.count == 36)
        let info = try f.plane.getApplication(GetApplicationInput(applicationName: "shop")).application
        #expect(info?.applicationId == id)
        #expect(info?.computePlatform == .server)
        #expect(info?.linkedToGitHub == false)

        try f.plane.updateApplication(UpdateApplicationInput(applicationName: "shop", newApplicationName: "store"))
        #expect(
            serviceErrorCode { _ = try f.plane.getApplication(GetApplicationInput(applicationName: "shop")) } == "ApplicationDoesNotExistException")
        #expect(try f.plane.getApplication(GetApplicationInput(applicationName: "store")).application?.applicationId == id)

        try f.plane.deleteApplication(DeleteApplicationInput(applicationName: "store"))
        #expect(try f.plane.listApplications(ListApplicationsInput()).applications == [])
    }

    /// Tools that manage CodeDeploy as code create Lambda and ECS resources: they are kept and returned as AWS does,
    /// with AWS's predefined configurations; only a deployment to them is refused.
    @Test(arguments: StoreKind.selected) func lambdaAndECSResourcesAreKeptButNotDeployed(_ store: StoreKind) throws {
        let f = try PlaneFixture(store)
        let revision = RevisionLocation(
            revisionType: .s3, s3Location: S3Location(bucket: "b", key: "k.zip", bundleType: .zip))
        for (platform, defaultConfig, other) in [
            (ComputePlatform.lambda, "CodeDeployDefault.LambdaAllAtOnce", "CodeDeployDefault.LambdaCanary10Percent5Minutes"),
            (.ecs, "CodeDeployDefault.ECSAllAtOnce", "CodeDeployDefault.ECSLinear10PercentEvery3Minutes"),
        ] {
            let name = "app-\(platform.rawValue)"
            _ = try f.plane.createApplication(CreateApplicationInput(applicationName: name, computePlatform: platform))
            #expect(try f.plane.getApplication(GetApplicationInput(applicationName: name)).application?.computePlatform == platform)
            _ = try f.plane.createDeploymentGroup(
                CreateDeploymentGroupInput(applicationName: name, deploymentGroupName: "g", serviceRoleArn: "arn:aws:iam::1:role/r"))
            let group = try f.plane.getDeploymentGroup(GetDeploymentGroupInput(applicationName: name, deploymentGroupName: "g")).deploymentGroupInfo
            #expect(group?.computePlatform == platform)
            #expect(group?.deploymentConfigName == defaultConfig)
            #expect(group?.deploymentStyle == DeploymentStyle(deploymentType: .blueGreen, deploymentOption: .withTrafficControl))
            #expect(
                serviceErrorCode {
                    _ = try f.plane.updateDeploymentGroup(
                        UpdateDeploymentGroupInput(
                            applicationName: name, currentDeploymentGroupName: "g", deploymentConfigName: "CodeDeployDefault.OneAtATime"))
                } == "InvalidDeploymentConfigNameException")
            _ = try f.plane.updateDeploymentGroup(
                UpdateDeploymentGroupInput(applicationName: name, currentDeploymentGroupName: "g", deploymentConfigName: other))
            #expect(
                serviceErrorCode {
                    _ = try f.plane.createDeployment(CreateDeploymentInput(applicationName: name, deploymentGroupName: "g", revision: revision))
                } == "InvalidComputePlatformException")
            #expect(try f.plane.listDeployments(ListDeploymentsInput()).deployments == [])
        }
        // A Server group cannot name a traffic-shifting configuration.
        try f.app("servers")
        #expect(
            serviceErrorCode {
                _ = try f.plane.createDeploymentGroup(
                    CreateDeploymentGroupInput(
                        applicationName: "servers", deploymentGroupName: "g", deploymentConfigName: "CodeDeployDefault.LambdaAllAtOnce"))
            } == "InvalidDeploymentConfigNameException")
        // Custom Lambda and ECS configurations keep their traffic routing.
        let canary = TrafficRoutingConfig(type: .timeBasedCanary, timeBasedCanary: TimeBasedCanary(canaryPercentage: 20, canaryInterval: 7))
        _ = try f.plane.createDeploymentConfig(
            CreateDeploymentConfigInput(deploymentConfigName: "Canary20", trafficRoutingConfig: canary, computePlatform: .lambda))
        let info = try f.plane.getDeploymentConfig(GetDeploymentConfigInput(deploymentConfigName: "Canary20")).deploymentConfigInfo
        #expect(info?.trafficRoutingConfig == canary)
        #expect(info?.computePlatform == .lambda)
        #expect(info?.minimumHealthyHosts == nil)
        for (bad, code) in [
            (CreateDeploymentConfigInput(deploymentConfigName: "x", computePlatform: .ecs), "InvalidTrafficRoutingConfigurationException"),
            (
                CreateDeploymentConfigInput(
                    deploymentConfigName: "x",
                    trafficRoutingConfig: TrafficRoutingConfig(
                        type: .timeBasedLinear, timeBasedLinear: TimeBasedLinear(linearPercentage: 0, linearInterval: 1)),
                    computePlatform: .ecs), "InvalidTrafficRoutingConfigurationException"
            ),
            (
                CreateDeploymentConfigInput(
                    deploymentConfigName: "x", minimumHealthyHosts: MinimumHealthyHosts(type: .hostCount, value: 1),
                    trafficRoutingConfig: TrafficRoutingConfig(type: .allAtOnce), computePlatform: .lambda), "InvalidMinimumHealthyHostValueException"
            ),
            // A Server configuration may shift traffic (deployctl's extension, for blue/green), with valid steps only.
            (
                CreateDeploymentConfigInput(
                    deploymentConfigName: "x",
                    trafficRoutingConfig: TrafficRoutingConfig(
                        type: .timeBasedCanary, timeBasedCanary: TimeBasedCanary(canaryPercentage: 100, canaryInterval: 5))),
                "InvalidTrafficRoutingConfigurationException"
            ),
        ] {
            #expect(serviceErrorCode { _ = try f.plane.createDeploymentConfig(bad) } == code)
        }
        let names = try f.plane.listDeploymentConfigs(ListDeploymentConfigsInput()).deploymentConfigsList ?? []
        #expect(names.filter { $0.hasPrefix("CodeDeployDefault.") }.count == 17)
        #expect(
            names.contains("CodeDeployDefault.LambdaLinear10PercentEvery10Minutes") && names.contains("CodeDeployDefault.ECSCanary10Percent15Minutes")
        )
        #expect(
            try f.plane.getDeploymentConfig(GetDeploymentConfigInput(deploymentConfigName: "CodeDeployDefault.ECSCanary10Percent5Minutes"))
                .deploymentConfigInfo?.trafficRoutingConfig?.timeBasedCanary == TimeBasedCanary(canaryPercentage: 10, canaryInterval: 5))
    }

    @Test(arguments: StoreKind.selected) func errors(_ store: StoreKind) throws {
        let f = try PlaneFixture(store)
        try f.app("a")
        try f.app("b")
        #expect(serviceErrorCode { try f.app("a") } == "ApplicationAlreadyExistsException")
        #expect(serviceErrorCode { try f.app("") } == "ApplicationNameRequiredException")
        #expect(serviceErrorCode { try f.app(String(repeating: "x", count: 101)) } == "InvalidApplicationNameException")
        #expect(
            serviceErrorCode { try f.plane.updateApplication(UpdateApplicationInput(applicationName: "a", newApplicationName: "b")) }
                == "ApplicationAlreadyExistsException")
        #expect(
            serviceErrorCode { _ = try f.plane.batchGetApplications(BatchGetApplicationsInput(applicationNames: ["a", "zzz"])) }
                == "ApplicationDoesNotExistException")
        #expect(
            serviceErrorCode {
                _ = try f.plane.batchGetApplications(BatchGetApplicationsInput(applicationNames: Array(repeating: "a", count: 101)))
            } == "BatchLimitExceededException")
    }

    @Test(arguments: StoreKind.selected) func deletingAnApplicationRemovesItsGroupsAndRevisions(_ store: StoreKind) throws {
        let f = try PlaneFixture(store)
        try f.app()
        try f.group()
        try f.plane.registerApplicationRevision(
            RegisterApplicationRevisionInput(
                applicationName: "app",
                revision: RevisionLocation(revisionType: .gitHub, gitHubLocation: GitHubLocation(repository: "o/r", commitId: "abc"))))
        try f.plane.deleteApplication(DeleteApplicationInput(applicationName: "app"))
        try f.app()
        #expect(try f.plane.listDeploymentGroups(ListDeploymentGroupsInput(applicationName: "app")).deploymentGroups == [])
        #expect(try f.plane.listApplicationRevisions(ListApplicationRevisionsInput(applicationName: "app")).revisions == [])
    }

    @Test(arguments: StoreKind.selected) func listsArePagedWithNextToken(_ store: StoreKind) throws {
        let f = try PlaneFixture(store)
        for i in 0..<150 { try f.app(String(format: "app-%03d", i)) }
        let first = try f.plane.listApplications(ListApplicationsInput())
        #expect(first.applications?.count == 100)
        let token = try #require(first.nextToken)
        let second = try f.plane.listApplications(ListApplicationsInput(nextToken: token))
        #expect(second.applications?.count == 50)
        #expect(second.nextToken == nil)
        #expect(second.applications?.first == "app-100")
        #expect(serviceErrorCode { _ = try f.plane.listApplications(ListApplicationsInput(nextToken: "garbage")) } == "InvalidNextTokenException")
    }
}

@Suite struct DeploymentConfigTests {
    @Test(arguments: StoreKind.selected) func predefinedConfigsExistAndCannotBeDeleted(_ store: StoreKind) throws {
        let f = try PlaneFixture(store)
        let names = try f.plane.listDeploymentConfigs(ListDeploymentConfigsInput()).deploymentConfigsList ?? []
        #expect(names.contains("CodeDeployDefault.OneAtATime"))
        #expect(names.contains("CodeDeployDefault.HalfAtATime"))
        #expect(names.contains("CodeDeployDefault.AllAtOnce"))
        let one = try f.plane.getDeploymentConfig(GetDeploymentConfigInput(deploymentConfigName: "CodeDeployDefault.OneAtATime"))
        #expect(one.deploymentConfigInfo?.minimumHealthyHosts == MinimumHealthyHosts(type: .mostConcurrency, value: 1))
        #expect(one.deploymentConfigInfo?.deploymentConfigId == "00000000-0000-0000-0000-000000000001")
        #expect(
            serviceErrorCode { try f.plane.deleteDeploymentConfig(DeleteDeploymentConfigInput(deploymentConfigName: "CodeDeployDefault.AllAtOnce")) }
                == "InvalidOperationException")
    }

    @Test(arguments: StoreKind.selected) func customConfigLifecycle(_ store: StoreKind) throws {
        let f = try PlaneFixture(store)
        let create = { (name: String, type: MinimumHealthyHostsType, value: Int) in
            _ = try f.plane.createDeploymentConfig(
                CreateDeploymentConfigInput(deploymentConfigName: name, minimumHealthyHosts: MinimumHealthyHosts(type: type, value: value)))
        }
        try create("Three", .hostCount, 3)
        #expect(serviceErrorCode { try create("Three", .hostCount, 3) } == "DeploymentConfigAlreadyExistsException")
        #expect(serviceErrorCode { try create("Bad", .fleetPercent, 100) } == "InvalidMinimumHealthyHostValueException")
        #expect(serviceErrorCode { try create("Neg", .hostCount, -1) } == "InvalidMinimumHealthyHostValueException")
        #expect(serviceErrorCode { try create("Most", .mostConcurrency, 1) } == "InvalidMinimumHealthyHostValueException")
        #expect(serviceErrorCode { try create("CodeDeployDefault.Mine", .hostCount, 1) } == "InvalidDeploymentConfigNameException")
        #expect(
            serviceErrorCode { _ = try f.plane.createDeploymentConfig(CreateDeploymentConfigInput(deploymentConfigName: "NoMin")) }
                == "InvalidMinimumHealthyHostValueException")

        try f.app()
        try f.group(config: "Three")
        #expect(
            serviceErrorCode { try f.plane.deleteDeploymentConfig(DeleteDeploymentConfigInput(deploymentConfigName: "Three")) }
                == "DeploymentConfigInUseException")
        _ = try f.plane.updateDeploymentGroup(
            UpdateDeploymentGroupInput(
                applicationName: "app", currentDeploymentGroupName: "group", deploymentConfigName: "CodeDeployDefault.AllAtOnce"))
        try f.plane.deleteDeploymentConfig(DeleteDeploymentConfigInput(deploymentConfigName: "Three"))
        #expect(
            serviceErrorCode { _ = try f.plane.getDeploymentConfig(GetDeploymentConfigInput(deploymentConfigName: "Three")) }
                == "DeploymentConfigDoesNotExistException")
    }
}

@Suite struct DeploymentGroupTests {
    @Test(arguments: StoreKind.selected) func createUpdateRenameDelete(_ store: StoreKind) throws {
        let f = try PlaneFixture(store)
        try f.app()
        try f.group(filters: [TagFilter(key: "env", value: "prod", type: .keyAndValue)])
        #expect(serviceErrorCode { try f.group() } == "DeploymentGroupAlreadyExistsException")
        #expect(serviceErrorCode { try f.group("g", app: "nope") } == "ApplicationDoesNotExistException")
        #expect(serviceErrorCode { try f.group("g", config: "Missing") } == "DeploymentConfigDoesNotExistException")

        let info = try f.plane.getDeploymentGroup(GetDeploymentGroupInput(applicationName: "app", deploymentGroupName: "group")).deploymentGroupInfo
        #expect(info?.deploymentConfigName == "CodeDeployDefault.OneAtATime")
        #expect(info?.deploymentStyle == DeploymentStyle(deploymentType: .inPlace, deploymentOption: .withoutTrafficControl))
        #expect(info?.onPremisesInstanceTagFilters?.count == 1)

        _ = try f.plane.updateDeploymentGroup(
            UpdateDeploymentGroupInput(applicationName: "app", currentDeploymentGroupName: "group", newDeploymentGroupName: "renamed"))
        #expect(try f.plane.listDeploymentGroups(ListDeploymentGroupsInput(applicationName: "app")).deploymentGroups == ["renamed"])
        let batch = try f.plane.batchGetDeploymentGroups(
            BatchGetDeploymentGroupsInput(applicationName: "app", deploymentGroupNames: ["renamed", "missing"]))
        #expect(batch.deploymentGroupsInfo?.count == 1)
        #expect(batch.errorMessage?.contains("missing") == true)

        _ = try f.plane.deleteDeploymentGroup(DeleteDeploymentGroupInput(applicationName: "app", deploymentGroupName: "renamed"))
        #expect(
            serviceErrorCode { _ = try f.plane.getDeploymentGroup(GetDeploymentGroupInput(applicationName: "app", deploymentGroupName: "renamed")) }
                == "DeploymentGroupDoesNotExistException")
    }

    @Test(arguments: StoreKind.selected) func invalidTagSettingsAreRefused(_ store: StoreKind) throws {
        let f = try PlaneFixture(store)
        try f.app()
        let filter = TagFilter(key: "a", value: "b", type: .keyAndValue)
        #expect(serviceErrorCode { try f.group(filters: [filter], tagSet: [[filter]]) } == "InvalidOnPremisesTagCombinationException")
        #expect(serviceErrorCode { try f.group(filters: [TagFilter(key: "a", type: .keyAndValue)]) } == "InvalidTagException")
        #expect(serviceErrorCode { try f.group(tagSet: [[filter], [filter], [filter], [filter]]) } == "TagSetListLimitExceededException")
        #expect(serviceErrorCode { try f.group(tagSet: [[]]) } == "InvalidTagException")
    }
}

@Suite struct InstanceTests {
    @Test(arguments: StoreKind.selected) func registerTagListDeregister(_ store: StoreKind) throws {
        let f = try PlaneFixture(store)
        try f.instance("web-1", tags: [("env", "prod"), ("role", "web")])
        try f.instance("db-1", tags: [("env", "prod"), ("role", "db")])
        try f.instance("lab-1", tags: [])
        #expect(serviceErrorCode { try f.instance("web-1", tags: []) } == "InstanceNameAlreadyRegisteredException")
        #expect(serviceErrorCode { try f.instance("bad name", tags: []) } == "InvalidInstanceNameException")

        let info = try f.plane.getOnPremisesInstance(GetOnPremisesInstanceInput(instanceName: "web-1")).instanceInfo
        #expect(info?.tags == [Tag(key: "env", value: "prod"), Tag(key: "role", value: "web")])
        #expect(info?.instanceArn?.hasPrefix("arn:aws:codedeploy:local:000000000000:instance/web-1_") == true)

        let web = try f.plane.listOnPremisesInstances(
            ListOnPremisesInstancesInput(tagFilters: [TagFilter(key: "role", value: "web", type: .keyAndValue)]))
        #expect(web.instanceNames == ["web-1"])
        #expect(
            serviceErrorCode { _ = try f.plane.listOnPremisesInstances(ListOnPremisesInstancesInput(tagFilters: [TagFilter(type: .keyOnly)])) }
                == "InvalidTagFilterException")

        try f.plane.removeTagsFromOnPremisesInstances(
            RemoveTagsFromOnPremisesInstancesInput(tags: [Tag(key: "role")], instanceNames: ["web-1"]))
        #expect(
            try f.plane.getOnPremisesInstance(GetOnPremisesInstanceInput(instanceName: "web-1")).instanceInfo?.tags == [
                Tag(key: "env", value: "prod")
            ])

        try f.plane.deregisterOnPremisesInstance(DeregisterOnPremisesInstanceInput(instanceName: "lab-1"))
        #expect(
            try f.plane.listOnPremisesInstances(ListOnPremisesInstancesInput(registrationStatus: .registered)).instanceNames == ["db-1", "web-1"])
        #expect(try f.plane.listOnPremisesInstances(ListOnPremisesInstancesInput(registrationStatus: .deregistered)).instanceNames == ["lab-1"])
        #expect(try f.plane.getOnPremisesInstance(GetOnPremisesInstanceInput(instanceName: "lab-1")).instanceInfo?.deregisterTime != nil)
        #expect(
            serviceErrorCode {
                try f.plane.addTagsToOnPremisesInstances(
                    AddTagsToOnPremisesInstancesInput(tags: [Tag(key: "a", value: "b")], instanceNames: ["lab-1"]))
            } == "InstanceNotRegisteredException")
        // A deregistered name can be registered again.
        try f.instance("lab-1", tags: [])
        #expect(try f.plane.getOnPremisesInstance(GetOnPremisesInstanceInput(instanceName: "lab-1")).instanceInfo?.deregisterTime == nil)
    }
}

@Suite struct DeploymentTests {
    func fleet(_ store: StoreKind) throws -> PlaneFixture {
        let f = try PlaneFixture(store)
        try f.instance("web-1", tags: [("env", "prod"), ("role", "web")])
        try f.instance("web-2", tags: [("env", "prod"), ("role", "web")])
        try f.instance("db-1", tags: [("env", "prod"), ("role", "db")])
        try f.instance("stage-1", tags: [("env", "staging"), ("role", "web")])
        try f.app()
        return f
    }

    func targetIds(_ f: PlaneFixture, _ id: String) throws -> [String] {
        try f.plane.listDeploymentTargets(ListDeploymentTargetsInput(deploymentId: id)).targetIds ?? []
    }

    @Test(arguments: StoreKind.selected) func targetsFollowTheGroupsFiltersAndEveryEventStartsPending(_ store: StoreKind) throws {
        let f = try fleet(store)
        try f.group(filters: [TagFilter(key: "role", value: "db", type: .keyAndValue), TagFilter(value: "staging", type: .valueOnly)])
        let id = try f.deploy()
        #expect(id.range(of: "^d-[A-Z0-9]{9}$", options: .regularExpression) != nil)
        #expect(try targetIds(f, id).sorted() == ["db-1", "stage-1"])

        let info = try #require(try f.plane.getDeployment(GetDeploymentInput(deploymentId: id)).deploymentInfo)
        #expect(info.status == .created)
        #expect(info.deploymentOverview == DeploymentOverview(pending: 2, inProgress: 0, succeeded: 0, failed: 0, skipped: 0, ready: 0))
        #expect(info.fileExistsBehavior == .disallow)

        let target = try f.plane.getDeploymentTarget(GetDeploymentTargetInput(deploymentId: id, targetId: "db-1")).deploymentTarget
        #expect(target?.deploymentTargetType == .instanceTarget)
        #expect(target?.instanceTarget?.lifecycleEvents?.map(\.lifecycleEventName) == LifecycleEventName.all)
        #expect(target?.instanceTarget?.lifecycleEvents?.allSatisfy { $0.status == .pending } == true)
        #expect(
            serviceErrorCode { _ = try f.plane.getDeploymentTarget(GetDeploymentTargetInput(deploymentId: id, targetId: "web-1")) }
                == "DeploymentTargetDoesNotExistException")
    }

    @Test(arguments: StoreKind.selected) func aTagSetIsAndAcrossGroups(_ store: StoreKind) throws {
        let f = try fleet(store)
        try f.group(tagSet: [[TagFilter(key: "env", value: "prod", type: .keyAndValue)], [TagFilter(key: "role", value: "web", type: .keyAndValue)]])
        #expect(try targetIds(f, try f.deploy()).sorted() == ["web-1", "web-2"])
    }

    @Test(arguments: StoreKind.selected) func noMatchingInstanceFailsAtOnceWithNoInstances(_ store: StoreKind) throws {
        let f = try fleet(store)
        try f.group(filters: [TagFilter(key: "env", value: "nowhere", type: .keyAndValue)])
        let id = try f.deploy()
        let info = try f.plane.getDeployment(GetDeploymentInput(deploymentId: id)).deploymentInfo
        #expect(info?.status == .failed)
        #expect(info?.errorInformation?.code == .noInstances)
        #expect(info?.completeTime != nil)
        // A failed deployment does not hold the group.
        _ = try f.deploy(key: "v2.zip")
    }

    @Test(arguments: StoreKind.selected) func onlyOneActiveDeploymentPerGroup(_ store: StoreKind) throws {
        let f = try fleet(store)
        try f.group(filters: [TagFilter(key: "role", type: .keyOnly)])
        try f.group("other", filters: [TagFilter(key: "role", type: .keyOnly)])
        let first = try f.deploy()
        #expect(serviceErrorCode { _ = try f.deploy(key: "v2.zip") } == "DeploymentLimitExceededException")
        _ = try f.deploy(group: "other")  // another group is independent
        let stop = try f.plane.stopDeployment(StopDeploymentInput(deploymentId: first))
        #expect(stop.status == .succeeded)
        let stopped = try f.plane.getDeployment(GetDeploymentInput(deploymentId: first)).deploymentInfo
        #expect(stopped?.status == .stopped)
        #expect(stopped?.deploymentOverview?.skipped == 4)
        #expect(stopped?.deploymentOverview?.pending == 0)
        #expect(
            serviceErrorCode { _ = try f.plane.stopDeployment(StopDeploymentInput(deploymentId: first)) } == "DeploymentAlreadyCompletedException")
        let skipped = try f.plane.listDeploymentTargets(ListDeploymentTargetsInput(deploymentId: first, targetFilters: ["TargetStatus": ["Skipped"]]))
        #expect(skipped.targetIds?.count == 4)
        let second = try f.deploy(key: "v2.zip")
        let info = try f.plane.getDeployment(GetDeploymentInput(deploymentId: second)).deploymentInfo
        #expect(info?.status == .created)
    }

    @Test(arguments: StoreKind.selected) func createDeploymentErrors(_ store: StoreKind) throws {
        let f = try fleet(store)
        try f.group(filters: [TagFilter(key: "role", type: .keyOnly)])
        #expect(serviceErrorCode { _ = try f.deploy(app: "nope") } == "ApplicationDoesNotExistException")
        #expect(serviceErrorCode { _ = try f.deploy(group: "nope") } == "DeploymentGroupDoesNotExistException")
        #expect(
            serviceErrorCode { _ = try f.plane.createDeployment(CreateDeploymentInput(applicationName: "app", deploymentGroupName: "group")) }
                == "RevisionRequiredException")
        #expect(
            serviceErrorCode {
                _ = try f.plane.createDeployment(
                    CreateDeploymentInput(
                        applicationName: "app", deploymentGroupName: "group",
                        revision: RevisionLocation(revisionType: .s3, s3Location: S3Location(bucket: "b", key: "k", bundleType: .yaml))))
            } == "InvalidRevisionException")
        #expect(
            serviceErrorCode {
                _ = try f.plane.createDeployment(
                    CreateDeploymentInput(
                        applicationName: "app", deploymentGroupName: "group", revision: RevisionLocation(revisionType: .gitHub),
                        deploymentConfigName: "CodeDeployDefault.OneAtATime"))
            } == "InvalidRevisionException")
        #expect(
            serviceErrorCode {
                _ = try f.plane.createDeployment(
                    CreateDeploymentInput(
                        applicationName: "app", deploymentGroupName: "group",
                        revision: RevisionLocation(revisionType: .s3, s3Location: S3Location(bucket: "b", key: "k", bundleType: .zip)),
                        deploymentConfigName: "Nope"))
            } == "DeploymentConfigDoesNotExistException")
        #expect(
            serviceErrorCode { _ = try f.plane.getDeployment(GetDeploymentInput(deploymentId: "d-AAAAAAAAA")) } == "DeploymentDoesNotExistException")
        #expect(serviceErrorCode { _ = try f.plane.getDeployment(GetDeploymentInput(deploymentId: "d-../../x")) } == "InvalidDeploymentIdException")
    }

    @Test(arguments: StoreKind.selected) func listDeploymentsFilters(_ store: StoreKind) throws {
        let f = try fleet(store)
        try f.group(filters: [TagFilter(key: "role", type: .keyOnly)])
        try f.group("empty", filters: [TagFilter(key: "none", type: .keyOnly)])
        let failed = try f.deploy(group: "empty")
        let created = try f.deploy()
        let all = try f.plane.listDeployments(ListDeploymentsInput()).deployments
        #expect(all == [created, failed])
        #expect(try f.plane.listDeployments(ListDeploymentsInput(includeOnlyStatuses: [.failed])).deployments == [failed])
        #expect(try f.plane.listDeployments(ListDeploymentsInput(applicationName: "app", deploymentGroupName: "group")).deployments == [created])
        #expect(
            try f.plane.listDeployments(ListDeploymentsInput(createTimeRange: TimeRange(start: Date().addingTimeInterval(3600)))).deployments == [])
        #expect(
            serviceErrorCode { _ = try f.plane.listDeployments(ListDeploymentsInput(applicationName: "app")) }
                == "DeploymentGroupNameRequiredException")
        #expect(
            serviceErrorCode { _ = try f.plane.listDeployments(ListDeploymentsInput(deploymentGroupName: "group")) }
                == "ApplicationNameRequiredException")
    }

    @Test(arguments: StoreKind.selected) func revisionsAreRegisteredAndTracked(_ store: StoreKind) throws {
        let f = try fleet(store)
        try f.group(filters: [TagFilter(key: "role", type: .keyOnly)])
        let manual = RevisionLocation(revisionType: .s3, s3Location: S3Location(bucket: "releases", key: "manual.zip", bundleType: .zip))
        try f.plane.registerApplicationRevision(RegisterApplicationRevisionInput(applicationName: "app", description: "by hand", revision: manual))
        let id = try f.deploy()
        _ = try f.plane.stopDeployment(StopDeploymentInput(deploymentId: id))

        let got = try f.plane.getApplicationRevision(GetApplicationRevisionInput(applicationName: "app", revision: manual))
        #expect(got.revisionInfo?.description == "by hand")
        #expect(got.revisionInfo?.firstUsedTime == nil)

        let deployed = RevisionLocation(revisionType: .s3, s3Location: S3Location(bucket: "releases", key: "app.zip", bundleType: .zip))
        let used = try f.plane.getApplicationRevision(GetApplicationRevisionInput(applicationName: "app", revision: deployed))
        #expect(used.revisionInfo?.deploymentGroups == ["group"])
        #expect(used.revisionInfo?.firstUsedTime != nil)

        let include = try f.plane.listApplicationRevisions(ListApplicationRevisionsInput(applicationName: "app", deployed: .include))
        #expect(include.revisions == [deployed])
        let exclude = try f.plane.listApplicationRevisions(ListApplicationRevisionsInput(applicationName: "app", deployed: .exclude))
        #expect(exclude.revisions == [manual])
        let newestFirst = try f.plane.listApplicationRevisions(
            ListApplicationRevisionsInput(applicationName: "app", sortBy: .registerTime, sortOrder: .descending))
        #expect(newestFirst.revisions == [deployed, manual])
        let prefixed = try f.plane.listApplicationRevisions(
            ListApplicationRevisionsInput(applicationName: "app", s3Bucket: "releases", s3KeyPrefix: "man"))
        #expect(prefixed.revisions == [manual])
        #expect(
            serviceErrorCode { _ = try f.plane.listApplicationRevisions(ListApplicationRevisionsInput(applicationName: "app", s3KeyPrefix: "x")) }
                == "BucketNameFilterRequiredException")
        let missing = RevisionLocation(revisionType: .gitHub, gitHubLocation: GitHubLocation(repository: "o/r", commitId: "1"))
        #expect(
            serviceErrorCode { _ = try f.plane.getApplicationRevision(GetApplicationRevisionInput(applicationName: "app", revision: missing)) }
                == "RevisionDoesNotExistException")
        let batch = try f.plane.batchGetApplicationRevisions(
            BatchGetApplicationRevisionsInput(applicationName: "app", revisions: [manual, missing]))
        #expect(batch.revisions?.count == 1)
        #expect(batch.errorMessage != nil)

        // Inline content gets its sha256 filled in, as AWS does.
        let inline = RevisionLocation(revisionType: .appSpecContent, appSpecContent: AppSpecContent(content: "version: 0.0"))
        try f.plane.registerApplicationRevision(RegisterApplicationRevisionInput(applicationName: "app", revision: inline))
        let stored = try f.plane.getApplicationRevision(GetApplicationRevisionInput(applicationName: "app", revision: inline))
        #expect(stored.revision?.appSpecContent?.sha256?.count == 64)
    }

    @Test(arguments: StoreKind.selected) func previousRevisionAndLastDeploymentsOnTheGroup(_ store: StoreKind) throws {
        let f = try fleet(store)
        try f.group(filters: [TagFilter(key: "role", type: .keyOnly)])
        let id = try f.deploy()
        let group = try f.plane.getDeploymentGroup(GetDeploymentGroupInput(applicationName: "app", deploymentGroupName: "group")).deploymentGroupInfo
        #expect(group?.lastAttemptedDeployment?.deploymentId == id)
        #expect(group?.lastSuccessfulDeployment == nil)
        #expect(group?.targetRevision?.s3Location?.key == "app.zip")
    }

    @Test(arguments: StoreKind.selected) func deprecatedInstanceViews(_ store: StoreKind) throws {
        let f = try fleet(store)
        try f.group(filters: [TagFilter(key: "role", value: "web", type: .keyAndValue)])
        let id = try f.deploy()
        let list = try f.plane.listDeploymentInstances(ListDeploymentInstancesInput(deploymentId: id, instanceStatusFilter: [.pending]))
        #expect(list.instancesList?.sorted() == ["stage-1", "web-1", "web-2"])
        let one = try f.plane.getDeploymentInstance(GetDeploymentInstanceInput(deploymentId: id, instanceId: "web-1"))
        #expect(one.instanceSummary?.status == .pending)
        #expect(
            serviceErrorCode { _ = try f.plane.getDeploymentInstance(GetDeploymentInstanceInput(deploymentId: id, instanceId: "db-1")) }
                == "InstanceDoesNotExistException")
        let batch = try f.plane.batchGetDeploymentInstances(BatchGetDeploymentInstancesInput(deploymentId: id, instanceIds: ["web-1", "db-1"]))
        #expect(batch.instancesSummary?.count == 1)
        #expect(batch.errorMessage?.contains("db-1") == true)
    }
}

@Suite struct ResourceTagTests {
    @Test(arguments: StoreKind.selected) func tagsOnApplicationsAndGroupsByArn(_ store: StoreKind) throws {
        let f = try PlaneFixture(store)
        _ = try f.plane.createApplication(CreateApplicationInput(applicationName: "app", tags: [Tag(key: "team", value: "ops")]))
        try f.group()
        let appArn = "arn:aws:codedeploy:local:000000000000:application:app"
        let groupArn = "arn:aws:codedeploy:local:000000000000:deploymentgroup:app/group"
        #expect(try f.plane.listTagsForResource(ListTagsForResourceInput(resourceArn: appArn)).tags == [Tag(key: "team", value: "ops")])

        try f.plane.tagResource(TagResourceInput(resourceArn: groupArn, tags: [Tag(key: "tier", value: "1"), Tag(key: "x", value: "y")]))
        try f.plane.untagResource(UntagResourceInput(resourceArn: groupArn, tagKeys: ["x"]))
        #expect(try f.plane.listTagsForResource(ListTagsForResourceInput(resourceArn: groupArn)).tags == [Tag(key: "tier", value: "1")])

        // Tags follow the application through a rename, since they are keyed by its ID.
        try f.plane.updateApplication(UpdateApplicationInput(applicationName: "app", newApplicationName: "app2"))
        let renamed = "arn:aws:codedeploy:local:000000000000:application:app2"
        #expect(try f.plane.listTagsForResource(ListTagsForResourceInput(resourceArn: renamed)).tags == [Tag(key: "team", value: "ops")])

        #expect(serviceErrorCode { _ = try f.plane.listTagsForResource(ListTagsForResourceInput(resourceArn: "nope")) } == "InvalidArnException")
        #expect(
            serviceErrorCode {
                _ = try f.plane.listTagsForResource(ListTagsForResourceInput(resourceArn: "arn:aws:codedeploy:local:0:instance/x"))
            } == "ArnNotSupportedException")
        #expect(serviceErrorCode { try f.plane.tagResource(TagResourceInput(resourceArn: renamed, tags: [])) } == "TagRequiredException")
        #expect(
            serviceErrorCode { _ = try f.plane.listTagsForResource(ListTagsForResourceInput(resourceArn: appArn)) }
                == "ApplicationDoesNotExistException")
    }
}
