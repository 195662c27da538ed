import Foundation
import Testing

/// The state file and the CLI's input under stress (issue 9, items 8, 9, 14, 16–19): readers never wait for
/// writers, a stuck writer is named, agents notice a replaced file and never run twice for one instance, private
/// files stay private, and bad input is refused with the member or path named.
@Suite(.serialized) struct StateFileHardeningTests {
    /// Starts a background process; its output goes to files in `directory`.
    static func start(_ arguments: [String], in directory: String, name: String, environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Deployctl.binary)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { _, new in new }
        process.environment = env
        _ = FileManager.default.createFile(atPath: directory + "/\(name).err", contents: nil)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/\(name).err"))
        try process.run()
        return process
    }

    static func wait(_ process: Process, upTo seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline { usleep(50_000) }
        return !process.isRunning
    }

    /// A Python process that holds a write transaction on the state file until it is told to stop.
    static func holdWriteLock(_ path: String, seconds: Int) throws -> Process {
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = [
            "python3", "-c",
            "import sqlite3, sys, time\nc = sqlite3.connect(sys.argv[1], isolation_level=None)\nc.execute('BEGIN IMMEDIATE')\nc.execute('UPDATE applications SET name = name')\nprint('locked', flush=True)\ntime.sleep(\(seconds))\nc.execute('COMMIT')",
            path,
        ]
        let out = Pipe()
        python.standardOutput = out
        try python.run()
        _ = out.fileHandleForReading.availableData
        return python
    }

    @Test func readersNeverWaitForAWriterAndAStuckWriterIsNamed() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        #expect(try cli.run(["create-application", "--application-name", "web"]).status == 0)
        let holder = try Self.holdWriteLock(cli.statePath, seconds: 8)
        defer {
            kill(holder.processIdentifier, SIGKILL)
            holder.waitUntilExit()
        }
        for arguments in [["list-applications"], ["get-application", "--application-name", "web"], ["list-deployment-configs"]] {
            let start = Date()
            let read = try cli.run(arguments)
            #expect(read.status == 0, "\(arguments): \(read.stderr)")
            #expect(Date().timeIntervalSince(start) < 2, "\(arguments) waited for the writer")
        }
        let start = Date()
        let write = try cli.run(["create-application", "--application-name", "api"], environment: ["DEPLOYCTL_LOCK_TIMEOUT": "1"])
        #expect(write.status == 255)
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(write.stderr.contains("stayed locked for 1 s by pid \(holder.processIdentifier) ("), "\(write.stderr)")
        #expect(write.stderr.contains("python3"), "\(write.stderr)")
        #expect(!write.stderr.contains("cannot open the state file"))
    }

    @Test func aReaderWithoutWritePermissionIsToldWhatIsWrong() throws {
        guard geteuid() == 0 else {
            print("skipped: switching to another user needs root")
            return
        }
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        #expect(try cli.run(["create-application", "--application-name", "web"]).status == 0)
        chmod(cli.directory.path, 0o755)
        for (mode, message) in [
            (0o644, "is read-only for this user (uid 65534)"), (0o600, "cannot be read by this user (uid 65534): permission denied"),
        ] {
            chmod(cli.statePath, mode_t(mode))
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", Deployctl.binary, "list-applications", "--state", cli.statePath]
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 255)
            #expect(text.contains(message), "mode \(String(mode, radix: 8)): \(text)")
            #expect(!text.contains("cannot create the state file"))
        }
    }

    @Test func anAgentWhoseStateFileIsReplacedOrDeletedStopsWithAClearMessage() throws {
        for how in ["deleted", "replaced"] {
            let cli = try Deployctl()
            defer { cli.cleanUp() }
            #expect(try cli.run(["register-on-premises-instance", "--instance-name", "web-1"]).status == 0)
            let agent = try Self.start(
                [
                    "agent", "run", "--instance-name", "web-1", "--state", cli.statePath, "--agent-root", cli.directory.path + "/root",
                    "--poll-interval", "0.2",
                ], in: cli.directory.path, name: "agent")
            usleep(700_000)
            #expect(agent.isRunning)
            if how == "deleted" {
                try FileManager.default.removeItem(atPath: cli.statePath)
            } else {
                try FileManager.default.moveItem(atPath: cli.statePath, toPath: cli.statePath + ".old")
                try Data().write(to: URL(fileURLWithPath: cli.statePath))
            }
            #expect(Self.wait(agent, upTo: 5), "the agent kept polling a \(how) state file")
            if agent.isRunning { agent.terminate() }
            agent.waitUntilExit()
            let text = try String(contentsOfFile: cli.directory.path + "/agent.err", encoding: .utf8)
            #expect(agent.terminationStatus == 255)
            #expect(text.contains("was \(how == "deleted" ? "deleted or renamed" : "replaced by another file") while in use"), "\(text)")
        }
    }

    @Test func aSecondAgentForTheSameInstanceIsRefusedAndADeadOnesLeaseIsTakenOver() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        #expect(try cli.run(["register-on-premises-instance", "--instance-name", "web-1"]).status == 0)
        let arguments = [
            "agent", "run", "--instance-name", "web-1", "--state", cli.statePath, "--agent-root", cli.directory.path + "/root",
            "--poll-interval", "0.2",
        ]
        let first = try Self.start(arguments, in: cli.directory.path, name: "first")
        usleep(700_000)
        let second = try cli.run(arguments, withState: false)
        #expect(second.status == 255)
        #expect(
            second.stderr.contains("Another agent (pid \(first.processIdentifier) on ")
                && second.stderr.contains("already deploys to the instance web-1"),
            "\(second.stderr)")
        #expect(!second.stderr.contains("appspec"))
        // Killed without a chance to give the lease back: the next agent takes it over at once.
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        let third = try Self.start(arguments, in: cli.directory.path, name: "third")
        usleep(700_000)
        let thirdLog = (try? String(contentsOfFile: cli.directory.path + "/third.err", encoding: .utf8)) ?? ""
        #expect(third.isRunning, "\(thirdLog)")
        third.terminate()
        #expect(Self.wait(third, upTo: 5))
        #expect(third.terminationStatus == 0)
        // Stopped cleanly, it gave the lease back: --once works at once.
        let once = try cli.run(arguments + ["--once"], withState: false)
        #expect(once.status == 0, "\(once.stderr)")
    }

    @Test func artifactsArePrivateEvenInAnExistingDirectory() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        chmod(cli.directory.path, 0o755)
        try FileManager.default.createDirectory(atPath: cli.directory.path + "/artifacts", withIntermediateDirectories: false)
        chmod(cli.directory.path + "/artifacts", 0o755)
        #expect(try cli.run(["create-application", "--application-name", "site"]).status == 0)
        let push = try cli.run([
            "push", "--application-name", "site", "--s3-location", "s3://releases/site/v1.zip", "--source", LocalCommandTests.apps + "/static-site",
        ])
        #expect(push.status == 0, "\(push.stderr)")
        let root = cli.directory.path + "/artifacts"
        var checked = 0
        for relative in [""] + (FileManager.default.enumerator(atPath: root)?.allObjects as? [String] ?? []) {
            let path = relative.isEmpty ? root : root + "/" + relative
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            let isDirectory = info.st_mode & S_IFMT == S_IFDIR
            #expect(info.st_mode & 0o777 == (isDirectory ? 0o700 : 0o600), "\(relative): \(String(info.st_mode & 0o777, radix: 8))")
            checked += 1
        }
        #expect(checked >= 6)
    }

    @Test(arguments: [
        (
            ["create-application", "--cli-input-json", "{\"applicationName\": 5}"],
            "Invalid type for parameter applicationName: expected string, got number 5"
        ),
        (
            ["register-on-premises-instance", "--instance-name", "web-1", "--cli-input-json", "{\"iamUserArn\": true}"],
            "expected string, got boolean true"
        ),
        (
            ["add-tags-to-on-premises-instances", "--instance-names", "a", "--tags", "{\"Key\":5}"],
            "Invalid type for parameter tags[0].Key: expected string"
        ),
        (["create-application", "--cli-input-json", "file:///dev/zero"], "cannot read /dev/zero: it is larger than 10485760 bytes"),
        (["create-application", "--cli-input-json", "file:///tmp"], "cannot read /tmp: it is a directory, not a file"),
        (["create-application", "--cli-input-json", "file:///nonexistent/x.json"], "cannot read /nonexistent/x.json: no such file or directory"),
    ])
    func wrongTypesAndUnreadableInputAreRefusedNamingTheMemberOrPath(arguments: [String], message: String) throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let result = try cli.run(arguments)
        #expect(result.status == 252, "\(result.stderr)")
        #expect(result.stderr.contains(message), "\(result.stderr)")
        #expect(try cli.run(["list-applications"]).stdout.contains("\"applications\": []"))
    }

    @Test func invalidUTF8IsRefusedNotStoredAsReplacementCharacters() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        try Data("{\"applicationName\": \"caf".utf8 + [0xE9] + "\"}".utf8).write(to: URL(fileURLWithPath: cli.directory.path + "/bad.json"))
        let file = try cli.run(["create-application", "--cli-input-json", "file://" + cli.directory.path + "/bad.json"])
        #expect(file.status == 252)
        #expect(file.stderr.contains("it is not UTF-8 text"), "\(file.stderr)")
        // An argument with invalid UTF-8, passed as raw bytes (Foundation's Process cannot), through the shell.
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = [
            "-c", "exec \"$0\" create-application --application-name \"$(printf 'caf\\351')\" --state \"$1\"", Deployctl.binary, cli.statePath,
        ]
        let errors = Pipe()
        shell.standardError = errors
        try shell.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        shell.waitUntilExit()
        #expect(shell.terminationStatus == 252)
        #expect(text.contains("the value of --application-name is not valid UTF-8 text"), "\(text)")
        #expect(try cli.run(["list-applications"]).stdout.contains("\"applications\": []"))
    }

    @Test func controlCharactersAreRefusedInNamesAndEscapedOnOutput() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let evil = "web\u{1B}[2J\u{1B}]0;owned\u{07}"
        for arguments in [
            ["create-application", "--application-name", evil],
            ["create-deployment-config", "--deployment-config-name", "c\u{1B}x", "--minimum-healthy-hosts", "type=HOST_COUNT,value=0"],
        ] {
            let result = try cli.run(arguments)
            #expect(result.status == 254, "\(arguments)")
            #expect(result.stderr.contains("contains the control character U+001B"), "\(result.stderr)")
            #expect(!result.stderr.contains("\u{1B}"))
        }
        // Free text (a tag value) may hold them; text and table output show them escaped, JSON escapes them as JSON does.
        #expect(try cli.run(["register-on-premises-instance", "--instance-name", "web-1"]).status == 0)
        #expect(try cli.run(["add-tags-to-on-premises-instances", "--instance-names", "web-1", "--tags", "Key=k,Value=a\u{1B}[31mred"]).status == 0)
        for format in ["text", "table"] {
            let shown = try cli.run(["get-on-premises-instance", "--instance-name", "web-1", "--output", format])
            #expect(shown.status == 0)
            #expect(!shown.stdout.contains("\u{1B}"), "\(format) printed a raw escape")
            #expect(shown.stdout.contains("a\\x1b[31mred"), "\(format): \(shown.stdout)")
        }
        // A 120 KB value is not echoed back whole.
        let long = try cli.run(["get-deployment", "--deployment-id", String(repeating: "x", count: 120_000)])
        #expect(long.status == 254)
        #expect(long.stderr.count < 3000, "\(long.stderr.count) characters of error")
    }
}
