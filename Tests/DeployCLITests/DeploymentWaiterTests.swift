import DeployModel
import Foundation
import Testing

@testable import DeployCLI

/// The `--wait` view says why an instance's next event is not picked up: whether an agent is there at all.
@Suite struct DeploymentWaiterTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func target(_ name: String, status: TargetStatus, updated: TimeInterval, events: [LifecycleEvent] = []) -> InstanceTarget {
        InstanceTarget(
            deploymentId: "d-1", targetId: name, status: status, lastUpdatedAt: now.addingTimeInterval(-updated), lifecycleEvents: events)
    }

    @Test func onlyInProgressTargetsWithNothingRunningForLongerThanTheNoticeWait() {
        let running = LifecycleEvent(lifecycleEventName: "BeforeInstall", status: .inProgress)
        let done = LifecycleEvent(lifecycleEventName: "ApplicationStop", endTime: now.addingTimeInterval(-2), status: .succeeded)
        let targets = [
            target("stalled", status: .inProgress, updated: 600),
            target("fresh", status: .inProgress, updated: 1),
            target("busy", status: .inProgress, updated: 600, events: [running]),
            target("queued", status: .pending, updated: 600),
            target("just-finished-an-event", status: .inProgress, updated: 600, events: [done]),
        ]
        #expect(DeploymentWaiter.waitingForAgent(targets, now: now) == ["stalled"])
    }

    @Test func theLineSaysWhetherAnAgentWasEverThere() throws {
        let info = DeploymentInfo(deploymentId: "d-1", status: .inProgress)
        let targets = ["web-1", "web-2", "web-3", "web-4"].map { target($0, status: .inProgress, updated: 300) }
        let agents: [String: AgentPresence] = [
            "web-1": AgentPresence(instanceName: "web-1", status: .never),
            "web-2": AgentPresence(instanceName: "web-2", status: .quiet, lastSeen: now.addingTimeInterval(-200)),
            "web-3": AgentPresence(instanceName: "web-3", status: .online, lastSeen: now.addingTimeInterval(-10)),
        ]
        let lines = DeploymentWaiter.view(info, targets, agents: agents, now: now)
        #expect(lines.count == 5)
        #expect(lines[1].hasSuffix("InProgress waiting for its agent: no agent has ever polled for web-1"), "\(lines[1])")
        #expect(lines[2].hasSuffix("waiting for its agent: no agent has polled for web-2 for 3 min"), "\(lines[2])")
        #expect(lines[3].hasSuffix("waiting for its agent (heard from less than a minute ago)"), "\(lines[3])")
        #expect(lines[4].hasSuffix("InProgress waiting for its agent"), "\(lines[4])")
    }

    /// A fleet larger than the screen: the view keeps to the screen's rows and columns, failures and running
    /// instances first, and says how many it left out.
    @Test func aLargeFleetFitsTheScreenWithFailuresFirst() {
        let header = "d-1 InProgress  pending 90, in progress 5, succeeded 4, failed 1, skipped 0"
        var lines = [header]
        for i in 0..<100 {
            let status = i == 77 ? "Failed     ValidateService Failed: ScriptFailed" : i % 20 == 0 ? "InProgress Install InProgress" : "Pending"
            lines.append("  web-\(i)    \(status) " + String(repeating: "x", count: 100))
        }
        let shown = DeploymentWaiter.fit(lines, rows: 24, columns: 80)
        #expect(shown.count == 23)
        #expect(shown.allSatisfy { $0.count <= 79 })
        #expect(shown[0] == header)
        #expect(shown.contains { $0.hasPrefix("  web-77 ") })
        #expect(shown.filter { $0.hasPrefix("  web") && $0.contains("InProgress") }.count == 5)
        #expect(shown.last == "  … and 79 more instances")
        // A view that fits is left as it is.
        #expect(DeploymentWaiter.fit(Array(lines.prefix(5)).map { String($0.prefix(60)) }, rows: 24, columns: 80).count == 5)
    }

    @Test func longLinesBreakAtSpacesWithinTheWidth() {
        let message = "Waiter DeploymentSuccessful failed: Waiter encountered a terminal failure state: For expression \"deploymentInfo.status\""
        let lines = TerminalSize.wrap(message, columns: 40)
        #expect(lines.allSatisfy { $0.count <= 39 })
        #expect(lines.joined(separator: " ").replacingOccurrences(of: "   ", with: " ").replacingOccurrences(of: "  ", with: " ") == message)
        #expect(lines.dropFirst().allSatisfy { $0.hasPrefix("  ") })
        let unbroken = String(repeating: "a", count: 100)
        #expect(TerminalSize.wrap(unbroken, columns: 40).allSatisfy { $0.count <= 39 })
        #expect(TerminalSize.wrap("short", columns: 40) == ["short"])
    }
}
