import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Three instances, three `deployctl agent run` processes on this host (separate roots), one group.
final class Fleet {
    let cli: Deployctl
    let hosts = ["web-1", "web-2", "web-3"]
    var agents: [String: Process] = [:]

    init() throws {
        cli = try Deployctl()
        try cli.run(["create-application", "--application-name", "shop"])
        for host in hosts {
            try cli.run(["register-on-premises-instance", "--instance-name", host])
            try cli.run(["add-tags-to-on-premises-instances", "--instance-names", host, "--tags", "Key=role,Value=web", "Key=name,Value=\(host)"])
        }
        try cli.run([
            "create-deployment-group", "--application-name", "shop", "--deployment-group-name", "web",
            "--on-premises-instance-tag-filters", "Key=role,Value=web,Type=KEY_AND_VALUE",
        ])
    }

    deinit {
        for process in agents.values where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        cli.cleanUp()
    }

    func root(_ host: String) -> String { cli.directory.appendingPathComponent("\(host)/agent-root").path }
    func installRoot(_ host: String) -> String { cli.directory.appendingPathComponent("\(host)/host").path }

    func startAgent(_ host: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: BuiltBinary.path)
        process.arguments = [
            "agent", "run", "--instance-name", host, "--agent-root", root(host), "--install-root", installRoot(host), "--poll-interval", "0.1",
            "--state", cli.statePath,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        agents[host] = process
    }

    func startAgents() throws { for host in hosts { try startAgent(host) } }

    func stopAgents() {
        for process in agents.values where process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        agents = [:]
    }

    /// Writes a revision whose hooks record their run; `failOn` makes AfterInstall fail on that instance,
    /// `sleep` makes AfterInstall take that long.
    func push(_ version: String, failOn: String? = nil, sleep: Double = 0) throws {
        let source = cli.directory.appendingPathComponent("src-\(version)").path
        try FileManager.default.createDirectory(atPath: source + "/site", withIntermediateDirectories: true)
        try Data("version \(version)\n".utf8).write(to: URL(fileURLWithPath: source + "/site/version.txt"))
        let appspec = """
            version: 0.0
            os: linux
            files:
              - source: site
                destination: /srv/shop
            hooks:
              AfterInstall:
                - location: after.sh
                  timeout: 60
            """
        try Data(appspec.utf8).write(to: URL(fileURLWithPath: source + "/appspec.yml"))
        var script = "#!/bin/sh\nsleep \(sleep)\n"
        if let failOn {
            script += "if [ \"$DEPLOYCTL_INSTANCE_NAME\" = \"\(failOn)\" ]; then echo \"refusing on $DEPLOYCTL_INSTANCE_NAME\" >&2; exit 1; fi\n"
        }
        try Data(script.utf8).write(to: URL(fileURLWithPath: source + "/after.sh"))
        chmod(source + "/after.sh", 0o755)
        let result = try cli.run(["push", "--application-name", "shop", "--s3-location", "s3://releases/shop-\(version).zip", "--source", source])
        #expect(result.status == 0, "\(result.stderr)")
    }

    func deploy(_ version: String, config: String, extra: [String] = []) throws -> (status: Int32, id: String, stderr: String) {
        let result = try cli.run(
            [
                "create-deployment", "--application-name", "shop", "--deployment-group-name", "web", "--deployment-config-name", config,
                "--s3-location", "bucket=releases,key=shop-\(version).zip,bundleType=zip", "--wait", "--timeout", "120",
            ] + extra)
        let id = (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])?["deploymentId"] as? String ?? ""
        return (result.status, id, result.stderr)
    }

    func info(_ id: String) throws -> [String: Any] {
        try cli.json(["get-deployment", "--deployment-id", id])["deploymentInfo"] as? [String: Any] ?? [:]
    }

    /// Each target's [first event start, last event end] and status.
    func targets(_ id: String) throws -> [(host: String, status: String, start: Date?, end: Date?)] {
        let result = try cli.json(["batch-get-deployment-targets", "--deployment-id", id, "--target-ids"] + hosts)
        let targets = result["deploymentTargets"] as? [[String: Any]] ?? []
        return targets.compactMap { t in
            guard let target = t["instanceTarget"] as? [String: Any] else { return nil }
            let events = target["lifecycleEvents"] as? [[String: Any]] ?? []
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            func date(_ any: Any?) -> Date? {
                guard let text = any as? String else { return nil }
                return formatter.date(from: text) ?? ISO8601DateFormatter().date(from: text)
            }
            let ran = events.filter { ($0["status"] as? String) == "Succeeded" || ($0["status"] as? String) == "Failed" }
            return (
                target["targetId"] as? String ?? "", target["status"] as? String ?? "", ran.compactMap { date($0["startTime"]) }.min(),
                ran.compactMap { date($0["endTime"]) }.max()
            )
        }
    }

    /// The largest number of targets whose run intervals overlap.
    func maxConcurrency(_ id: String) throws -> Int {
        let intervals = try targets(id).compactMap { t -> (Date, Date)? in
            guard let s = t.start, let e = t.end else { return nil }
            return (s, e)
        }
        var best = 0
        for (start, _) in intervals {
            best = max(best, intervals.filter { $0.0 <= start && start < $0.1 }.count)
        }
        return best
    }

    func installedVersion(_ host: String) -> String? {
        try? String(contentsOfFile: installRoot(host) + "/srv/shop/version.txt", encoding: .utf8)
    }
}

