import Foundation
import Testing

/// What hooks see and how long they live (issue 9, items 11–13): a clean environment without the agent's secrets,
/// every descendant killed at a timeout (also those that left the process group), and no hook left running
/// unsupervised when deployctl itself is killed.
@Suite(.serialized) struct HookSupervisionTests {
    static func shell(_ command: String) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Alive and not a zombie.
    static func running(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        return stat[stat.index(after: close)...].split(separator: " ").first != "Z"
    }

    static func pid(_ file: String, waiting seconds: Double = 10) -> pid_t? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let text = try? String(contentsOfFile: file, encoding: .utf8), let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                return pid
            }
            usleep(50_000)
        }
        return nil
    }

    static func environment(of file: String) throws -> [String: String] {
        var result: [String: String] = [:]
        for line in try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            result[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return result
    }

    @Test func hooksStartFromACleanEnvironment() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let base = cli.directory.path
        try ConfinementTests.revision(
            base + "/rev", appspec: "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: env.sh\n",
            files: ["env.sh": "#!/bin/sh\nenv > \(base)/env.txt\n"])
        let secrets = [
            "AWS_SECRET_ACCESS_KEY": "s3cr3t", "DB_PASSWORD": "hunter2", "PYTHONPATH": "/tmp/evil", "DEPLOYCTL_STATE": "/var/lib/x.db",
            "LD_PRELOAD": "/tmp/evil.so", "PATH": "/tmp/evil-bin:/usr/bin:/bin", "OPERATOR_FLAG": "passed", "LANG": "C.UTF-8",
        ]
        let result = try cli.run(
            ["local", "--bundle-location", base + "/rev", "--agent-root", base + "/root", "--hook-env", "OPERATOR_FLAG"], withState: false,
            environment: secrets)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let seen = try Self.environment(of: base + "/env.txt")
        for name in ["AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "PYTHONPATH", "DEPLOYCTL_STATE", "LD_PRELOAD", "DEPLOYCTL_INSTALL_ROOT"] {
            #expect(seen[name] == nil, "\(name) reached the hook")
        }
        #expect(!seen.values.contains { $0.contains("s3cr3t") || $0.contains("hunter2") })
        #expect(seen["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        #expect(seen["OPERATOR_FLAG"] == "passed")
        #expect(seen["LANG"] == "C.UTF-8")
        #expect(seen["LIFECYCLE_EVENT"] == "BeforeInstall")
        #expect(seen["DEPLOYMENT_GROUP_NAME"] == "LocalFleet")
        #expect(seen["DEPLOYMENT_ID"]?.hasPrefix("d-") == true)
        #expect(seen["HOME"] != nil && seen["USER"] != nil)
        // With an install root, hooks are told where it is.
        let rooted = try cli.run(
            ["local", "--bundle-location", base + "/rev", "--agent-root", base + "/root", "--install-root", base + "/host"], withState: false)
        #expect(rooted.status == 0)
        #expect(try Self.environment(of: base + "/env.txt")["DEPLOYCTL_INSTALL_ROOT"] == base + "/host")
        let bad = try cli.run(["local", "--bundle-location", base + "/rev", "--hook-env", "A=B"], withState: false)
        #expect(bad.status == 252)
        #expect(bad.stderr.contains("--hook-env takes a variable name"))
    }

    @Test func aRunasHookGetsTheTargetUsersIdentityAndNothingElse() throws {
        guard geteuid() == 0 else {
            print("skipped: runas needs root")
            return
        }
        let user = "dctl-env\(Int.random(in: 1000...9999))"
        #expect(Self.shell("useradd -M -d /home/\(user) -s /bin/sh \(user)") == 0)
        defer { _ = Self.shell("userdel \(user)") }
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let base = cli.directory.path
        chmod(base, 0o777)
        try ConfinementTests.revision(
            base + "/rev", appspec: "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: env.sh\n      runas: \(user)\n",
            files: ["env.sh": "#!/bin/sh\nenv > \(base)/env.txt\n"])
        let result = try cli.run(
            ["local", "--bundle-location", base + "/rev", "--agent-root", base + "/root"], withState: false,
            environment: ["AWS_SECRET_ACCESS_KEY": "s3cr3t"])
        #expect(result.status == 0, "\(result.stdout)")
        let seen = try Self.environment(of: base + "/env.txt")
        #expect(seen["HOME"] == "/home/\(user)")
        #expect(seen["USER"] == user && seen["LOGNAME"] == user)
        #expect(seen["SHELL"] == "/bin/sh")
        #expect(seen["AWS_SECRET_ACCESS_KEY"] == nil)
    }

    /// At a timeout every process the hook started goes: in its group, in a new session (setsid) and in a new
    /// process group of the same session. A service an earlier hook daemonized survives.
    @Test func aTimeoutKillsEveryDescendantButNotAnEarlierHooksService() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let base = cli.directory.path
        let daemonize = "setsid sh -c 'echo $$ > \(base)/service.pid; exec sleep 300' > /dev/null 2>&1 < /dev/null &\n"
        let hang = """
            #!/bin/sh
            setsid sh -c 'echo $$ > \(base)/setsid.pid; exec sleep 300' > /dev/null 2>&1 < /dev/null &
            python3 -c 'import os, time; os.setpgid(0, 0); open("\(base)/pgid.pid", "w").write(str(os.getpid())); time.sleep(300)' > /dev/null 2>&1 &
            sleep 300 &
            echo $! > \(base)/group.pid
            sleep 300

            """
        try ConfinementTests.revision(
            base + "/rev",
            appspec: """
                version: 0.0
                os: linux
                hooks:
                  BeforeInstall:
                    - location: service.sh
                  AfterInstall:
                    - location: hang.sh
                      timeout: 2
                """, files: ["service.sh": "#!/bin/sh\n" + daemonize, "hang.sh": hang])
        let result = try cli.run(["local", "--bundle-location", base + "/rev", "--agent-root", base + "/root"], withState: false)
        let service = Self.pid(base + "/service.pid")
        defer { if let service { kill(service, SIGKILL) } }
        #expect(result.status == 1)
        #expect(result.stdout.contains("ScriptTimedOut"), "\(result.stdout)")
        usleep(300_000)
        for name in ["setsid", "pgid", "group"] {
            let pid = try #require(Self.pid(base + "/\(name).pid", waiting: 1), "\(name).pid was not written")
            #expect(!Self.running(pid), "the \(name) process \(pid) outlived the timeout")
            if Self.running(pid) { kill(pid, SIGKILL) }
        }
        #expect(service.map(Self.running) == true, "a service an earlier hook daemonized was killed")
        let log = try String(contentsOfFile: try #require(ScriptLogTests.logFiles(base + "/root").first), encoding: .utf8)
        #expect(log.contains("also sent SIGTERM to processes of the script outside its process group:"), "\(log)")
    }

    /// `kill -9` of deployctl: the running hook's process group dies with it; what the hook deliberately
    /// daemonized (its own session, output redirected) lives on.
    @Test func aHookDiesWithDeployctlUnlessItDaemonized() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let base = cli.directory.path
        let script = """
            #!/bin/sh
            echo $$ > \(base)/hook.pid
            setsid sh -c 'echo $$ > \(base)/daemon.pid; exec sleep 300' > /dev/null 2>&1 < /dev/null &
            sleep 300 &
            echo $! > \(base)/child.pid
            wait

            """
        try ConfinementTests.revision(
            base + "/rev", appspec: "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: run.sh\n      timeout: 600\n",
            files: ["run.sh": script])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Deployctl.binary)
        process.arguments = ["local", "--bundle-location", base + "/rev", "--agent-root", base + "/root"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let hook = try #require(Self.pid(base + "/hook.pid"))
        let child = try #require(Self.pid(base + "/child.pid"))
        let daemon = try #require(Self.pid(base + "/daemon.pid"))
        defer { kill(daemon, SIGKILL) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline, Self.running(hook) || Self.running(child) { usleep(50_000) }
        #expect(!Self.running(hook), "the hook outlived deployctl")
        #expect(!Self.running(child), "the hook's child outlived deployctl")
        #expect(Self.running(daemon), "a deliberately daemonized process was killed")
        for pid in [hook, child] where Self.running(pid) { kill(pid, SIGKILL) }
    }
}
