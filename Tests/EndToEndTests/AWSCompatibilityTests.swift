import Foundation
import Testing

/// One small bundle per behaviour a team moving from CodeDeploy relies on (issue 12): deployctl's outcome, and the
/// warning where the AWS agent would do something else. The AWS outcome of each row is stated in its comment with
/// how it was observed (runs of the AWS agent 1.8.1 and its `codedeploy-local`).
@Suite(.serialized) struct AWSCompatibilityTests {
    /// Deploys `revision` (a directory, or a bundle made from it) with `deployctl local` into a fresh install root.
    static func deploy(_ cli: Deployctl, _ revision: String, type: String = "directory", extra: [String] = []) throws -> Deployctl.Result {
        var location = revision
        if type != "directory" {
            location = revision + "." + type
            let made = try cli.run(["bundle", "create", "--source", revision, "--bundle", location, "--bundle-type", type], withState: false)
            #expect(made.status == 0, "\(made.stderr)")
        }
        return try cli.run(
            ["local", "--bundle-location", location, "--agent-root", cli.directory.path + "/root", "--install-root", cli.directory.path + "/host"]
                + extra, withState: false)
    }

    static func validate(_ cli: Deployctl, _ revision: String) throws -> Deployctl.Result {
        try cli.run(["validate", "--source", revision], withState: false)
    }

    static func mode(_ path: String) throws -> Int {
        try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int ?? -1
    }

