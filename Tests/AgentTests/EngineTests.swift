import Agent
import AppSpec
import Bundles
import DeployModel
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A scratch area with an agent root, an install root and revisions written on the fly.
final class Sandbox {
    let url: URL
    var path: String { url.path }
    var root: DeploymentRoot { DeploymentRoot(path: path + "/agent-root") }
    var installRoot: String { path + "/install" }
    var counter = 0

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("agent-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        chmod(path, 0o755)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// Writes a revision directory from `files` (path → content; a content starting with "->" makes a symlink).
    func revision(_ files: [String: String], executable: Set<String> = []) throws -> String {
        counter += 1
        let dir = path + "/rev\(counter)"
        for (relative, content) in files {
            let file = dir + "/" + relative
            try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            if content.hasPrefix("->") {
                try FileManager.default.createSymbolicLink(atPath: file, withDestinationPath: String(content.dropFirst(2)))
            } else {
                try Data(content.utf8).write(to: URL(fileURLWithPath: file))
                chmod(file, executable.contains(relative) || relative.hasSuffix(".sh") ? 0o755 : 0o644)
            }
        }
        return dir
    }

    func spec(_ revision: String, id: String? = nil, behavior: FileExistsBehavior? = nil, events: [String]? = nil, ignoreStop: Bool = false)
        -> DeploymentSpec
    {
        counter += 1
        return DeploymentSpec(
            deploymentId: id ?? String(format: "d-TEST%05d", counter), applicationName: "app", deploymentGroupName: "group",
            deploymentGroupId: "group-id", bundle: .directory(revision), fileExistsBehavior: behavior, ignoreApplicationStopFailures: ignoreStop,
            installRoot: installRoot, events: events)
    }

    func engine(maxRevisions: Int = 5) -> LifecycleEngine {
        LifecycleEngine(root: root, runner: HookRunner(killGrace: 1), maxRevisions: maxRevisions)
    }

    /// Runs the deployment through the built binary (`deployctl local --output json`), as a user would.
    func deploy(_ spec: DeploymentSpec, maxRevisions: Int = 5) throws -> [Outcome] {
        guard case .directory(let revision) = spec.bundle else { throw Binary.Failure("only directory revisions here") }
        var arguments = [
            "local", "--bundle-location", revision, "--type", "directory", "--agent-root", root.path, "--install-root", installRoot,
            "--deployment-group", spec.deploymentGroupId, "--deployment-group-name", spec.deploymentGroupName,
            "--application-name", spec.applicationName, "--deployment-id", spec.deploymentId, "--max-revisions", String(maxRevisions),
            "--output", "json",
        ]
        if let behavior = spec.fileExistsBehavior { arguments += ["--file-exists-behavior", behavior.rawValue] }
        if let events = spec.events { arguments += ["--events", events.joined(separator: ",")] }
        if spec.ignoreApplicationStopFailures { arguments.append("--ignore-application-stop-failures") }
        let (status, stdout, stderr) = try Binary.run(arguments)
        guard let document = try? JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any],
            let events = document["events"] as? [[String: Any]]
        else { throw Binary.Failure("deployctl local exited \(status) without a report: \(stdout) \(stderr)") }
        let outcomes = events.map(Outcome.init)
        let failed = outcomes.contains { $0.status == .failed }
        guard status == (failed ? 1 : 0) else { throw Binary.Failure("exit status \(status) does not match the report") }
        return outcomes
    }

    func installed(_ relative: String) -> String { installRoot + relative }
}

/// The built `deployctl` next to the test bundle (`.build/debug/deployctl`), or `$DEPLOYCTL_BIN`.
enum Binary {
    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    static var path: String { BuiltBinary.path }

    static func run(_ arguments: [String]) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, stdout, stderr)
    }
}

/// One event of `deployctl local --output json`.
struct Outcome {
    struct Diagnostics {
        var code: ScriptErrorCode?
        var message: String
        var logTail: String
    }
    var name: String
    var status: EventStatus?
    var diagnostics: Diagnostics?
    var ignoredFailure: Bool

    init(_ json: [String: Any]) {
        name = json["lifecycleEventName"] as? String ?? ""
        status = (json["status"] as? String).flatMap(EventStatus.init(rawValue:))
        ignoredFailure = json["ignoredFailure"] as? Bool ?? false
        diagnostics = (json["diagnostics"] as? [String: Any]).map {
            Diagnostics(
                code: ($0["errorCode"] as? String).flatMap(ScriptErrorCode.init(rawValue:)), message: $0["message"] as? String ?? "",
                logTail: $0["logTail"] as? String ?? "")
        }
    }
}

