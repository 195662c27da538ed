import ControlPlane
import DeployModel
import DeployStore
import Foundation
import Testing

@testable import Dashboard

/// What the pages say and what they refuse to let through, on a control plane in memory.
@Suite struct DashboardTests {
    static let admin = Viewer(accessKeyId: "AKIAADMIN", userName: "ops", role: "admin", csrfToken: "t0k3n", allows: { _ in true })
    static let reader = Viewer(accessKeyId: "AKIAREAD", userName: "", role: "read-only", csrfToken: "r", allows: { $0.hasPrefix("List") })

    func plane() throws -> (ControlPlane, String) {
        let plane = ControlPlane(store: MemoryStore())
        _ = try plane.createApplication(CreateApplicationInput(applicationName: "shop<b>"))
        for i in 0..<3 {
            try plane.registerOnPremisesInstance(RegisterOnPremisesInstanceInput(instanceName: "web-\(i)"))
        }
        try plane.addTagsToOnPremisesInstances(
            AddTagsToOnPremisesInstancesInput(tags: [Tag(key: "k", value: "v")], instanceNames: ["web-0", "web-1", "web-2"]))
        _ = try plane.createDeploymentGroup(
            CreateDeploymentGroupInput(
                applicationName: "shop<b>", deploymentGroupName: "prod", onPremisesInstanceTagFilters: [TagFilter(key: "k", type: .keyOnly)]))
        let id =
            try plane.createDeployment(
                CreateDeploymentInput(
                    applicationName: "shop<b>", deploymentGroupName: "prod",
                    revision: RevisionLocation(
                        revisionType: .s3, s3Location: S3Location(bucket: "b", key: "k\"><script>x</script>.zip", bundleType: .zip)),
                    description: "<img src=x onerror=alert(1)>")
            ).deploymentId ?? ""
        return (plane, id)
    }

    @Test func everythingUsersTypedIsEscaped() throws {
        #expect(HTML.escape("<script>a&b</script>\"'\u{1b}[31m") == "&lt;script&gt;a&amp;b&lt;/script&gt;&quot;&#39;\\x1b[31m")
        let (plane, id) = try plane()
        let page = try #require(try Dashboard(plane: plane).deployment(id, viewer: Self.admin))
        #expect(!page.contains("<script>x</script>") && !page.contains("<img src=x") && !page.contains("shop<b>"))
        #expect(page.contains("&lt;img src=x onerror=alert(1)&gt;") && page.contains("shop&lt;b&gt;"))
        let list = try Dashboard(plane: plane).deployments([:], viewer: Self.admin)
        #expect(!list.contains("<script>x</script>") && list.contains(id))
    }

    @Test func actionsFollowTheRoleAndCarryTheToken() throws {
        let (plane, id) = try plane()
        let dashboard = Dashboard(plane: plane)
        let admin = try #require(try dashboard.deployment(id, viewer: Self.admin))
        #expect(admin.contains("/ui/deployments/\(id)/stop") && admin.contains("value=\"t0k3n\""))
        let reader = try #require(try dashboard.deployment(id, viewer: Self.reader))
        #expect(!reader.contains("/stop\"") && !reader.contains("/redeploy\""))
        let confirm = try #require(try dashboard.confirmation("stop", deploymentId: id, viewer: Self.admin))
        #expect(confirm.contains("name=\"csrf\" value=\"t0k3n\"") && confirm.contains("name=\"rollback\""))
        // Stopping through the dashboard is the API's stop.
        #expect(try dashboard.perform("stop", deploymentId: id, form: [:], user: "ops") == id)
        #expect(try plane.getDeployment(GetDeploymentInput(deploymentId: id)).deploymentInfo?.status == .stopped)
        #expect(try dashboard.deployment("d-NOPE12345", viewer: Self.admin) == nil)
    }

    @Test func theGridHasARowPerInstanceAndOnlyTheEventsThatRun() throws {
        let (plane, id) = try plane()
        let page = try #require(try Dashboard(plane: plane).deployment(id, viewer: Self.admin, part: "live"))
        #expect(page.components(separatedBy: "<th scope=\"row\">").count - 1 == 3)
        #expect(page.contains(">ApplicationStop<") && !page.contains(">BlockTraffic<"))
        // The live part is a fragment, not a page.
        #expect(!page.contains("<html"))
    }

    @Test func sessionsExpireAndCookiesAreRead() {
        let sessions = DashboardSessions()
        let id = sessions.open(accessKeyId: "AKIA1")
        #expect(id.count == 64 && sessions.session(id)?.accessKeyId == "AKIA1")
        #expect(DashboardSessions.id(inCookieHeader: "a=b; deployctl_session=\(id); c=d") == id)
        #expect(DashboardSessions.id(inCookieHeader: "deployctl_sessionx=1") == nil)
        sessions.close(id)
        #expect(sessions.session(id) == nil)
        #expect(DashboardSessions.same("abc", "abc") && !DashboardSessions.same("abc", "abd") && !DashboardSessions.same("abc", "ab"))
    }

    @Test func readsAreCountedPerRender() throws {
        let (plane, id) = try plane()
        let counted = ControlPlane(store: CountedReads(plane.store), expiresOnRead: false)
        let (_, reads) = try CountedReads.counting { try Dashboard(plane: counted).deployment(id, viewer: Self.admin) }
        #expect(reads > 0 && reads < 20)
    }
}