    /// AWS: a symlink leading outside the bundle is installed as a symlink, from a directory and from an archive
    /// (observed). Here: the same, never followed, and validate warns naming the target.
    @Test(arguments: ["directory", "tgz", "zip"])
    func symlinksLeadingOutsideAreInstalledAsSymlinks(type: String) throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let revision = cli.directory.path + "/rev"
        try ConfinementTests.revision(
            revision, appspec: "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: /srv/app\n",
            files: ["app/index.html": "hi"], links: ["app/current": "/etc/myapp", "app/shared": "../../shared"])
        let result = try Self.deploy(cli, revision, type: type)
        #expect(result.status == 0, "\(result.stdout)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: cli.directory.path + "/host/srv/app/current") == "/etc/myapp")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: cli.directory.path + "/host/srv/app/shared") == "../../shared")
        let validate = try Self.validate(cli, revision)
        #expect(validate.status == 0, "\(validate.stdout)")
        #expect(validate.stdout.contains("app/current: the symlink points outside the revision (to '/etc/myapp')"), "\(validate.stdout)")
    }

    /// AWS: unquoted `mode: 0644` is YAML's octal 420, applied as chmod 0420 (observed). Here: 0644 as the author
    /// meant, and a warning saying what AWS would apply.
    @Test func anUnquotedLeadingZeroModeIsAppliedAsWrittenWithAWarning() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let revision = cli.directory.path + "/rev"
        try ConfinementTests.revision(
            revision,
            appspec:
                "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /srv/site\npermissions:\n  - object: /srv/site\n    pattern: \"**\"\n    mode: 0644\n    type: [file]\n",
            files: ["site/index.html": "hi"])
        #expect(try Self.deploy(cli, revision).status == 0)
        #expect(try Self.mode(cli.directory.path + "/host/srv/site/index.html") == 0o644)
        let validate = try Self.validate(cli, revision)
        #expect(validate.stdout.contains("would apply 0420 (r---w----)"), "\(validate.stdout)")
        // The deployment log says it too.
        let logs = (FileManager.default.enumerator(atPath: cli.directory.path + "/root")?.allObjects as? [String] ?? []).filter {
            $0.hasSuffix("scripts.log")
        }
        let log = try String(contentsOfFile: cli.directory.path + "/root/" + (logs.first ?? ""), encoding: .utf8)
        #expect(log.contains("[appspec]") && log.contains("would apply 0420"), "\(log)")
    }

    /// AWS: `version: "0.0"` quoted is refused with a Ruby error (observed). Here: accepted
    /// with a warning.
    @Test func aQuotedVersionIsAcceptedWithAWarning() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let revision = cli.directory.path + "/rev"
        try ConfinementTests.revision(revision, appspec: "version: \"0.0\"\nos: linux\n")
        #expect(try Self.deploy(cli, revision).status == 0)
        let validate = try Self.validate(cli, revision)
        #expect(validate.status == 0)
        #expect(validate.stdout.contains("the AWS CodeDeploy agent refuses a quoted version"), "\(validate.stdout)")
    }

    /// AWS: a hook that leaves `sleep &` holding stdout makes the event wait until the child exits (success) or the
    /// timeout (observed). Here: the same outcome, and validate warns on the line.
    @Test func aBackgroundJobWithoutRedirectIsWaitedForAndWarnedAbout() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let revision = cli.directory.path + "/rev"
        try ConfinementTests.revision(
            revision, appspec: "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: start.sh\n      timeout: 30\n",
            files: ["start.sh": "#!/bin/sh\nsleep 1 &\nsleep 1 > /dev/null 2>&1 &\necho started\n"])
        let start = Date()
        let result = try Self.deploy(cli, revision)
        #expect(result.status == 0, "\(result.stdout)")
        #expect(Date().timeIntervalSince(start) >= 0.9)
        #expect(result.stdout.contains("waiting: the script exited with code 0 but PID "), "\(result.stdout)")
        let validate = try Self.validate(cli, revision)
        #expect(
            validate.stdout.contains("start.sh:2:1: warning RV202: hooks.ApplicationStart[0].location: 'sleep 1 &' starts a background job"),
            "\(validate.stdout)")
        #expect(!validate.stdout.contains("'sleep 1 > /dev/null 2>&1 &'"))
    }

    /// AWS: DISALLOW fails on an existing file, OVERWRITE replaces it, RETAIN keeps it (observed). Same here; DISALLOW
    /// names every conflict (AWS names the first).
    @Test func fileExistsBehaviors() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let revision = cli.directory.path + "/rev"
        try ConfinementTests.revision(
            revision, appspec: "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /srv/site\n",
            files: ["site/a.html": "new a", "site/b.html": "new b"])
        let host = cli.directory.path + "/host/srv/site"
        try FileManager.default.createDirectory(atPath: host, withIntermediateDirectories: true)
        for name in ["a.html", "b.html"] { try Data("old".utf8).write(to: URL(fileURLWithPath: host + "/" + name)) }
        let disallow = try Self.deploy(cli, revision)
        #expect(disallow.status == 1)
        #expect(disallow.stdout.contains("2 file(s) already exist"), "\(disallow.stdout)")
        #expect(try String(contentsOfFile: host + "/a.html", encoding: .utf8) == "old")
        #expect(try Self.deploy(cli, revision, extra: ["--file-exists-behavior", "RETAIN", "--deployment-group", "g2"]).status == 0)
        #expect(try String(contentsOfFile: host + "/a.html", encoding: .utf8) == "old")
        #expect(try Self.deploy(cli, revision, extra: ["--file-exists-behavior", "OVERWRITE", "--deployment-group", "g3"]).status == 0)
        #expect(try String(contentsOfFile: host + "/a.html", encoding: .utf8) == "new a")
    }

    /// AWS: a bundle whose only top-level entry is a folder holding the appspec is unpacked from inside it
    /// (observed). Same here.
    @Test func aSingleTopLevelFolderIsStripped() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let wrapper = cli.directory.path + "/wrap"
        try ConfinementTests.revision(
            wrapper + "/release-1.0", appspec: "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /srv/site\n",
            files: ["site/index.html": "hi"])
        let result = try Self.deploy(cli, wrapper, type: "tgz")
        #expect(result.status == 0, "\(result.stdout)")
        #expect(FileManager.default.fileExists(atPath: cli.directory.path + "/host/srv/site/index.html"))
    }

    /// AWS: owner, group and mode are applied to what the deployment installed (observed); a runas
    /// hook runs as that user with its HOME (observed). Same here.
    @Test func ownerGroupModeAndRunas() throws {
        guard geteuid() == 0 else {
            print("skipped: owners and runas need root")
            return
        }
        let user = "dctl-compat\(Int.random(in: 1000...9999))"
        #expect(HookSupervisionTests.shell("useradd -M -d /home/\(user) -s /bin/sh \(user)") == 0)
        defer { _ = HookSupervisionTests.shell("userdel \(user)") }
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        chmod(cli.directory.path, 0o777)
        let revision = cli.directory.path + "/rev"
        try ConfinementTests.revision(
            revision,
            appspec: """
                version: 0.0
                os: linux
                files:
                  - source: site
                    destination: /srv/site
                permissions:
                  - object: /srv/site
                    owner: \(user)
                    group: \(user)
                    mode: 640
                    type: [file]
                hooks:
                  AfterInstall:
                    - location: who.sh
                      runas: \(user)
                """, files: ["site/index.html": "hi", "who.sh": "#!/bin/sh\necho \"$(id -un) $HOME\" > \(cli.directory.path)/who.txt\n"])
        let result = try Self.deploy(cli, revision)
        #expect(result.status == 0, "\(result.stdout)")
        let file = cli.directory.path + "/host/srv/site/index.html"
        let attributes = try FileManager.default.attributesOfItem(atPath: file)
        #expect(attributes[.ownerAccountName] as? String == user)
        #expect(attributes[.groupOwnerAccountName] as? String == user)
        #expect(try Self.mode(file) == 0o640)
        #expect(try String(contentsOfFile: cli.directory.path + "/who.txt", encoding: .utf8) == "\(user) /home/\(user)\n")
    }
}
