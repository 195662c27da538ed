import DeployModel
import DeployStore
import Foundation

/// Bake time (deployctl's reading of AWS's zonal monitor duration). AWS polls a Server deployment's alarms only while
/// it runs, so a release that breaks the service after its last host has finished is never stopped. A deployment
/// configuration's `zonalConfig.monitorDurationInSeconds` is the time CodeDeploy "must wait after completing a
/// deployment to an Availability Zone" to let it "prove itself (or 'bake')"; registered instances have no zones, so
/// deployctl treats the whole fleet as one and bakes after it: the deployment stays `Baking` (a status the model has)
/// for that long, its alarms still watched, and only then Succeeds. An alarm meanwhile stops it (ALARM_ACTIVE) and
/// rolls it back as during the deployment. Rollbacks do not bake. `aws deploy create-deployment-config --zonal-config
/// monitorDurationInSeconds=300` sets it.
extension ControlPlane {
    static let bakePrefix = "Baking: "

    /// The bake time of a deployment (nil: none).
    func bakeSeconds(_ tx: any StoreTransaction, _ info: DeploymentInfo) throws -> Int? {
        guard info.creator != .codeDeployRollback,
            let seconds = try findConfig(tx, info.deploymentConfigName ?? "")?.info.zonalConfig?.monitorDurationInSeconds, seconds > 0
        else { return nil }
        return seconds
    }

    /// Ends a deployment whose targets all finished well: Succeeded, or Baking first when its configuration bakes.
    func succeedOrBake(_ tx: any StoreTransaction, _ info: inout DeploymentInfo, at stamp: Date) throws {
        if let seconds = try bakeSeconds(tx, info) {
            info.status = .baking
            info.setPhase(Self.bakePrefix, "watching its alarms for \(seconds) s after the last instance,", since: stamp, first: false)
            return
        }
        info.status = .succeeded
        info.completeTime = stamp
    }

    /// When a Baking deployment's bake time is over.
    func bakeDue(_ tx: any StoreTransaction, _ info: DeploymentInfo) throws -> Bool {
        guard info.status == .baking, let seconds = try bakeSeconds(tx, info),
            let since = info.phase(Self.bakePrefix)?.since
        else { return info.status == .baking }
        return now() >= since.addingTimeInterval(Double(seconds))
    }

    /// Baking deployments whose time is over Succeed (run on the server's clock and before reads).
    @discardableResult
    public func expireBakes() throws -> Int {
        let due = try store.read { tx -> [String] in
            try tx.deploymentIds(matching: DeploymentFilter(statuses: ["Baking"])).filter { id in
                guard let info = try findDeployment(tx, id) else { return false }
                return try bakeDue(tx, info)
            }
        }
        guard !due.isEmpty else { return 0 }
        try store.write { tx in
            for id in due {
                guard var info = try findDeployment(tx, id), info.status == .baking else { continue }
                info.status = .succeeded
                info.completeTime = now()
                try saveDeployment(tx, info, previous: .baking)
            }
        }
        return due.count
    }
}
