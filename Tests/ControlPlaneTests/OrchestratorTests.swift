import ControlPlane
import DeployModel
import Testing

typealias State = Orchestrator.TargetState

/// Runs a whole deployment through the orchestrator: targets finish one at a time in dispatch order, failing when
/// their index is in `failing`. Returns the outcome, the largest number ever in flight, and whether the health floor
/// (N − failed − inFlight ≥ M) ever broke while the deployment was running.
func simulate(_ rule: Orchestrator.Rule, count: Int, failing: Set<Int>) -> (outcome: Orchestrator.Outcome, maxInFlight: Int, floorBroken: Bool) {
    var states = [State](repeating: .pending, count: count)
    var order: [Int] = []
    var maxInFlight = 0
    var floorBroken = false
    let minimum = Orchestrator.minimumHealthy(rule, targets: count)
    while true {
        let decision = Orchestrator.decide(rule, targets: states)
        for index in decision.start {
            states[index] = .inProgress
            order.append(index)
        }
        let inFlight = states.filter { $0 == .inProgress }.count
        maxInFlight = max(maxInFlight, inFlight)
        let failed = states.filter { $0 == .failed }.count
        if decision.outcome == .running, !decision.start.isEmpty, count - failed - inFlight < minimum { floorBroken = true }
        if decision.outcome != .running { return (decision.outcome, maxInFlight, floorBroken) }
        guard let next = order.first(where: { states[$0] == .inProgress }) else {
            return (decision.outcome, maxInFlight, floorBroken)
        }
        states[next] = failing.contains(next) ? .failed : .succeeded
    }
}

func succeeded(_ outcome: Orchestrator.Outcome) -> Bool { outcome == .succeeded }
func code(_ outcome: Orchestrator.Outcome) -> ErrorCode? {
    if case .failed(let code, _) = outcome { return code }
    return nil
}

@Suite struct OrchestratorDocumentedExamplesTests {
    @Test func nineHostsHostCountSixDeploysThreeAtATimeAndNeedsSix() {
        #expect(Orchestrator.maximumConcurrency(.hostCount(6), targets: 9) == 3)
        #expect(Orchestrator.decide(.hostCount(6), targets: Array(repeating: .pending, count: 9)).start == [0, 1, 2])
        // Three failures in the last batch still leave six successes; three in the first leave no room to go on.
        #expect(succeeded(simulate(.hostCount(6), count: 9, failing: [6, 7, 8]).outcome))
        #expect(code(simulate(.hostCount(6), count: 9, failing: [0, 1, 2]).outcome) == .healthConstraints)
    }

    @Test func nineHostsFortyPercentRoundsUpToFourAndDeploysFiveAtATime() {
        #expect(Orchestrator.minimumHealthy(.fleetPercent(40), targets: 9) == 4)
        #expect(Orchestrator.decide(.fleetPercent(40), targets: Array(repeating: .pending, count: 9)).start.count == 5)
    }

    @Test func halfAtATimeRoundsConcurrencyDownAndTheMinimumUp() {
        #expect(Orchestrator.minimumHealthy(.fleetPercent(50), targets: 9) == 5)
        #expect(Orchestrator.maximumConcurrency(.fleetPercent(50), targets: 9) == 4)
        #expect(succeeded(simulate(.fleetPercent(50), count: 9, failing: [5, 6, 7, 8]).outcome))
        #expect(!succeeded(simulate(.fleetPercent(50), count: 9, failing: [0, 1, 2, 3]).outcome))
    }

    @Test func allAtOnceStartsEverythingAndNeedsOneSuccess() {
        #expect(Orchestrator.decide(.hostCount(0), targets: Array(repeating: .pending, count: 7)).start.count == 7)
        #expect(succeeded(simulate(.hostCount(0), count: 7, failing: Set(0..<6)).outcome))
        #expect(code(simulate(.hostCount(0), count: 7, failing: Set(0..<7)).outcome) == .healthConstraints)
    }

    @Test func ninetyFivePercentOfTenFailsAtOnce() {
        let decision = Orchestrator.decide(.fleetPercent(95), targets: Array(repeating: .pending, count: 10))
        #expect(decision.start.isEmpty)
        #expect(code(decision.outcome) == .healthConstraintsInvalid)
    }

    @Test func minimumNineOfTenFailsOnAnyButTheLastFailure() {
        for index in 0..<9 {
            #expect(code(simulate(.hostCount(9), count: 10, failing: [index]).outcome) == .healthConstraints, "failure at \(index)")
        }
        #expect(succeeded(simulate(.hostCount(9), count: 10, failing: [9]).outcome))
    }

