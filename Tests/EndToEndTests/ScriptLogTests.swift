import Foundation
import Testing

/// The deployment log (issue 9, items 5 and 15): capped with head and tail kept, bytes written as they came, and a
/// full disk reported as a failed event instead of a crash.
@Suite(.serialized) struct ScriptLogTests {
    static func logFiles(_ root: String) -> [String] {
        (FileManager.default.enumerator(atPath: root)?.allObjects as? [String] ?? []).filter { $0.hasSuffix("scripts.log") }.map {
            root + "/" + $0
        }
    }

    @Test func aCappedLogKeepsTheFirstAndLastOutputAndSaysWhatWasDropped() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let revision = cli.directory.path + "/rev"
        // 40,000 numbered lines of 100 bytes: 4 MB against a 1 MiB cap.
        try ConfinementTests.revision(
            revision, appspec: "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: loud.sh\n",
            files: ["loud.sh": "#!/bin/sh\nseq 1 40000 | while read n; do printf 'line %093d\\n' $n; done\n"])
        let result = try ConfinementTests.local(cli, ["--bundle-location", revision, "--max-log-bytes", "1048576"])
        #expect(result.status == 0, "\(result.stdout)")
        let log = try #require(Self.logFiles(cli.directory.path + "/root").first)
        let head = try String(contentsOfFile: log, encoding: .utf8)
        #expect(head.contains("[stdout]line " + String(repeating: "0", count: 92) + "1\n"))
        #expect(head.contains("this log reached its cap of 1048576 bytes"))
        let tail = try String(contentsOfFile: log + ".tail", encoding: .utf8)
        #expect(tail.contains("[stdout]line " + String(format: "%093d", 40000)))
        #expect(tail.contains("bytes of output were dropped before this point (log cap 1048576 bytes)"))
        var total = 0
        for file in [log, log + ".tail", log + ".tail.1"] {
            total += try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int ?? 0
        }
        #expect(total <= 1_048_576 + 1024, "\(total) bytes on disk for a 1 MiB cap")
        // The diagnostics tail of the event is still the script's last output.
        let json = try ConfinementTests.local(cli, ["--bundle-location", revision, "--max-log-bytes", "1048576", "--output", "json"])
        #expect(json.status == 0)
        #expect(try ConfinementTests.local(cli, ["--bundle-location", revision, "--max-log-bytes", "100"]).status == 252)
    }

    /// Every event's output across deployments also goes to one file under the agent root, with the deployment and
    /// the event on each line (as the AWS agent's codedeploy-agent-deployments.log), capped and rotated; pruning keeps
    /// the most recent failed deployment's logs (issue 12, item 5).
    @Test func theDeploymentsLogCollectsEveryDeploymentAndTheLastFailureSurvivesPruning() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let good = cli.directory.path + "/good"
        let bad = cli.directory.path + "/bad"
        try ConfinementTests.revision(
            good, appspec: "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: ok.sh\n", files: ["ok.sh": "#!/bin/sh\necho fine\n"])
        try ConfinementTests.revision(
            bad, appspec: "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: no.sh\n",
            files: ["no.sh": "#!/bin/sh\necho broken >&2\nexit 3\n"])
        func run(_ revision: String, _ id: String) throws -> Int32 {
            try ConfinementTests.local(cli, ["--bundle-location", revision, "--deployment-id", id, "--max-revisions", "1"]).status
        }
        #expect(try run(good, "d-GOOD1") == 0)
        #expect(try run(bad, "d-BAD1") == 1)
        #expect(try run(good, "d-GOOD2") == 0)
        #expect(try run(good, "d-GOOD3") == 0)
        let log = try String(contentsOfFile: cli.directory.path + "/root/deployment-logs/deployctl-deployments.log", encoding: .utf8)
        #expect(log.contains("[d-GOOD1] [AfterInstall] "), "\(log)")
        // Script output of every deployment: only its owner and group read it.
        var info = stat()
        #expect(stat(cli.directory.path + "/root/deployment-logs", &info) == 0 && info.st_mode & 0o7777 == 0o750)
        #expect(log.contains("[d-BAD1] [BeforeInstall] ") && log.contains("[stderr]broken"), "\(log)")
        #expect(log.contains("[d-GOOD3] [AfterInstall] ") && log.contains("[stdout]fine"))
        // --max-revisions 1, yet the failed deployment's directory (and its scripts.log) is still there.
        let group = cli.directory.path + "/root/default-local-deployment-group"
        let kept = try FileManager.default.contentsOfDirectory(atPath: group).sorted()
        #expect(kept.contains("d-BAD1"), "\(kept)")
        #expect(!kept.contains("d-GOOD1"), "\(kept)")
        #expect(FileManager.default.fileExists(atPath: group + "/d-BAD1/logs/scripts.log"))
    }

    @Test func scriptOutputIsWrittenAsTheBytesCame() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let revision = cli.directory.path + "/rev"
        try ConfinementTests.revision(
            revision, appspec: "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: bytes.sh\n",
            files: ["bytes.sh": "#!/bin/sh\nprintf 'latin1 \\351t\\351 \\377\\376 end\\n'\n"])
        let result = try ConfinementTests.local(cli, ["--bundle-location", revision])
        #expect(result.status == 0, "\(result.stdout)")
        let log = try #require(Self.logFiles(cli.directory.path + "/root").first)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: log))
        #expect(bytes.range(of: Data("[stdout]latin1 ".utf8) + Data([0xE9, 0x74, 0xE9, 0x20, 0xFF, 0xFE]) + Data(" end\n".utf8)) != nil)
        #expect(bytes.range(of: Data([0xEF, 0xBF, 0xBD])) == nil, "the log was re-encoded with U+FFFD")
    }

    /// A full disk while a hook prints: the event fails naming the device and the log, nothing crashes, and the
    /// next deployment on a disk with room works.
    @Test func aFullDiskFailsTheEventWithAClearMessage() throws {
        guard geteuid() == 0 else {
            print("skipped: mounting a small tmpfs to fill needs root")
            return
        }
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let small = cli.directory.path + "/small"
        try FileManager.default.createDirectory(atPath: small, withIntermediateDirectories: true)
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=2m", "tmpfs", small]
        try mount.run()
        mount.waitUntilExit()
        guard mount.terminationStatus == 0 else {
            print("skipped: cannot mount a tmpfs here")
            return
        }
        defer {
            let umount = Process()
            umount.executableURL = URL(fileURLWithPath: "/bin/umount")
            umount.arguments = [small]
            try? umount.run()
            umount.waitUntilExit()
        }
        let revision = cli.directory.path + "/rev"
        try ConfinementTests.revision(
            revision, appspec: "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: loud.sh\n      timeout: 60\n",
            files: ["loud.sh": "#!/bin/sh\nyes 'filling the disk with output'\n"])
        let start = Date()
        let result = try cli.run(["local", "--bundle-location", revision, "--agent-root", small + "/root"], withState: false)
        #expect(result.status == 1, "exit \(result.status): \(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("its output cannot be logged: no space left on tmpfs ("), "\(result.stdout)")
        #expect(result.stdout.contains("scripts.log)"), "\(result.stdout)")
        #expect(Date().timeIntervalSince(start) < 30, "the script was not stopped when its output could not be logged")
        let again = try ConfinementTests.local(cli, ["--bundle-location", Fixtures.staticSite, "--install-root", cli.directory.path + "/host"])
        #expect(again.status == 0, "\(again.stdout)")
    }
}

