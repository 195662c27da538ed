import DeployModel
import DeployStore
import Foundation

/// A deployment configuration as the orchestrator needs it: a stored one or a predefined one.
struct DeploymentConfiguration {
    var id: String
    var info: DeploymentConfigInfo
    var predefined: Bool
}

extension ControlPlane {
    /// The predefined Server configurations, as `get-deployment-config` reports them on AWS.
    static let predefinedConfigs: [DeploymentConfiguration] = {
        let launch = Date(timeIntervalSince1970: 1_415_750_400)
        func make(_ id: String, _ name: String, _ type: MinimumHealthyHostsType, _ value: Int) -> DeploymentConfiguration {
            DeploymentConfiguration(
                id: id,
                info: DeploymentConfigInfo(
                    deploymentConfigId: id, deploymentConfigName: name,
                    minimumHealthyHosts: MinimumHealthyHosts(type: type, value: value), createTime: launch,
                    computePlatform: .server),
                predefined: true)
        }
        var number = 3
        func traffic(_ name: String, _ platform: ComputePlatform, _ routing: TrafficRoutingConfig) -> DeploymentConfiguration {
            number += 1
            let id = String(format: "00000000-0000-0000-0000-%012d", number)
            return DeploymentConfiguration(
                id: id,
                info: DeploymentConfigInfo(
                    deploymentConfigId: id, deploymentConfigName: name, createTime: launch, computePlatform: platform,
                    trafficRoutingConfig: routing),
                predefined: true)
        }
        func canary(_ percent: Int, _ minutes: Int) -> TrafficRoutingConfig {
            TrafficRoutingConfig(type: .timeBasedCanary, timeBasedCanary: TimeBasedCanary(canaryPercentage: percent, canaryInterval: minutes))
        }
        func linear(_ percent: Int, _ minutes: Int) -> TrafficRoutingConfig {
            TrafficRoutingConfig(type: .timeBasedLinear, timeBasedLinear: TimeBasedLinear(linearPercentage: percent, linearInterval: minutes))
        }
        let allAtOnce = TrafficRoutingConfig(type: .allAtOnce)
        return [
            make("00000000-0000-0000-0000-000000000001", "CodeDeployDefault.OneAtATime", .mostConcurrency, 1),
            make("00000000-0000-0000-0000-000000000002", "CodeDeployDefault.HalfAtATime", .fleetPercent, 50),
            make("00000000-0000-0000-0000-000000000003", "CodeDeployDefault.AllAtOnce", .hostCount, 0),
            // The Lambda and ECS ones AWS predefines, so groups of those platforms can name them (nothing deploys them here).
            traffic("CodeDeployDefault.LambdaAllAtOnce", .lambda, allAtOnce),
            traffic("CodeDeployDefault.LambdaCanary10Percent5Minutes", .lambda, canary(10, 5)),
            traffic("CodeDeployDefault.LambdaCanary10Percent10Minutes", .lambda, canary(10, 10)),
            traffic("CodeDeployDefault.LambdaCanary10Percent15Minutes", .lambda, canary(10, 15)),
            traffic("CodeDeployDefault.LambdaCanary10Percent30Minutes", .lambda, canary(10, 30)),
            traffic("CodeDeployDefault.LambdaLinear10PercentEvery1Minute", .lambda, linear(10, 1)),
            traffic("CodeDeployDefault.LambdaLinear10PercentEvery2Minutes", .lambda, linear(10, 2)),
            traffic("CodeDeployDefault.LambdaLinear10PercentEvery3Minutes", .lambda, linear(10, 3)),
            traffic("CodeDeployDefault.LambdaLinear10PercentEvery10Minutes", .lambda, linear(10, 10)),
            traffic("CodeDeployDefault.ECSAllAtOnce", .ecs, allAtOnce),
            traffic("CodeDeployDefault.ECSLinear10PercentEvery1Minutes", .ecs, linear(10, 1)),
            traffic("CodeDeployDefault.ECSLinear10PercentEvery3Minutes", .ecs, linear(10, 3)),
            traffic("CodeDeployDefault.ECSCanary10Percent5Minutes", .ecs, canary(10, 5)),
            traffic("CodeDeployDefault.ECSCanary10Percent15Minutes", .ecs, canary(10, 15)),
        ]
    }()

    /// The configuration a group of `platform` uses when it names none.
    static func defaultConfigName(for platform: ComputePlatform) -> String {
        switch platform {
        case .server: return "CodeDeployDefault.OneAtATime"
        case .lambda: return "CodeDeployDefault.LambdaAllAtOnce"
        case .ecs: return "CodeDeployDefault.ECSAllAtOnce"
        }
    }

