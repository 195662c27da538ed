import Foundation
import Testing

@Suite(.serialized) struct LocalCommandTests {
    static let apps = CrashConsistencyTests.fixtures.appendingPathComponent("apps").path

    func local(_ cli: Deployctl, _ arguments: [String]) throws -> Deployctl.Result {
        try cli.run(
            [
                "local", "--agent-root", cli.directory.appendingPathComponent("root").path, "--install-root",
                cli.directory.appendingPathComponent("hosts/a").path,
            ]
                + arguments, withState: false)
    }

    @Test func staticSiteInstallsFromADirectoryAndFromEachBundleType() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let first = try local(cli, ["--bundle-location", Self.apps + "/static-site"])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        #expect(first.stdout.contains("  AfterInstall        Succeeded"))
        #expect(first.stdout.contains("Deployment succeeded"))
        let page = cli.directory.appendingPathComponent("hosts/a/var/www/static-site/index.html").path
        #expect(FileManager.default.fileExists(atPath: page))
        let mode = try FileManager.default.attributesOfItem(atPath: page)[.posixPermissions] as? Int
        #expect(mode == 0o644)
        for type in ["zip", "tgz", "tar"] {
            let bundle = cli.directory.appendingPathComponent("site.\(type)").path
            try cli.run(["bundle", "create", "--source", Self.apps + "/static-site", "--bundle", bundle, "--bundle-type", type], withState: false)
            let redeploy = try local(cli, ["--bundle-location", bundle, "--type", type, "--output", "json"])
            #expect(redeploy.status == 0, "\(type): \(redeploy.stdout)")
            let document = try #require(try JSONSerialization.jsonObject(with: Data(redeploy.stdout.utf8)) as? [String: Any])
            #expect(document["status"] as? String == "Succeeded")
            let events = try #require(document["events"] as? [[String: Any]])
            #expect(
                events.map { $0["lifecycleEventName"] as? String } == [
                    "BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic", "ApplicationStop", "DownloadBundle", "BeforeInstall", "Install",
                    "AfterInstall", "ApplicationStart", "ValidateService", "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic",
                ])
            #expect(events.first { $0["lifecycleEventName"] as? String == "ApplicationStop" }?["status"] as? String == "Succeeded")
        }
    }

    @Test func loopbackServiceIsStartedValidatedAndStoppedByTheNextDeployment() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        var environment = ProcessInfo.processInfo.environment
        let port = 20000 + Int.random(in: 0..<20000)
        environment["SERVICE_PORT"] = String(port)
        setenv("SERVICE_PORT", String(port), 1)
        defer { unsetenv("SERVICE_PORT") }
        let first = try local(cli, ["--bundle-location", Self.apps + "/loopback-service", "--hook-env", "SERVICE_PORT"])
        #expect(first.status == 0, "\(first.stdout)")
        let pidFile = cli.directory.appendingPathComponent("hosts/a/opt/loopback-service/server.pid").path
        let pid = try #require(Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(kill(pid, 0) == 0)
        let second = try local(cli, ["--bundle-location", Self.apps + "/loopback-service", "--hook-env", "SERVICE_PORT"])
        #expect(second.status == 0, "\(second.stdout)")
        // The redeploy's ApplicationStop stopped the first server; its ApplicationStart started a new one.
        usleep(300_000)
        let state = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.split(separator: " ").dropFirst(2).first
        #expect(state == nil || state == "Z")
        let newPid = try #require(Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(newPid != pid)
        kill(newPid, SIGTERM)
    }

    @Test func eachFailureModeOfTheFailingHooksApp() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let app = Self.apps + "/failing-hooks"
        let cases: [(String, String)] = [
            ("BeforeInstall", "ScriptFailed in scripts/exit.sh: Script at specified location: scripts/exit.sh failed with exit code 3"),
            ("AfterInstall", "ScriptTimedOut in scripts/sleep.sh: Script at specified location: scripts/sleep.sh failed to complete in 2 seconds"),
            ("ApplicationStart", "ScriptMissing in scripts/not-there.sh: Script does not exist at specified location:"),
            ("ValidateService", "OutputsLeftOpen in scripts/background.sh:"),
        ]
        for (event, message) in cases {
            let start = Date()
            let result = try local(cli, ["--bundle-location", app, "--events", "DownloadBundle,\(event)"])
            #expect(result.status == 1, "\(event)")
            #expect(result.stdout.contains(message), "\(event): \(result.stdout)")
            #expect(result.stdout.contains("Deployment failed at \(event)."))
            #expect(Date().timeIntervalSince(start) < 15, "\(event) took too long")
        }
        #expect(try local(cli, ["--bundle-location", app, "--events", "DownloadBundle,Install"]).status == 0)
        let stop = try local(cli, ["--bundle-location", app, "--events", "ApplicationStop,DownloadBundle"])
        #expect(stop.status == 1)
        #expect(stop.stdout.contains("the user 'no-such-user-deployctl' does not exist on this host"))
        let ignored = try local(cli, ["--bundle-location", app, "--events", "ApplicationStop,DownloadBundle", "--ignore-application-stop-failures"])
        #expect(ignored.status == 0, "\(ignored.stdout)")
        #expect(ignored.stdout.contains("failure ignored"))
    }

    @Test func aScriptPrintingOneGigabyteKeepsMemoryBounded() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        var disk = statvfs()
        if statvfs(cli.directory.path, &disk) == 0, Int64(disk.f_bavail) * Int64(disk.f_frsize) < 3 << 30 {
            print("skipped: less than 3 GiB free for the 1 GiB script log")
            return
        }
        let app = cli.directory.appendingPathComponent("loud").path
        try FileManager.default.createDirectory(atPath: app, withIntermediateDirectories: true)
        try Data("version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: loud.sh\n      timeout: 600\n".utf8).write(
            to: URL(fileURLWithPath: app + "/appspec.yml"))
        try Data("#!/bin/sh\nhead -c 1073741824 /dev/zero | tr '\\\\0' 'x'\necho\necho done\n".utf8).write(to: URL(fileURLWithPath: app + "/loud.sh"))
        chmod(app + "/loud.sh", 0o755)
        // Python reports the child's peak resident memory (ru_maxrss, KiB).
        let root = cli.directory.appendingPathComponent("root").path
        let script = """
            import resource, subprocess, sys
            r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
            print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
            """
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c", script, Deployctl.binary, "local", "--bundle-location", app, "--agent-root", root, "--output", "json"]
        let out = Pipe()
        python.standardOutput = out
        try python.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        python.waitUntilExit()
        let fields = text.split(separator: " ").map { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1 }
        #expect(fields.first == 0, "deployctl local failed: \(text)")
        let peakMiB = (fields.last ?? -1) / 1024
        #expect(peakMiB > 0 && peakMiB < 64, "peak RSS \(peakMiB) MiB for 1 GiB of output")
        // The log keeps its cap (64 MiB by default): the head in scripts.log, the most recent output in the tail files.
        let logs = (FileManager.default.enumerator(atPath: root)?.allObjects as? [String] ?? []).filter { $0.hasSuffix("scripts.log") }
        let log = try #require(logs.first.map { root + "/" + $0 })
        var total = 0
        for file in [log, log + ".tail", log + ".tail.1"] {
            total += try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int ?? 0
        }
        #expect(total > 48 << 20 && total <= (64 << 20) + 4096, "\(total) bytes of log")
        let last = try String(contentsOfFile: log + ".tail", encoding: .utf8)
        #expect(last.hasSuffix("[stdout]done\n"))
        #expect(last.contains("bytes of output were dropped before this point (log cap 67108864 bytes)"))
        for file in [log, log + ".tail", log + ".tail.1", log + ".dropped"] { try? FileManager.default.removeItem(atPath: file) }
    }

    @Test func badInputIsAClearErrorAndChangesNothing() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let missing = try local(cli, ["--bundle-location", "/nonexistent/bundle.zip"])
        #expect(missing.status == 252)
        #expect(missing.stderr.contains("does not exist"))
        let typo = try local(cli, ["--bundle-location", Self.apps + "/static-site", "--events", "AfterInstal"])
        #expect(typo.status == 252)
        #expect(typo.stderr.contains("did you mean 'AfterInstall'?"))
        let wrongType = try local(cli, ["--bundle-location", Self.apps + "/static-site", "--type", "zip"])
        #expect(wrongType.status == 252)
        let preflight = try local(cli, ["--bundle-location", Self.apps + "/failing-hooks", "--preflight"])
        #expect(preflight.status == 1)
        #expect(preflight.stdout.contains("problem: ApplicationStart: the script scripts/not-there.sh is not in the revision"))
        #expect(preflight.stdout.contains("  AfterInstall        run    scripts/sleep.sh"))
        let clean = try local(cli, ["--bundle-location", Self.apps + "/static-site", "--preflight", "--output", "json"])
        #expect(clean.status == 0, "\(clean.stdout)")
        #expect(clean.stdout.contains("\"ok\": true"))
        #expect(!FileManager.default.fileExists(atPath: cli.directory.appendingPathComponent("root").path))
    }
}