extension [Outcome] {
    func status(_ name: String) -> EventStatus? { first { $0.name == name }?.status }
    var failure: Outcome? { first { $0.status == .failed } }
}

let staticAppSpec = """
    version: 0.0
    os: linux
    files:
      - source: site
        destination: /srv/app
    """

@Suite(.serialized) struct InstallTests {
    @Test func firstInstallThenRedeployRemovesTheOldRevisionsFiles() throws {
        let box = try Sandbox()
        let v1 = try box.revision(["appspec.yml": staticAppSpec, "site/index.html": "v1", "site/old.html": "only in v1", "site/css/a.css": "a"])
        let first = try box.deploy(box.spec(v1))
        #expect(first.failure == nil, "\(String(describing: first.failure))")
        #expect(first.status("ApplicationStop") == .skipped)
        #expect(try String(contentsOfFile: box.installed("/srv/app/index.html"), encoding: .utf8) == "v1")

        let v2 = try box.revision(["appspec.yml": staticAppSpec, "site/index.html": "v2"])
        let second = try box.deploy(box.spec(v2))
        #expect(second.failure == nil)
        #expect(try String(contentsOfFile: box.installed("/srv/app/index.html"), encoding: .utf8) == "v2")
        #expect(!FileManager.default.fileExists(atPath: box.installed("/srv/app/old.html")))
        #expect(!FileManager.default.fileExists(atPath: box.installed("/srv/app/css")))
        #expect(second.status("ApplicationStop") == .succeeded)
    }

    @Test func disallowFailsNamingEveryConflictAndTouchesNothing() throws {
        let box = try Sandbox()
        try FileManager.default.createDirectory(atPath: box.installed("/srv/app"), withIntermediateDirectories: true)
        try Data("mine".utf8).write(to: URL(fileURLWithPath: box.installed("/srv/app/index.html")))
        try Data("mine too".utf8).write(to: URL(fileURLWithPath: box.installed("/srv/app/b.html")))
        let rev = try box.revision(["appspec.yml": staticAppSpec, "site/index.html": "new", "site/b.html": "new", "site/c.html": "new"])
        let results = try box.deploy(box.spec(rev))
        let failure = try #require(results.failure)
        #expect(failure.name == "Install")
        let message = failure.diagnostics?.message ?? ""
        #expect(message.contains(box.installed("/srv/app/index.html")) && message.contains(box.installed("/srv/app/b.html")))
        #expect(message.contains("2 file(s) already exist"))
        #expect(!FileManager.default.fileExists(atPath: box.installed("/srv/app/c.html")))
        #expect(try String(contentsOfFile: box.installed("/srv/app/index.html"), encoding: .utf8) == "mine")
        #expect(results.status("AfterInstall") == .skipped)
    }

    @Test func overwriteReplacesAndRetainKeeps() throws {
        let box = try Sandbox()
        try FileManager.default.createDirectory(atPath: box.installed("/srv/app"), withIntermediateDirectories: true)
        try Data("mine".utf8).write(to: URL(fileURLWithPath: box.installed("/srv/app/index.html")))
        let rev = try box.revision(["appspec.yml": staticAppSpec, "site/index.html": "new", "site/extra.html": "extra"])
        #expect(try box.deploy(box.spec(rev, behavior: .retain)).failure == nil)
        #expect(try String(contentsOfFile: box.installed("/srv/app/index.html"), encoding: .utf8) == "mine")
        #expect(FileManager.default.fileExists(atPath: box.installed("/srv/app/extra.html")))
        #expect(try box.deploy(box.spec(rev, behavior: .overwrite)).failure == nil)
        #expect(try String(contentsOfFile: box.installed("/srv/app/index.html"), encoding: .utf8) == "new")
        // The appspec's own file_exists_behavior wins over the deployment's.
        let strict = try box.revision([
            "appspec.yml": staticAppSpec + "\nfile_exists_behavior: DISALLOW\n", "site/index.html": "x", "site/z.html": "z",
        ])
        try Data("foreign".utf8).write(to: URL(fileURLWithPath: box.installed("/srv/app/z.html")))
        #expect(try box.deploy(box.spec(strict, behavior: .overwrite)).failure?.name == "Install")
    }

