import DeployModel

/// Which targets of a deployment may start now, and how the deployment ends: AWS CodeDeploy's minimum-healthy-hosts
/// rules (ARCHITECTURE.md, compatibility facts; AWS documents them in its deployment configuration guide), as a pure function of the configuration and the targets' states.
///
/// With N targets and a minimum M: targets being deployed to and targets that failed count as unhealthy, so at most
/// `N − M − failed − inFlight` more may start (and never more than the configuration's concurrency); if M ≥ N the
/// deployment fails at once; if nothing may start while targets remain and none is in flight, it fails; at the end it
/// succeeds iff at least M and at least one target succeeded. OneAtATime is M = N − 1, one at a time, so a failure on
/// the last target still succeeds and a one-target deployment must succeed.
public enum Orchestrator {
    /// A deployment configuration's rule.
    public enum Rule: Sendable, Equatable {
        case oneAtATime
        case hostCount(Int)
        case fleetPercent(Int)

        /// The rule of a configuration as `get-deployment-config` reports it (`MOST_CONCURRENCY` is OneAtATime).
        public init?(_ minimum: MinimumHealthyHosts?) {
            guard let minimum, let type = minimum.type, let value = minimum.value else { return nil }
            switch type {
            case .mostConcurrency: self = .oneAtATime
            case .hostCount: self = .hostCount(value)
            case .fleetPercent: self = .fleetPercent(value)
            }
        }
    }

    /// A target's state as the orchestrator sees it.
    public enum TargetState: Sendable, Equatable {
        case pending, inProgress, succeeded, failed, skipped
    }

    /// How the deployment stands after a decision.
    public enum Outcome: Sendable, Equatable {
        case running
        case succeeded
        case failed(code: ErrorCode, message: String)
    }

    public struct Decision: Sendable, Equatable {
        /// Indexes of pending targets to start now, in the order given.
        public var start: [Int]
        public var outcome: Outcome
    }

    /// The minimum number of healthy targets for `count` targets.
    public static func minimumHealthy(_ rule: Rule, targets count: Int) -> Int {
        switch rule {
        case .oneAtATime: return max(count - 1, 0)
        case .hostCount(let value): return value
        case .fleetPercent(let percent): return (count * percent + 99) / 100
        }
    }

    /// How many targets may be in flight at once.
    public static func maximumConcurrency(_ rule: Rule, targets count: Int) -> Int {
        switch rule {
        case .oneAtATime: return 1
        default: return max(count - minimumHealthy(rule, targets: count), 0)
        }
    }

    /// Decides the next step. `targets` is in dispatch priority order (instances whose last deployment failed first).
    public static func decide(_ rule: Rule, targets: [TargetState]) -> Decision {
        decide(
            rule, count: targets.count, failed: targets.filter { $0 == .failed }.count, inFlight: targets.filter { $0 == .inProgress }.count,
            succeeded: targets.filter { $0 == .succeeded }.count, pending: targets.indices.filter { targets[$0] == .pending })
    }

    /// The same decision from the counts alone when no target is pending (there is nothing to pick, so the order of
    /// targets does not matter): every completion of a fleet's agents asks it, and a thousand states were needless.
    public static func decideWithNothingPending(_ rule: Rule, failed: Int, inProgress: Int, succeeded: Int, skipped: Int) -> Decision {
        decide(rule, count: failed + inProgress + succeeded + skipped, failed: failed, inFlight: inProgress, succeeded: succeeded, pending: [])
    }

    /// `pending` holds the indices of the pending targets, in dispatch priority order.
    private static func decide(_ rule: Rule, count n: Int, failed: Int, inFlight: Int, succeeded: Int, pending: [Int]) -> Decision {
        guard n > 0 else {
            return Decision(
                start: [],
                outcome: .failed(code: .noInstances, message: "The deployment failed because no instances were found for your deployment group."))
        }
        let minimum = minimumHealthy(rule, targets: n)
        if rule != .oneAtATime, minimum >= n {
            return Decision(
                start: [],
                outcome: .failed(
                    code: .healthConstraintsInvalid,
                    message:
                        "The deployment failed because the minimum number of healthy instances (\(minimum)) is equal to or greater than the number of instances in the deployment (\(n)), so no instance can be deployed to within the health constraints."
                ))
        }
        if pending.isEmpty {
            if inFlight > 0 { return Decision(start: [], outcome: .running) }
            if succeeded >= minimum && succeeded >= 1 { return Decision(start: [], outcome: .succeeded) }
            return Decision(start: [], outcome: .failed(code: .healthConstraints, message: tooManyFailures(failed: failed, of: n, minimum: minimum)))
        }
        let allowed = min(n - minimum - failed - inFlight, maximumConcurrency(rule, targets: n) - inFlight)
        if allowed <= 0 {
            if inFlight > 0 { return Decision(start: [], outcome: .running) }
            return Decision(start: [], outcome: .failed(code: .healthConstraints, message: tooManyFailures(failed: failed, of: n, minimum: minimum)))
        }
        return Decision(start: Array(pending.prefix(allowed)), outcome: .running)
    }

    static func tooManyFailures(failed: Int, of count: Int, minimum: Int) -> String {
        "The overall deployment failed because too many individual instances failed deployment, too few healthy instances are available for deployment, or some instances in your deployment group are experiencing problems. (\(failed) of \(count) instances failed; at least \(minimum) must stay healthy.)"
    }
}