@Suite(.serialized) struct FleetTests {
    @Test func eachConfigurationDeploysToEveryInstanceWithinItsConcurrency() throws {
        let fleet = try Fleet()
        try fleet.startAgents()
        defer { fleet.stopAgents() }
        try fleet.cli.run([
            "create-deployment-config", "--deployment-config-name", "TwoAtATime", "--minimum-healthy-hosts", "type=HOST_COUNT,value=1",
        ])
        let cases: [(String, Int)] = [
            ("CodeDeployDefault.OneAtATime", 1), ("CodeDeployDefault.HalfAtATime", 1), ("CodeDeployDefault.AllAtOnce", 3), ("TwoAtATime", 2),
        ]
        for (index, (config, limit)) in cases.enumerated() {
            let version = "v\(index)"
            try fleet.push(version, sleep: 0.3)
            let result = try fleet.deploy(version, config: config)
            #expect(result.status == 0, "\(config): \(result.stderr)")
            #expect(try fleet.info(result.id)["status"] as? String == "Succeeded")
            #expect(try fleet.maxConcurrency(result.id) <= limit, "\(config) ran more than \(limit) at once")
            if config == "CodeDeployDefault.AllAtOnce" { #expect(try fleet.maxConcurrency(result.id) >= 2, "AllAtOnce ran one at a time") }
            for host in fleet.hosts { #expect(fleet.installedVersion(host) == "version \(version)\n", "\(config) on \(host)") }
        }
    }

    @Test func aFailingInstanceHasTheAwsOutcomeUnderEachConfiguration() throws {
        let fleet = try Fleet()
        try fleet.startAgents()
        defer { fleet.stopAgents() }
        try fleet.push("good")
        // OneAtATime fails unless the failure is on the last instance; HalfAtATime (3 hosts: 2 must stay healthy)
        // fails on any failure; AllAtOnce succeeds while one instance succeeds.
        try fleet.push("bad-first", failOn: "web-1")
        try fleet.push("bad-last", failOn: "web-3")
        let cases: [(String, String, String, [String])] = [
            ("CodeDeployDefault.OneAtATime", "bad-first", "Failed", ["Failed", "Skipped", "Skipped"]),
            ("CodeDeployDefault.OneAtATime", "bad-last", "Succeeded", ["Succeeded", "Succeeded", "Failed"]),
            // web-3 failed last time, so it goes first now (and succeeds) before web-1 fails.
            ("CodeDeployDefault.HalfAtATime", "bad-first", "Failed", ["Failed", "Skipped", "Succeeded"]),
            ("CodeDeployDefault.AllAtOnce", "bad-first", "Succeeded", ["Failed", "Succeeded", "Succeeded"]),
            // Custom HOST_COUNT 1 of 3: two at a time; one failure still leaves the minimum.
            ("TwoAtATime", "bad-first", "Succeeded", ["Failed", "Succeeded", "Succeeded"]),
        ]
        try fleet.cli.run([
            "create-deployment-config", "--deployment-config-name", "TwoAtATime", "--minimum-healthy-hosts", "type=HOST_COUNT,value=1",
        ])
        for (config, version, expected, statuses) in cases {
            let result = try fleet.deploy(version, config: config)
            let info = try fleet.info(result.id)
            #expect(info["status"] as? String == expected, "\(config) \(version)")
            #expect(result.status == (expected == "Succeeded" ? 0 : 255), "\(config) \(version): \(result.stderr)")
            let byHost = Dictionary(uniqueKeysWithValues: try fleet.targets(result.id).map { ($0.host, $0.status) })
            #expect(fleet.hosts.map { byHost[$0] ?? "" } == statuses, "\(config) \(version)")
            if expected == "Failed" {
                #expect((info["errorInformation"] as? [String: Any])?["code"] as? String == "HEALTH_CONSTRAINTS")
                #expect(result.stderr.contains("Waiter DeploymentSuccessful failed"))
            }
        }
        // The failure's diagnostics reach get-deployment-target with the log tail.
        let failed = try fleet.deploy("bad-first", config: "CodeDeployDefault.AllAtOnce")
        let target = try fleet.cli.json(["get-deployment-target", "--deployment-id", failed.id, "--target-id", "web-1"])
        let events =
            ((target["deploymentTarget"] as? [String: Any])?["instanceTarget"] as? [String: Any])?["lifecycleEvents"] as? [[String: Any]] ?? []
        let after = events.first { $0["lifecycleEventName"] as? String == "AfterInstall" }
        let diagnostics = after?["diagnostics"] as? [String: Any]
        #expect(diagnostics?["errorCode"] as? String == "ScriptFailed")
        #expect((diagnostics?["logTail"] as? String)?.contains("refusing on web-1") == true)
    }

    @Test func failureAndStopRollBackToTheLastSuccessfulRevision() throws {
        let fleet = try Fleet()
        try fleet.startAgents()
        defer { fleet.stopAgents() }
        try fleet.push("v1")
        #expect(try fleet.deploy("v1", config: "CodeDeployDefault.AllAtOnce").status == 0)
        try fleet.push("v2", failOn: "web-2")
        let failed = try fleet.deploy(
            "v2", config: "CodeDeployDefault.OneAtATime", extra: ["--auto-rollback-configuration", "enabled=true,events=DEPLOYMENT_FAILURE"])
        #expect(failed.status == 255)
        let rollbackId = try #require((try fleet.info(failed.id)["rollbackInfo"] as? [String: Any])?["rollbackDeploymentId"] as? String)
        let waited = try fleet.cli.run(["wait", "deployment-successful", "--deployment-id", rollbackId, "--timeout", "60"])
        #expect(waited.status == 0, "\(waited.stderr)")
        let rollback = try fleet.info(rollbackId)
        #expect(rollback["creator"] as? String == "codeDeployRollback")
        #expect((rollback["rollbackInfo"] as? [String: Any])?["rollbackTriggeringDeploymentId"] as? String == failed.id)
        for host in fleet.hosts { #expect(fleet.installedVersion(host) == "version v1\n", "\(host)") }

        // Stop a slow deployment with --auto-rollback-enabled: running events finish, the rest is skipped, v1 comes back.
        try fleet.push("v3", sleep: 2)
        let started = try fleet.cli.json([
            "create-deployment", "--application-name", "shop", "--deployment-group-name", "web", "--deployment-config-name",
            "CodeDeployDefault.OneAtATime", "--s3-location", "bucket=releases,key=shop-v3.zip,bundleType=zip",
        ])
        let id = try #require(started["deploymentId"] as? String)
        usleep(1_000_000)
        let stop = try fleet.cli.json(["stop-deployment", "--deployment-id", id, "--auto-rollback-enabled"])
        #expect(["Pending", "Succeeded"].contains(stop["status"] as? String ?? ""))
        let stopped = try fleet.info(id)
        #expect(stopped["status"] as? String == "Stopped")
        let secondRollback = try #require((stopped["rollbackInfo"] as? [String: Any])?["rollbackDeploymentId"] as? String)
        #expect(try fleet.cli.run(["wait", "deployment-successful", "--deployment-id", secondRollback, "--timeout", "60"]).status == 0)
        for host in fleet.hosts { #expect(fleet.installedVersion(host) == "version v1\n", "\(host)") }
    }

    @Test func anAgentKilledMidHookReportsTheEventFailedAfterRestartAndTheNextDeploymentWorks() throws {
        let fleet = try Fleet()
        try fleet.cli.run([
            "deregister-on-premises-instance", "--instance-name", "web-2",
        ])
        try fleet.cli.run(["deregister-on-premises-instance", "--instance-name", "web-3"])
        try fleet.startAgent("web-1")
        defer { fleet.stopAgents() }
        try fleet.push("slow", sleep: 30)
        let started = try fleet.cli.json([
            "create-deployment", "--application-name", "shop", "--deployment-group-name", "web", "--s3-location",
            "bucket=releases,key=shop-slow.zip,bundleType=zip",
        ])
        let id = try #require(started["deploymentId"] as? String)
        // Wait until AfterInstall runs, then kill the agent outright.
        var running = false
        for _ in 0..<100 where !running {
            usleep(100_000)
            let target = try fleet.cli.json(["get-deployment-target", "--deployment-id", id, "--target-id", "web-1"])
            let events = ((target["deploymentTarget"] as? [String: Any])?["instanceTarget"] as? [String: Any])?["lifecycleEvents"] as? [[String: Any]]
            running = events?.contains { $0["lifecycleEventName"] as? String == "AfterInstall" && $0["status"] as? String == "InProgress" } ?? false
        }
        #expect(running)
        let agent = try #require(fleet.agents["web-1"])
        kill(agent.processIdentifier, SIGKILL)
        agent.waitUntilExit()
        fleet.agents = [:]
        // Restarted, the agent reports the interrupted event as failed instead of running it again.
        try fleet.startAgent("web-1")
        let waited = try fleet.cli.run(["wait", "deployment-successful", "--deployment-id", id, "--timeout", "30"])
        #expect(waited.status == 255)
        let target = try fleet.cli.json(["get-deployment-target", "--deployment-id", id, "--target-id", "web-1"])
        let events =
            ((target["deploymentTarget"] as? [String: Any])?["instanceTarget"] as? [String: Any])?["lifecycleEvents"] as? [[String: Any]] ?? []
        let after = events.first { $0["lifecycleEventName"] as? String == "AfterInstall" }
        #expect(after?["status"] as? String == "Failed")
        #expect(((after?["diagnostics"] as? [String: Any])?["message"] as? String)?.contains("restarted") == true)
        try fleet.push("quick")
        #expect(try fleet.deploy("quick", config: "CodeDeployDefault.OneAtATime").status == 0)
        #expect(fleet.installedVersion("web-1") == "version quick\n")
    }
}