extension ScriptLogTests {
    /// A state file on a full disk: the change is refused with the device and path named, and nothing half-written.
    @Test func aFullDiskUnderTheStateFileIsAClearError() throws {
        guard geteuid() == 0 else {
            print("skipped: mounting a small tmpfs needs root")
            return
        }
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let small = cli.directory.path + "/small"
        try FileManager.default.createDirectory(atPath: small, withIntermediateDirectories: true)
        guard HookSupervisionTests.shell("mount -t tmpfs -o size=400k tmpfs '\(small)'") == 0 else {
            print("skipped: cannot mount a tmpfs here")
            return
        }
        defer { _ = HookSupervisionTests.shell("umount '\(small)'") }
        let state = small + "/state.db"
        #expect(try cli.run(["create-application", "--application-name", "web", "--state", state], withState: false).status == 0)
        // Fill what is left, then try to write.
        _ = HookSupervisionTests.shell("dd if=/dev/zero of='\(small)/filler' bs=4k count=1000")
        var result = try cli.run(["create-application", "--application-name", "api", "--state", state], withState: false)
        for index in 0..<40 where result.status == 0 {
            result = try cli.run(
                ["create-application", "--application-name", "api-\(index)-" + String(repeating: "x", count: 90), "--state", state],
                withState: false)
        }
        #expect(result.status == 255, "\(result.stderr)")
        #expect(result.stderr.contains("no space left on tmpfs (\(state))"), "\(result.stderr)")
        // Reading may need room for SQLite's -shm file too: it works, or says the same clearly.
        let list = try cli.run(["list-applications", "--state", state], withState: false)
        #expect(list.status == 0 || list.stderr.contains("no space left on tmpfs"), "\(list.stderr)")
        // Once there is room again, what was committed before is all there.
        _ = HookSupervisionTests.shell("rm -f '\(small)/filler'")
        let after = try cli.run(["list-applications", "--state", state], withState: false)
        #expect(after.status == 0, "\(after.stderr)")
        #expect(after.stdout.contains("\"web\""))
    }

    /// Output redirected to a full device is an error (exit 255 with the cause), never a crash (it was a trap, 132).
    @Test(arguments: [["list-applications", "--state"], ["validate", "--source", LocalCommandTests.apps + "/static-site", "--output"]])
    func outputToAFullDeviceIsAClearError(arguments: [String]) throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Deployctl.binary)
        process.arguments = arguments + [arguments.last == "--state" ? cli.statePath : "json"]
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: "/dev/full"))
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 255, "\(text)")
        #expect(text.contains("cannot write the output: No space left on device"), "\(text)")
    }
}

enum Fixtures {
    static let staticSite = LocalCommandTests.apps + "/static-site"
}