    @Test func permissionsAreAppliedAndSymlinksPreserved() throws {
        let box = try Sandbox()
        let spec =
            staticAppSpec + """

                permissions:
                  - object: /srv/app
                    pattern: "*.sh"
                    mode: 0750
                    type: [file]
                  - object: /srv/app/data
                    mode: 700
                    type: [directory]
                  - object: /srv/app
                    pattern: "*.html"
                    except: [secret.html]
                    mode: "0604"
                    type: [file]
                """
        let rev = try box.revision([
            "appspec.yml": spec, "site/run.sh": "#!/bin/sh\n", "site/index.html": "i", "site/secret.html": "s", "site/data/deep/f.txt": "f",
            "site/current": "->index.html", "site/data/link": "->../index.html",
        ])
        let results = try box.deploy(box.spec(rev))
        #expect(results.failure == nil, "\(String(describing: results.failure?.diagnostics))")
        func mode(_ p: String) -> Int { (try? FileManager.default.attributesOfItem(atPath: box.installed(p))[.posixPermissions] as? Int) ?? -1 }
        #expect(mode("/srv/app/run.sh") == 0o750)
        #expect(mode("/srv/app/index.html") == 0o604)
        #expect(mode("/srv/app/secret.html") == 0o644)
        #expect(mode("/srv/app/data/deep") == 0o700)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: box.installed("/srv/app/current")) == "index.html")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: box.installed("/srv/app/data/link")) == "../index.html")
    }

