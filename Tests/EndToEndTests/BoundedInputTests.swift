import Foundation
import Testing

/// Numbers a user controls are bounded (issue 9, items 4 and 10): a clear error naming the flag or key and the
/// allowed range, never a crash, an overflow or a value accepted forever.
@Suite(.serialized) struct BoundedInputTests {
    @Test(arguments: ["9223372036854775807", "99999999999999999999999", "86401"])
    func aTimeoutBeyondADayIsAnErrorInValidateAndAtDeployment(timeout: String) throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let revision = cli.directory.appendingPathComponent("rev").path
        try ConfinementTests.revision(
            revision, appspec: "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: run.sh\n      timeout: \(timeout)\n",
            files: ["run.sh": "#!/bin/sh\n"])
        let validate = try cli.run(["validate", "--source", revision], withState: false)
        #expect(validate.status == 1)
        #expect(validate.stdout.contains("hooks.BeforeInstall[0].timeout"), "\(validate.stdout)")
        #expect(validate.stdout.contains("more than deployctl's limit of 86400 s (a day) per script"), "\(validate.stdout)")
        let local = try ConfinementTests.local(cli, ["--bundle-location", revision, "--install-root", cli.directory.path + "/host"])
        #expect(local.status == 1)
        #expect(local.stdout.contains("Deployment failed at DownloadBundle"), "\(local.stdout)")
        #expect(local.stdout.contains("86400"), "\(local.stdout)")
    }

    @Test func aTimeoutAboveAWSsCapIsStillOnlyAWarning() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let revision = cli.directory.appendingPathComponent("rev").path
        try ConfinementTests.revision(
            revision, appspec: "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: run.sh\n      timeout: 7200\n",
            files: ["run.sh": "#!/bin/sh\n"])
        let validate = try cli.run(["validate", "--source", revision], withState: false)
        #expect(validate.status == 0, "\(validate.stdout)")
        #expect(validate.stdout.contains("above AWS CodeDeploy's 3600 s limit"))
    }

    @Test(arguments: [
        (
            ["agent", "run", "--instance-name", "x", "--poll-interval", "inf"],
            "--poll-interval must be a number of seconds from 0.1 to 3600, got inf."
        ),
        (["agent", "run", "--instance-name", "x", "--poll-interval", "0"], "--poll-interval must be a number of seconds from 0.1 to 3600, got 0.0."),
        (["agent", "run", "--instance-name", "x", "--max-revisions", "-1"], "--max-revisions must be a whole number from 1 to 10000, got -1."),
        (["local", "--max-revisions", "-1"], "--max-revisions must be a whole number from 1 to 10000, got -1."),
        (["wait", "deployment-successful", "--deployment-id", "d-X", "--timeout", "-1"], "--timeout must be a number of seconds from 1 to 31536000"),
        (["create-deployment", "--application-name", "a", "--wait", "--timeout", "nan"], "--timeout must be a number of seconds from 1 to 31536000"),
        (["bundle", "extract", "--bundle", "b.zip", "--into", "x", "--max-entries", "0"], "--max-entries must be a whole number from 1"),
    ])
    func aNumericFlagOutOfRangeNamesTheFlagAndTheRange(arguments: [String], message: String) throws {
        let cli = try Deployctl(makingState: false)
        defer { cli.cleanUp() }
        let result = try cli.run(arguments)
        #expect(result.status == 252, "\(arguments): \(result.stderr)")
        #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: cli.statePath), "a refused command created the state file")
    }

    @Test func aNegativeNextTokenReachesTheServiceAsTheAwsCliSendsIt() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let result = try cli.run(["list-applications", "--next-token", "-5"])
        #expect(result.status == 254, "\(result.stderr)")
        #expect(result.stderr.contains("(InvalidNextTokenException)"), "\(result.stderr)")
    }
}
