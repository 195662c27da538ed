import Foundation
import Testing

/// A hook whose background child holds its output, run by a real agent: the `--wait` view says which process the
/// event is waiting for, from the note the agent posts (PostHostCommandUpdate), and the deployment then succeeds
/// as on AWS (issue 12, item 1).
@Suite(.serialized) struct LiveViewNoteTests {
    @Test func theWaitViewNamesTheProcessHoldingAHooksOutput() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        #expect(try cli.run(["create-application", "--application-name", "shop"]).status == 0)
        #expect(try cli.run(["register-on-premises-instance", "--instance-name", "web-1"]).status == 0)
        #expect(try cli.run(["add-tags-to-on-premises-instances", "--instance-names", "web-1", "--tags", "Key=role,Value=web"]).status == 0)
        #expect(
            try cli.run([
                "create-deployment-group", "--application-name", "shop", "--deployment-group-name", "web",
                "--on-premises-instance-tag-filters", "Key=role,Value=web,Type=KEY_AND_VALUE",
            ]).status == 0)
        let source = cli.directory.path + "/src"
        try ConfinementTests.revision(
            source, appspec: "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: start.sh\n      timeout: 60\n",
            files: ["start.sh": "#!/bin/sh\nsleep 2 &\necho started\n"])
        let push = try cli.run(["push", "--application-name", "shop", "--s3-location", "s3://releases/shop.zip", "--source", source])
        #expect(push.status == 0, "\(push.stderr)")
        let agent = try StateFileHardeningTests.start(
            [
                "agent", "run", "--instance-name", "web-1", "--state", cli.statePath, "--agent-root", cli.directory.path + "/root",
                "--install-root", cli.directory.path + "/host", "--poll-interval", "0.2",
            ], in: cli.directory.path, name: "agent")
        defer {
            agent.terminate()
            agent.waitUntilExit()
        }
        let result = try cli.run([
            "create-deployment", "--application-name", "shop", "--deployment-group-name", "web", "--s3-location",
            "bucket=releases,key=shop.zip,bundleType=zip", "--wait", "--timeout", "60",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("ApplicationStart InProgress: the script exited with code 0 but PID "), "\(result.stderr)")
        #expect(result.stderr.contains("still holds its stdout and stderr"), "\(result.stderr)")
        #expect(result.stderr.contains("Succeeded"), "\(result.stderr)")
    }
}