    @Test func aclsAreAppliedWithSetfacl() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setfacl"), geteuid() == 0 else {
            print("skipped: setfacl (Debian package acl) and root are needed to apply ACLs")
            return
        }
        let box = try Sandbox()
        let spec =
            staticAppSpec
            + "\npermissions:\n  - object: /srv/app\n    pattern: \"*.txt\"\n    acls: [\"u:root:rw\", \"g:root:r\"]\n    type: [file]\n"
        let rev = try box.revision(["appspec.yml": spec, "site/a.txt": "a"])
        let results = try box.deploy(box.spec(rev))
        #expect(results.failure == nil, "\(String(describing: results.failure?.diagnostics))")
        let getfacl = Process()
        getfacl.executableURL = URL(fileURLWithPath: "/usr/bin/getfacl")
        getfacl.arguments = ["-p", box.installed("/srv/app/a.txt")]
        let out = Pipe()
        getfacl.standardOutput = out
        try getfacl.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        getfacl.waitUntilExit()
        #expect(text.contains("user:root:rw-"))
        #expect(text.contains("group:root:r--"))
    }

    /// Enough files for many cleanup-list batches, shared between the two copy threads: every file arrives with
    /// its bytes and mode, the cleanup list names each of them once, and a redeploy removes them all.
    @Test func aManyFileInstallArrivesWholeAndIsListedForCleanup() throws {
        let box = try Sandbox()
        var files = ["appspec.yml": staticAppSpec]
        for index in 0..<700 { files["site/d\(index % 5)/f\(index).txt"] = String(repeating: "\(index) ", count: index % 40) }
        let rev = try box.revision(files, executable: ["site/d0/f0.txt", "site/d1/f1.txt"])
        #expect(try box.deploy(box.spec(rev)).failure == nil)
        for index in 0..<700 {
            let path = box.installed("/srv/app/d\(index % 5)/f\(index).txt")
            #expect(try String(contentsOfFile: path, encoding: .utf8) == String(repeating: "\(index) ", count: index % 40))
        }
        var info = stat()
        #expect(lstat(box.installed("/srv/app/d1/f1.txt"), &info) == 0 && info.st_mode & 0o777 == 0o755)
        #expect(lstat(box.installed("/srv/app/d2/f2.txt"), &info) == 0 && info.st_mode & 0o777 == 0o644)
        let listed = Installer.listed(in: box.root.cleanupList("group-id"))
        #expect(listed.count == 700 + 5 + 2)  // the files, d0-d4, /srv and /srv/app
        #expect(Set(listed).count == listed.count)
        let next = try box.revision(["appspec.yml": staticAppSpec, "site/index.html": "v2"])
        #expect(try box.deploy(box.spec(next)).failure == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: box.installed("/srv/app")) == ["index.html"])
    }

    /// A copy that fails on one thread fails the install with that file named, and the next install removes what
    /// the failed one had created.
    @Test func aFailedCopyNamesItsFileAndIsCleanedUpNextTime() throws {
        let box = try Sandbox()
        var files = ["appspec.yml": staticAppSpec]
        for index in 0..<300 { files["site/f\(index).txt"] = "\(index)" }
        // A source that is not a regular file cannot be installed: BeforeInstall (run in the extracted revision)
        // puts a FIFO among the files.
        files["appspec.yml"] = staticAppSpec + "\nhooks:\n  BeforeInstall:\n    - location: fifo.sh\n"
        files["fifo.sh"] = "#!/bin/sh\nmkfifo site/f150.txt.fifo\n"
        let rev = try box.revision(files)
        let results = try box.deploy(box.spec(rev))
        let failure = try #require(results.failure)
        #expect(failure.name == "Install")
        #expect(failure.diagnostics?.message.contains("f150.txt.fifo") == true, "\(String(describing: failure.diagnostics))")
        let good = try box.revision(["appspec.yml": staticAppSpec, "site/ok.txt": "ok"])
        #expect(try box.deploy(box.spec(good)).failure == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: box.installed("/srv/app")) == ["ok.txt"])
    }

    /// A permissions entry reaches every file of an install larger than the process's descriptor limit: matched files
    /// used to stay open until the entry was done, and past the limit the rest silently kept their modes.
    @Test func permissionsReachEveryFilePastTheDescriptorLimit() throws {
        let box = try Sandbox()
        var files = [
            "appspec.yml": staticAppSpec + "\npermissions:\n  - object: /srv/app\n    pattern: \"**\"\n    mode: 600\n    type:\n      - file\n"
        ]
        for index in 0..<400 { files["site/f\(index).txt"] = "\(index)" }
        let rev = try box.revision(files)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = [
            "-c", "ulimit -n 128 && exec \"$0\" \"$@\"", Binary.path, "local", "--bundle-location", rev, "--type", "directory",
            "--agent-root", box.root.path, "--install-root", box.installRoot,
        ]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        var wrongModes: [String] = []
        for index in 0..<400 {
            var info = stat()
            let path = box.installed("/srv/app/f\(index).txt")
            if lstat(path, &info) != 0 || info.st_mode & 0o777 != 0o600 { wrongModes.append(path) }
        }
        #expect(wrongModes.count == 0, "file(s) kept their mode, the first \(wrongModes.first ?? "")")
    }

    @Test func anInterruptedInstallIsCleanedUpByTheNextOne() throws {
        let box = try Sandbox()
        let cleanup = box.root.cleanupList("group-id")
        try FileManager.default.createDirectory(atPath: box.installed("/srv/app"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: (cleanup as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        // What a killed install leaves: its list names a file it had started to copy, and a torn last line.
        try Data("half".utf8).write(to: URL(fileURLWithPath: box.installed("/srv/app/index.html")))
        try Data("\(box.installed("/srv/app/index.html"))\n/srv/app/tor".utf8).write(to: URL(fileURLWithPath: cleanup))
        let rev = try box.revision(["appspec.yml": staticAppSpec, "site/index.html": "whole"])
        #expect(try box.deploy(box.spec(rev)).failure == nil)
        #expect(try String(contentsOfFile: box.installed("/srv/app/index.html"), encoding: .utf8) == "whole")
    }

    /// A redeploy leaves files that are installed again byte for byte in place (same inode), replaces changed
    /// ones, removes those the new revision no longer has, and still removes directories that end up empty later.
    @Test func aRedeployLeavesUnchangedFilesInPlace() throws {
        let box = try Sandbox()
        let first = try box.revision(["appspec.yml": staticAppSpec, "site/index.html": "same", "site/css/a.css": "old", "site/gone.txt": "x"])
        #expect(try box.deploy(box.spec(first)).failure == nil)
        func inode(_ path: String) -> UInt64? {
            var info = stat()
            return lstat(box.installed(path), &info) == 0 ? UInt64(info.st_ino) : nil
        }
        let before = inode("/srv/app/index.html")
        let second = try box.revision(["appspec.yml": staticAppSpec, "site/index.html": "same", "site/css/a.css": "new"])
        let spec = box.spec(second)
        #expect(try box.deploy(spec).failure == nil)
        #expect(inode("/srv/app/index.html") == before, "an unchanged file was copied again")
        #expect(try String(contentsOfFile: box.installed("/srv/app/css/a.css"), encoding: .utf8) == "new")
        #expect(!FileManager.default.fileExists(atPath: box.installed("/srv/app/gone.txt")))
        let log = try String(contentsOfFile: box.root.scriptLog(group: spec.deploymentGroupId, deployment: spec.deploymentId), encoding: .utf8)
        #expect(log.contains("1 file(s) are unchanged since the previous revision: left in place"), "\(log)")
        // A third revision without css/: the directory that held kept files before goes away.
        let third = try box.revision(["appspec.yml": staticAppSpec, "site/index.html": "same"])
        #expect(try box.deploy(box.spec(third)).failure == nil)
        #expect(!FileManager.default.fileExists(atPath: box.installed("/srv/app/css")))
        let fourth = try box.revision(
            ["appspec.yml": staticAppSpec, "other/x.html": "x"].merging([
                "appspec.yml": staticAppSpec.replacingOccurrences(of: "source: site", with: "source: other")
            ]) { _, new in new })
        #expect(try box.deploy(box.spec(fourth)).failure == nil)
        #expect(!FileManager.default.fileExists(atPath: box.installed("/srv/app/index.html")))
    }

    @Test func maxRevisionsKeepsTheLastSuccessfulEvenAfterFailures() throws {
        let box = try Sandbox()
        let good = try box.revision(["appspec.yml": staticAppSpec, "site/index.html": "good"])
        let goodSpec = box.spec(good, id: "d-GOOD00000")
        #expect(try box.deploy(goodSpec, maxRevisions: 2).failure == nil)
        let bad = try box.revision([
            "appspec.yml": staticAppSpec + "\nhooks:\n  BeforeInstall:\n    - location: fail.sh\n", "site/index.html": "bad",
            "fail.sh": "#!/bin/sh\nexit 1\n",
        ])
        for i in 0..<4 {
            let results = try box.deploy(box.spec(bad, id: "d-BAD0000\(i)0"), maxRevisions: 2)
            #expect(results.failure?.name == "BeforeInstall")
        }
        let kept = try FileManager.default.contentsOfDirectory(atPath: box.root.groupDirectory("group-id")).sorted()
        #expect(kept.contains("d-GOOD00000"), "the last successful revision survives: \(kept)")
        #expect(kept.count <= 3)
        #expect(kept.contains("d-BAD000030"))
    }
}

@Suite(.serialized) struct HookTests {
    @Test func hooksSeeTheirEnvironmentAndRunFromTheArchiveRoot() throws {
        let box = try Sandbox()
        let out = box.path + "/env.txt"
        let rev = try box.revision([
            "appspec.yml": "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: env.sh\n",
            "env.sh":
                "echo \"$LIFECYCLE_EVENT $DEPLOYMENT_ID $APPLICATION_NAME $DEPLOYMENT_GROUP_NAME $DEPLOYMENT_GROUP_ID $DEPLOYCTL_INSTALL_ROOT $(pwd)\" > \(out)\n",
        ])
        let spec = box.spec(rev, id: "d-ENV000000")
        #expect(try box.deploy(spec).failure == nil)
        let archive = box.root.archiveDirectory(group: "group-id", deployment: "d-ENV000000")
        #expect(
            try String(contentsOfFile: out, encoding: .utf8)
                == "AfterInstall d-ENV000000 app group group-id \(box.installRoot) \(archive)\n")
    }

    @Test func aNonExecutableScriptIsMadeExecutable() throws {
        let box = try Sandbox()
        let rev = try box.revision([
            "appspec.yml": "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: plain\n", "plain": "#!/bin/sh\necho ran\n",
        ])
        let results = try box.deploy(box.spec(rev))
        #expect(results.status("BeforeInstall") == .succeeded)
    }

    @Test func timeoutKillsTheWholeProcessGroup() throws {
        let box = try Sandbox()
        let pids = box.path + "/pids"
        let rev = try box.revision([
            "appspec.yml": "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: slow.sh\n      timeout: 1\n",
            "slow.sh": "#!/bin/sh\ntrap '' TERM\nsleep 120 &\necho $! > \(pids)\necho $$ >> \(pids)\nsleep 120\n",
        ])
        let start = Date()
        let results = try box.deploy(box.spec(rev))
        let failure = try #require(results.failure)
        #expect(failure.diagnostics?.code == .scriptTimedOut)
        #expect(failure.diagnostics?.message == "Script at specified location: slow.sh failed to complete in 1 seconds")
        #expect(Date().timeIntervalSince(start) < 10)
        // The script ignored SIGTERM, so SIGKILL followed after the grace period; neither it nor its child survive.
        usleep(200_000)
        for pid in try String(contentsOfFile: pids, encoding: .utf8).split(separator: "\n").compactMap({ pid_t($0) }) {
            // Gone, or a zombie waiting for a reaper (the container's init may not reap orphans).
            let state = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.split(separator: " ").dropFirst(2).first
            #expect(state == nil || state == "Z", "process \(pid) is still running (state \(state ?? ""))")
        }
    }

    /// A script that exits 0 on SIGTERM after its timeout, while a process it moved to its own session holds its
    /// output, ends as timed out once its output has had time to drain (it used to be waited for without end).
    @Test func aTimedOutScriptWhoseOutputIsHeldOutsideItsGroupStillEnds() throws {
        let box = try Sandbox()
        let rev = try box.revision([
            "appspec.yml": "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: slow.sh\n      timeout: 1\n",
            "slow.sh":
                "#!/bin/sh\ntrap 'exit 0' TERM\nsetsid sh -c \"trap '' TERM; exec sleep 60\" &\necho $! > \(box.path)/holder.pid\n"
                + "sleep 120 &\nwait $!\n",
        ])
        let start = Date()
        let results = try box.deploy(box.spec(rev))
        #expect(Date().timeIntervalSince(start) < 5)
        #expect(results.failure?.diagnostics?.code == .scriptTimedOut)
        let holder = (try? String(contentsOfFile: box.path + "/holder.pid", encoding: .utf8)) ?? ""
        if let pid = pid_t(holder.trimmingCharacters(in: .whitespacesAndNewlines)) { kill(pid, SIGKILL) }
    }

    /// AWS's outcome for a background child holding the script's output (issue 12): the event waits for it,
    /// naming it at once, succeeds when it closes the output before the timeout, and fails with OutputsLeftOpen at the
    /// timeout without killing it. Observed with the AWS agent 1.8.1.
    @Test func aBackgroundChildHoldingStdoutIsWaitedForUntilTheTimeout() throws {
        let box = try Sandbox()
        let short = try box.revision([
            "appspec.yml": "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: bg.sh\n      timeout: 60\n",
            "bg.sh": "#!/bin/sh\n( sleep 1; echo late ) &\necho started\n",
        ])
        var start = Date()
        let shortSpec = box.spec(short)
        let waited = try box.deploy(shortSpec)
        #expect(waited.failure == nil, "\(String(describing: waited.failure))")
        #expect(Date().timeIntervalSince(start) >= 0.9)
        let log = try String(
            contentsOfFile: box.root.scriptLog(group: shortSpec.deploymentGroupId, deployment: shortSpec.deploymentId), encoding: .utf8)
        #expect(log.contains("still holds its stdout and stderr: waiting until it closes it"), "\(log)")
        #expect(log.contains("PID "), "\(log)")
        #expect(log.contains("[stdout]late"), "what the child printed later is logged")

        let long = try box.revision([
            "appspec.yml": "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: bg.sh\n      timeout: 2\n",
            "bg.sh": "#!/bin/sh\nsleep 60 &\necho $! > \(box.path)/child.pid\necho started\n",
        ])
        start = Date()
        let results = try box.deploy(box.spec(long))
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(results.failure?.diagnostics?.code == .outputsLeftOpen)
        #expect(results.failure?.diagnostics?.message.contains("when the timeout of 2 s ended the wait") == true)
        let pid = try #require(
            pid_t(try String(contentsOfFile: box.path + "/child.pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(kill(pid, 0) == 0, "the holder must be left running")
        kill(pid, SIGKILL)

        // A child that redirects its output is not waited for.
        let good = try box.revision([
            "appspec.yml": "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: bg.sh\n",
            "bg.sh": "#!/bin/sh\nsleep 30 > /dev/null 2>&1 &\necho started\n",
        ])
        start = Date()
        #expect(try box.deploy(box.spec(good)).failure == nil)
        #expect(Date().timeIntervalSince(start) < 5)
    }

    @Test func failuresCarryTheLogTailAndStopTheEvent() throws {
        let box = try Sandbox()
        var script = "#!/bin/sh\n"
        for i in 0..<400 { script += "echo line-\(i)-padding-padding-padding\n" }
        script += "echo boom >&2\nexit 7\n"
        let rev = try box.revision([
            "appspec.yml": "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: a.sh\n    - location: never.sh\n",
            "a.sh": script, "never.sh": "#!/bin/sh\ntouch \(box.path)/never-ran\n",
        ])
        let spec = box.spec(rev)
        let results = try box.deploy(spec)
        let d = try #require(results.failure?.diagnostics)
        #expect(d.code == .scriptFailed)
        #expect(d.message == "Script at specified location: a.sh failed with exit code 7")
        #expect(d.logTail.count <= 2048)
        #expect(d.logTail.hasSuffix("[stderr]boom"))
        #expect(d.logTail.contains("line-399"))
        #expect(!d.logTail.contains("line-1-"))
        #expect(!FileManager.default.fileExists(atPath: box.path + "/never-ran"))
        // The whole output is in the log on disk, timestamped and prefixed.
        let log = try String(contentsOfFile: box.root.scriptLog(group: "group-id", deployment: spec.deploymentId), encoding: .utf8)
        #expect(log.contains(" [stdout]line-0-padding"))
        #expect(log.split(separator: "\n").filter { $0.contains("[stdout]line-") }.count == 400)
    }

    @Test func applicationStopRunsThePreviousRevisionAndItsFailureCanBeIgnored() throws {
        let box = try Sandbox()
        let marker = box.path + "/stopped-by"
        let v1 = try box.revision([
            "appspec.yml": "version: 0.0\nos: linux\nhooks:\n  ApplicationStop:\n    - location: stop.sh\n",
            "stop.sh": "#!/bin/sh\necho v1 > \(marker)\nexit 1\n",
        ])
        #expect(try box.deploy(box.spec(v1)).failure == nil)
        let v2 = try box.revision([
            "appspec.yml": "version: 0.0\nos: linux\nhooks:\n  ApplicationStop:\n    - location: stop.sh\n",
            "stop.sh": "#!/bin/sh\necho v2 > \(marker)\n",
        ])
        let failing = try box.deploy(box.spec(v2))
        #expect(failing.failure?.name == "ApplicationStop")
        #expect(try String(contentsOfFile: marker, encoding: .utf8) == "v1\n")
        let ignored = try box.deploy(box.spec(v2, ignoreStop: true))
        #expect(ignored.failure == nil)
        #expect(ignored.first { $0.name == "ApplicationStop" }?.ignoredFailure == true)
        #expect(ignored.status("ValidateService") == .succeeded)
        // Now v2 is the last good revision: its stop script runs next time.
        #expect(try box.deploy(box.spec(v2)).failure == nil)
        #expect(try String(contentsOfFile: marker, encoding: .utf8) == "v2\n")
    }

    @Test func eventsSubsetRunsOnlyThoseInLifecycleOrder() throws {
        let box = try Sandbox()
        let trace = box.path + "/trace"
        var hooks = "version: 0.0\nos: linux\nhooks:\n"
        var files: [String: String] = [:]
        for event in ["BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"] {
            hooks += "  \(event):\n    - location: \(event).sh\n"
            files["\(event).sh"] = "#!/bin/sh\necho \(event) >> \(trace)\n"
        }
        files["appspec.yml"] = hooks
        let rev = try box.revision(files)
        let results = try box.deploy(box.spec(rev, events: ["ValidateService", "DownloadBundle", "BeforeInstall"]))
        #expect(results.map(\.name) == ["DownloadBundle", "BeforeInstall", "ValidateService"])
        #expect(try String(contentsOfFile: trace, encoding: .utf8) == "BeforeInstall\nValidateService\n")
    }
}

@Suite(.serialized) struct RunAsTests {
    /// A real user and a supplementary group, created for the test and removed after.
    @Test func hooksRunAsTheRunasUserWithItsGroupsAndEnvironment() throws {
        guard geteuid() == 0 else {
            print("skipped: creating users and switching to them needs root")
            return
        }
        let suffix = String(UUID().uuidString.prefix(6)).lowercased()
        let user = "dctl-\(suffix)"
        let extra = "dctlx-\(suffix)"
        func sh(_ command: String) -> Int32 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", command]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            guard (try? p.run()) != nil else { return -1 }
            p.waitUntilExit()
            return p.terminationStatus
        }
        #expect(sh("groupadd \(extra) && useradd -M -d /home/\(user) -s /bin/sh -G \(extra) \(user)") == 0)
        defer { _ = sh("userdel \(user); groupdel \(extra)") }
        let box = try Sandbox()
        let out = box.path + "/who"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        chmod(out, 0o666)
        let rev = try box.revision([
            "appspec.yml": "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: who.sh\n      runas: \(user)\n",
            "who.sh": "#!/bin/sh\necho \"$(id -un) $(id -u) $(id -g) $(id -Gn | tr ' ' ',') $HOME $USER $LOGNAME\" > \(out)\n",
        ])
        let results = try box.deploy(box.spec(rev))
        #expect(results.failure == nil, "\(String(describing: results.failure?.diagnostics))")
        let entry = try #require(RunAsUser.lookup(user))
        let groups = try String(contentsOfFile: out, encoding: .utf8).split(separator: " ")
        #expect(groups.count == 7)
        #expect(groups[0] == Substring(user))
        #expect(groups[1] == Substring(String(entry.uid)))
        #expect(groups[2] == Substring(String(entry.gid)))
        #expect(groups[3].split(separator: ",").contains(Substring(extra)))
        #expect(groups[4] == "/home/\(user)")
        #expect(groups[5] == Substring(user) && groups[6].hasPrefix(user))
    }

    @Test func anUnknownRunasUserIsAClearError() throws {
        let box = try Sandbox()
        let rev = try box.revision([
            "appspec.yml": "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: a.sh\n      runas: no-such-user-here\n",
            "a.sh": "#!/bin/sh\n",
        ])
        let d = try #require(try box.deploy(box.spec(rev)).failure?.diagnostics)
        #expect(d.message.contains("the user 'no-such-user-here' does not exist on this host"))
    }
}

@Suite(.serialized) struct PreflightTests {
    @Test func reportsWhatWouldRunAndWhatWouldStopItWithoutChangingAnything() throws {
        let box = try Sandbox()
        let v1 = try box.revision([
            "appspec.yml": staticAppSpec
                + "\nhooks:\n  ApplicationStop:\n    - location: stop.sh\n      runas: nobody-here-\(UInt16.random(in: 0...9999))\n",
            "site/index.html": "v1", "stop.sh": "#!/bin/sh\n",
        ])
        #expect(try box.deploy(box.spec(v1, id: "d-FIRST0000")).failure == nil)
        try Data("not ours".utf8).write(to: URL(fileURLWithPath: box.installed("/srv/app/foreign.html")))
        let v2 = try box.revision([
            "appspec.yml": staticAppSpec + "\nhooks:\n  AfterInstall:\n    - location: missing.sh\n", "site/index.html": "v2",
            "site/foreign.html": "clash",
        ])
        let before = try FileManager.default.contentsOfDirectory(atPath: box.root.groupDirectory("group-id"))
        let report = box.engine().preflight(box.spec(v2))
        #expect(!report.ok)
        let stop = try #require(report.events.first { $0.name == "ApplicationStop" })
        #expect(stop.action == "run")
        #expect(stop.scripts == ["stop.sh"])
        #expect(stop.revisionDirectory?.hasSuffix("/d-FIRST0000") == true)
        #expect(report.problems.contains { $0.contains("runs as 'nobody-here-") && $0.contains("does not exist") })
        #expect(report.problems.contains { $0.contains("AfterInstall: the script missing.sh is not in the revision") })
        #expect(report.problems.contains { $0 == "\(box.installed("/srv/app/foreign.html")) exists and is not ours (file_exists_behavior DISALLOW)" })
        // index.html was installed by the previous revision: it is ours, not a conflict.
        #expect(!report.problems.contains { $0.contains("index.html") })
        #expect(report.filesToInstall == 2)
        #expect(try FileManager.default.contentsOfDirectory(atPath: box.root.groupDirectory("group-id")) == before)
        #expect(try String(contentsOfFile: box.installed("/srv/app/index.html"), encoding: .utf8) == "v1")

        let relaxed = box.engine().preflight(box.spec(v2, behavior: .overwrite))
        #expect(!relaxed.problems.contains { $0.contains("foreign.html") })
        #expect(relaxed.notes.contains { $0.contains("foreign.html exists and would be overwritten") })
    }
}

/// The deployments log rotates at its cap and keeps two older files: at most three caps on disk.
@Suite struct DeploymentsLogTests {
    @Test func rotatesAtItsCap() throws {
        let box = try Sandbox()
        let log = DeploymentsLog(root: box.root, maxBytes: 1000)
        for index in 0..<200 {
            log.append(Array("2026-11-30 12:00:00 [stdout]line \(index)\n".utf8)[...], deployment: "d-ABC", event: "AfterInstall")
        }
        let sizes = try ["", ".1", ".2"].map { try FileManager.default.attributesOfItem(atPath: log.path + $0)[.size] as? Int ?? 0 }
        #expect(sizes.allSatisfy { $0 > 0 && $0 <= 1000 }, "\(sizes)")
        #expect(!FileManager.default.fileExists(atPath: log.path + ".3"))
        let newest = try String(contentsOfFile: log.path, encoding: .utf8)
        #expect(newest.hasSuffix("[d-ABC] [AfterInstall] 2026-11-30 12:00:00 [stdout]line 199\n"))
    }
}