    @Test func minimumEightOfTenRunsTwoAtATimeAndFailsOnTheSecondFailureUnlessItIsTheLast() {
        #expect(Orchestrator.maximumConcurrency(.hostCount(8), targets: 10) == 2)
        #expect(code(simulate(.hostCount(8), count: 10, failing: [1, 4]).outcome) == .healthConstraints)
        #expect(succeeded(simulate(.hostCount(8), count: 10, failing: [3, 9]).outcome))
    }

    @Test func oneAtATime() {
        #expect(Orchestrator.decide(.oneAtATime, targets: Array(repeating: .pending, count: 5)).start == [0])
        #expect(code(simulate(.oneAtATime, count: 5, failing: [2]).outcome) == .healthConstraints)
        #expect(succeeded(simulate(.oneAtATime, count: 5, failing: [4]).outcome))
        #expect(!succeeded(simulate(.oneAtATime, count: 1, failing: [0]).outcome))
        #expect(succeeded(simulate(.oneAtATime, count: 1, failing: []).outcome))
        #expect(Orchestrator.Rule(MinimumHealthyHosts(type: .mostConcurrency, value: 1)) == .oneAtATime)
    }

    @Test func noTargetsIsNoInstances() {
        #expect(code(Orchestrator.decide(.hostCount(0), targets: []).outcome) == .noInstances)
    }

    @Test func pendingTargetsStartInTheGivenOrder() {
        let decision = Orchestrator.decide(.hostCount(1), targets: [.succeeded, .pending, .inProgress, .pending, .pending])
        // M = 1 of 5: four may be unhealthy at once, one is already in flight.
        #expect(decision.start == [1, 3, 4])
    }
}

@Suite struct OrchestratorExhaustiveTests {
    static let rules: [Orchestrator.Rule] =
        [.oneAtATime, .hostCount(0), .hostCount(1), .hostCount(2), .hostCount(3)]
        + [0, 25, 34, 50, 66, 75, 99].map { .fleetPercent($0) }

    /// Every rule, every fleet of 1 to 7 targets, every set of failing targets (completion in dispatch order):
    /// concurrency and the health floor hold, and the outcome is AWS's success rule.
    @Test(arguments: 1...7)
    func everyFailurePatternFollowsTheRules(_ count: Int) {
        for rule in Self.rules {
            let minimum = Orchestrator.minimumHealthy(rule, targets: count)
            for mask in 0..<(1 << count) {
                let failing = Set((0..<count).filter { mask & (1 << $0) != 0 })
                let result = simulate(rule, count: count, failing: failing)
                if rule != .oneAtATime, minimum >= count {
                    #expect(code(result.outcome) == .healthConstraintsInvalid)
                    continue
                }
                #expect(result.maxInFlight <= Orchestrator.maximumConcurrency(rule, targets: count), "\(rule) n=\(count) \(failing)")
                #expect(!result.floorBroken, "\(rule) n=\(count) \(failing)")
                if rule == .oneAtATime { #expect(result.maxInFlight == 1) }
                let successes = count - failing.count
                // While failures leave the floor intact, a deployment that can reach the minimum must succeed.
                if failing.count < count - minimum, successes >= max(minimum, 1) {
                    #expect(result.outcome == .succeeded, "\(rule) n=\(count) \(failing)")
                }
                switch result.outcome {
                case .succeeded:
                    #expect(successes >= minimum && successes >= 1, "\(rule) n=\(count) \(failing)")
                case .failed(let code, _):
                    #expect(code == .healthConstraints)
                    // Failing is right when the minimum cannot be kept: either too few can still succeed, or
                    // the failures so far already leave no room to go on.
                    #expect(
                        successes < max(minimum, 1) || failing.count > count - minimum - 1 || rule == .oneAtATime, "\(rule) n=\(count) \(failing)")
                case .running:
                    Issue.record("simulation stopped while running")
                }
            }
        }
    }
}

@Suite struct OrchestratorCountsTests {
    /// With nothing pending, the decision from counts is the decision from the targets, for every rule and every
    /// mix of in-flight, succeeded, failed and skipped targets up to 6.
    @Test func theCountsDecideAsTheTargetsDoWhenNothingIsPending() {
        for rule in OrchestratorExhaustiveTests.rules {
            for inProgress in 0...6 {
                for succeeded in 0...(6 - inProgress) {
                    for failed in 0...(6 - inProgress - succeeded) {
                        for skipped in 0...(6 - inProgress - succeeded - failed) {
                            let targets: [Orchestrator.TargetState] =
                                Array(repeating: .failed, count: failed) + Array(repeating: .inProgress, count: inProgress)
                                + Array(repeating: .skipped, count: skipped) + Array(repeating: .succeeded, count: succeeded)
                            let counted = Orchestrator.decideWithNothingPending(
                                rule, failed: failed, inProgress: inProgress, succeeded: succeeded, skipped: skipped)
                            #expect(counted == Orchestrator.decide(rule, targets: targets), "\(rule) \(targets)")
                        }
                    }
                }
            }
        }
    }
}
