import DeployModel
import DeployStore
import Foundation

/// The operations of deployment styles and integrations deployctl does not run — Lambda and ECS
/// validation hooks, GitHub account connections, CloudFormation-managed resources — answered as CodeDeploy answers
/// them for a deployment of that kind, with the model's shapes and errors: scripts that call them get a clear,
/// typed refusal (or an honest empty answer), never an unknown operation.
extension ControlPlane {
    /// Continues a blue/green deployment that waits (`READY_WAIT` or `TERMINATION_WAIT`; BlueGreen.swift).
    public func continueDeployment(_ input: ContinueDeploymentInput) throws {
        try continueBlueGreen(input)
    }

    /// Deprecated by AWS for `continueDeployment` with `TERMINATION_WAIT`, which it is.
    public func skipWaitTimeForInstanceTermination(_ input: SkipWaitTimeForInstanceTerminationInput) throws {
        try continueBlueGreen(ContinueDeploymentInput(deploymentId: input.deploymentId, deploymentWaitType: .terminationWait))
    }

    /// Reports a Lambda or ECS validation hook's result. Deployments here run on instances (`Server`), whose hooks are
    /// scripts the agent runs; they have no hook executions to report.
    public func putLifecycleEventHookExecutionStatus(
        _ input: PutLifecycleEventHookExecutionStatusInput
    ) throws -> PutLifecycleEventHookExecutionStatusOutput {
        _ = try Validate.deploymentId(input.deploymentId)
        guard let executionId = input.lifecycleEventHookExecutionId, !executionId.isEmpty else {
            throw ServiceError(
                "InvalidLifecycleEventHookExecutionIdException", "A lifecycleEventHookExecutionId (from the hook's invocation) must be specified.")
        }
        if let status = input.status, ![.succeeded, .failed].contains(status) {
            throw ServiceError(
                "InvalidLifecycleEventHookExecutionStatusException",
                "The status \(status.rawValue) is not valid: a hook execution reports Succeeded or Failed.")
        }
        return try store.read { tx in
            let info = try requireDeployment(tx, input.deploymentId)
            throw ServiceError(
                "UnsupportedActionForDeploymentTypeException",
                "The deployment \(info.deploymentId ?? "") runs on \(info.computePlatform?.rawValue ?? "Server") instances, whose lifecycle hooks are scripts the agent runs; only Lambda and ECS deployments have hook executions to report."
            )
        }
    }

    /// deployctl stores no GitHub account connections (GitHub revisions are not fetched): none can be deleted.
    public func deleteGitHubAccountToken(_ input: DeleteGitHubAccountTokenInput) throws -> DeleteGitHubAccountTokenOutput {
        guard let name = input.tokenName, !name.isEmpty else {
            throw ServiceError("GitHubAccountTokenNameRequiredException", "The name of the GitHub account connection must be specified.")
        }
        guard name.count <= 100 else {
            throw ServiceError("InvalidGitHubAccountTokenNameException", "The GitHub account connection name is longer than 100 characters.")
        }
        throw ServiceError(
            "GitHubAccountTokenDoesNotExistException",
            "No GitHub account connection is named \(name): deployctl stores none (it does not fetch GitHub revisions; push the bundle instead).")
    }

    /// The stored GitHub account connections: none.
    public func listGitHubAccountTokenNames(_ input: ListGitHubAccountTokenNamesInput) throws -> ListGitHubAccountTokenNamesOutput {
        if let token = input.nextToken, !token.isEmpty {
            throw ServiceError("InvalidNextTokenException", "The next token \(token.prefix(100)) was not issued by this server.")
        }
        return ListGitHubAccountTokenNamesOutput(tokenNameList: [])
    }

    /// Deletes what CloudFormation's blue/green integration linked to `externalId`. Nothing here is ever linked to an
    /// external ID, so there is nothing to delete, and the call succeeds as AWS's does then.
    public func deleteResourcesByExternalId(_ input: DeleteResourcesByExternalIdInput) throws {}

    static func refuseIfCompleted(_ info: DeploymentInfo) throws {
        if let status = info.status, [.succeeded, .failed, .stopped].contains(status) {
            throw ServiceError(
                "DeploymentAlreadyCompletedException", "The deployment \(info.deploymentId ?? "") has already completed (\(status.rawValue)).")
        }
    }
}