    /// The configuration `name`, which must be for `platform` (a Server group cannot shift Lambda traffic).
    func requireConfig(_ tx: any StoreTransaction, _ name: String, for platform: ComputePlatform) throws -> DeploymentConfiguration {
        let config = try requireConfig(tx, name)
        let configPlatform = config.info.computePlatform ?? .server
        guard configPlatform == platform else {
            throw ServiceError(
                "InvalidDeploymentConfigNameException",
                "The deployment configuration \(name) is for the \(configPlatform.rawValue) compute platform; a deployment group of a \(platform.rawValue) application needs a \(platform.rawValue) configuration."
            )
        }
        return config
    }

    func findConfig(_ tx: any StoreTransaction, _ name: String) throws -> DeploymentConfiguration? {
        if let predefined = Self.predefinedConfigs.first(where: { $0.info.deploymentConfigName == name }) { return predefined }
        guard let stored = try tx.config(named: name) else { return nil }
        return DeploymentConfiguration(id: stored.id, info: stored.info, predefined: false)
    }

    func requireConfig(_ tx: any StoreTransaction, _ name: String) throws -> DeploymentConfiguration {
        guard let config = try findConfig(tx, name) else {
            throw ServiceError(
                "DeploymentConfigDoesNotExistException", "The deployment configuration \(name) does not exist with the user or AWS account.")
        }
        return config
    }

    public func createDeploymentConfig(_ input: CreateDeploymentConfigInput) throws -> CreateDeploymentConfigOutput {
        let name = try Validate.configName(input.deploymentConfigName)
        guard !name.hasPrefix("CodeDeployDefault.") else {
            throw ServiceError("InvalidDeploymentConfigNameException", "The prefix CodeDeployDefault. is reserved for predefined configurations.")
        }
        let platform = input.computePlatform ?? .server
        if platform != .server {
            try Self.validateTrafficRouting(input, platform: platform)
            return try insertConfig(name) { id, created in
                DeploymentConfigInfo(
                    deploymentConfigId: id, deploymentConfigName: name, createTime: created, computePlatform: platform,
                    trafficRoutingConfig: input.trafficRoutingConfig)
            }
        }
        if let routing = input.trafficRoutingConfig {
            // deployctl's extension: a Server configuration may shift traffic too, for blue/green deployments
            // (TrafficShifting.swift); its minimumHealthyHosts, if any, governs the green fleet's install.
            try Self.validateRouting(routing, platform: .server)
            if input.minimumHealthyHosts == nil {
                return try insertConfig(name) { id, created in
                    DeploymentConfigInfo(
                        deploymentConfigId: id, deploymentConfigName: name, createTime: created, computePlatform: .server,
                        trafficRoutingConfig: routing)
                }
            }
        }
        guard let minimum = input.minimumHealthyHosts, let type = minimum.type, let value = minimum.value else {
            throw ServiceError(
                "InvalidMinimumHealthyHostValueException",
                "A Server deployment configuration needs minimumHealthyHosts (type HOST_COUNT or FLEET_PERCENT, and a value).")
        }
        switch type {
        case .hostCount:
            guard value >= 0 else { throw ServiceError("InvalidMinimumHealthyHostValueException", "HOST_COUNT must be 0 or more; got \(value).") }
        case .fleetPercent:
            guard (0...99).contains(value) else {
                throw ServiceError("InvalidMinimumHealthyHostValueException", "FLEET_PERCENT must be between 0 and 99; got \(value).")
            }
        case .mostConcurrency:
            throw ServiceError("InvalidMinimumHealthyHostValueException", "The type must be HOST_COUNT or FLEET_PERCENT.")
        }
        return try insertConfig(name) { id, created in
            DeploymentConfigInfo(
                deploymentConfigId: id, deploymentConfigName: name, minimumHealthyHosts: MinimumHealthyHosts(type: type, value: value),
                createTime: created, computePlatform: .server, trafficRoutingConfig: input.trafficRoutingConfig, zonalConfig: input.zonalConfig)
        }
    }

    /// Stores a new custom configuration named `name` (refused when one exists), its info made from its id and time.
    func insertConfig(_ name: String, _ info: (String, Date) -> DeploymentConfigInfo) throws -> CreateDeploymentConfigOutput {
        try store.write { tx in
            if try findConfig(tx, name) != nil {
                throw ServiceError(
                    "DeploymentConfigAlreadyExistsException", "The deployment configuration \(name) already exists with the user or AWS account.")
            }
            let id = Identifier.uuid()
            let created = now()
            try tx.insertConfig(ConfigRecord(id: id, name: name, info: info(id, created), createTime: created))
            return CreateDeploymentConfigOutput(deploymentConfigId: id)
        }
    }

