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
        return [
            make("00000000-0000-0000-0000-000000000001", "CodeDeployDefault.OneAtATime", .mostConcurrency, 1),
            make("00000000-0000-0000-0000-000000000002", "CodeDeployDefault.HalfAtATime", .fleetPercent, 50),
            make("00000000-0000-0000-0000-000000000003", "CodeDeployDefault.AllAtOnce", .hostCount, 0),
        ]
    }()

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
        if let platform = input.computePlatform, platform != .server {
            throw ServiceError(
                "InvalidComputePlatformException", "The compute platform \(platform.rawValue) is not supported by deployctl; only Server is.")
        }
        if input.trafficRoutingConfig != nil {
            throw ServiceError(
                "InvalidTrafficRoutingConfigurationException", "Traffic routing applies to Lambda and ECS configurations, not Server ones.")
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
        return try store.write { tx in
            if try findConfig(tx, name) != nil {
                throw ServiceError(
                    "DeploymentConfigAlreadyExistsException", "The deployment configuration \(name) already exists with the user or AWS account.")
            }
            let id = Identifier.uuid()
            let created = now()
            let info = DeploymentConfigInfo(
                deploymentConfigId: id, deploymentConfigName: name, minimumHealthyHosts: MinimumHealthyHosts(type: type, value: value),
                createTime: created, computePlatform: .server, zonalConfig: input.zonalConfig)
            try tx.insertConfig(ConfigRecord(id: id, name: name, info: info, createTime: created))
            return CreateDeploymentConfigOutput(deploymentConfigId: id)
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
