import DeployModel
import DeployStore
import Foundation
import Testing

/// The store remembers what it wrote as the decoded value of the text it wrote (`StoredJSONCache.remember`): that
/// is only right if stored JSON decodes to exactly the value it was encoded from, times included (the control plane
/// makes every time to the millisecond, `ControlPlane.now()`, which is what stored JSON keeps).
@Suite struct StoredJSONTests {
    /// Times as the control plane makes them (milliseconds), over the years a state file may see.
    func times(_ count: Int) -> [Date] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in
            Date(timeIntervalSince1970: Double(UInt64.random(in: 1_500_000_000_000...4_100_000_000_000, using: &generator)) / 1000)
        }
    }

    @Test func targetsDecodeToTheValueTheyWereStoredFrom() throws {
        let stamps = times(2000)
        for index in stride(from: 0, to: stamps.count, by: 2) {
            let events = ["ApplicationStop", "DownloadBundle", "AfterInstall"].map { name in
                LifecycleEvent(
                    lifecycleEventName: name,
                    diagnostics: Diagnostics(
                        errorCode: .scriptFailed, scriptName: "scripts/é \"x\".sh", message: "exit 3\n\u{1}", logTail: "[stderr]ü\ttab"),
                    startTime: stamps[index], endTime: stamps[index + 1], status: .failed)
            }
            let target = InstanceTarget(
                deploymentId: "d-ABC\(index)", targetId: "web-\(index)", targetArn: "arn:aws:iam::000000000000:user/web",
                status: .inProgress, lastUpdatedAt: stamps[index + 1], lifecycleEvents: events, instanceLabel: nil)
            #expect(try fromStoredJSON(InstanceTarget.self, storedJSON(target)) == target)
        }
    }

    @Test func deploymentsDecodeToTheValueTheyWereStoredFrom() throws {
        for stamp in times(500) {
            var info = DeploymentInfo()
            info.deploymentId = "d-XYZ"
            info.applicationName = "web"
            info.status = .inProgress
            info.createTime = stamp
            info.startTime = Date(timeIntervalSince1970: (stamp.timeIntervalSince1970 * 1000 + 1).rounded() / 1000)
            info.deploymentOverview = DeploymentOverview(pending: 3, inProgress: 997, succeeded: 0, failed: 0, skipped: 0, ready: nil)
            info.errorInformation = ErrorInformation(code: .agentIssue, message: "\"quoted\" ünïcode")
            let text = try storedJSON(info)
            let back = try fromStoredJSON(DeploymentInfo.self, text)
            #expect(back == info, "\(text)\n\(back)\n\(info)")
        }
    }
}