    /// A Lambda or ECS configuration shifts traffic: AllAtOnce, or canary / linear steps of 1-99 % every 1-2880 minutes.
    static func validateTrafficRouting(_ input: CreateDeploymentConfigInput, platform: ComputePlatform) throws {
        if input.minimumHealthyHosts != nil {
            throw ServiceError(
                "InvalidMinimumHealthyHostValueException",
                "minimumHealthyHosts applies to Server configurations; a \(platform.rawValue) configuration shifts traffic (trafficRoutingConfig).")
        }
        if input.zonalConfig != nil {
            throw ServiceError("InvalidZonalDeploymentConfigurationException", "zonalConfig applies to Server configurations only.")
        }
        guard let routing = input.trafficRoutingConfig else {
            throw ServiceError(
                "InvalidTrafficRoutingConfigurationException",
                "A \(platform.rawValue) configuration needs trafficRoutingConfig with a type: AllAtOnce, TimeBasedCanary or TimeBasedLinear.")
        }
        try validateRouting(routing, platform: platform)
    }

    /// AllAtOnce, or canary / linear steps of 1-99 % every 1-2880 minutes.
    static func validateRouting(_ routing: TrafficRoutingConfig, platform: ComputePlatform) throws {
        guard let type = routing.type else {
            throw ServiceError(
                "InvalidTrafficRoutingConfigurationException",
                "A \(platform.rawValue) configuration needs trafficRoutingConfig with a type: AllAtOnce, TimeBasedCanary or TimeBasedLinear.")
        }
        func check(_ percent: Int?, _ minutes: Int?, _ what: String) throws {
            guard let percent, (1...99).contains(percent), let minutes, (1...2880).contains(minutes) else {
                throw ServiceError(
                    "InvalidTrafficRoutingConfigurationException",
                    "\(what) needs a percentage from 1 to 99 and an interval from 1 to 2880 minutes; got \(percent.map(String.init) ?? "none") % every \(minutes.map(String.init) ?? "none") min."
                )
            }
        }
        switch type {
        case .allAtOnce:
            if routing.timeBasedCanary != nil || routing.timeBasedLinear != nil {
                throw ServiceError("InvalidTrafficRoutingConfigurationException", "An AllAtOnce configuration takes no canary or linear steps.")
            }
        case .timeBasedCanary:
            guard routing.timeBasedLinear == nil else {
                throw ServiceError("InvalidTrafficRoutingConfigurationException", "A TimeBasedCanary configuration takes timeBasedCanary only.")
            }
            try check(routing.timeBasedCanary?.canaryPercentage, routing.timeBasedCanary?.canaryInterval, "TimeBasedCanary")
        case .timeBasedLinear:
            guard routing.timeBasedCanary == nil else {
                throw ServiceError("InvalidTrafficRoutingConfigurationException", "A TimeBasedLinear configuration takes timeBasedLinear only.")
            }
            try check(routing.timeBasedLinear?.linearPercentage, routing.timeBasedLinear?.linearInterval, "TimeBasedLinear")
        }
    }

    public func getDeploymentConfig(_ input: GetDeploymentConfigInput) throws -> GetDeploymentConfigOutput {
        let name = try Validate.configName(input.deploymentConfigName)
        return try store.read { tx in GetDeploymentConfigOutput(deploymentConfigInfo: try requireConfig(tx, name).info) }
    }

    public func listDeploymentConfigs(_ input: ListDeploymentConfigsInput) throws -> ListDeploymentConfigsOutput {
        try store.read { tx in
            let custom = try tx.configNames()
            let names = custom + Self.predefinedConfigs.compactMap(\.info.deploymentConfigName).sorted()
            let (page, next) = try Paging.page(names, token: input.nextToken)
            return ListDeploymentConfigsOutput(deploymentConfigsList: page, nextToken: next)
        }
    }

    public func deleteDeploymentConfig(_ input: DeleteDeploymentConfigInput) throws {
        let name = try Validate.configName(input.deploymentConfigName)
        try store.write { tx in
            guard let config = try findConfig(tx, name) else { return }
            guard !config.predefined else {
                throw ServiceError("InvalidOperationException", "The predefined deployment configuration \(name) cannot be deleted.")
            }
            let users = try tx.groupPaths(usingConfig: name)
            guard users.isEmpty else {
                throw ServiceError(
                    "DeploymentConfigInUseException",
                    "The deployment configuration \(name) is used by deployment group(s) \(users.joined(separator: ", ")).")
            }
            try tx.deleteConfig(id: config.id)
        }
    }
}
