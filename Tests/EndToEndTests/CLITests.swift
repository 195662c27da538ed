import Foundation
import Testing

@Suite struct CLIExitCodeTests {
    @Test func serviceErrorsPrintTheAwsLineAndExit254() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let result = try cli.run(["get-application", "--application-name", "nope"])
        #expect(result.status == 254)
        #expect(result.stdout == "")
        #expect(
            result.stderr
                == "An error occurred (ApplicationDoesNotExistException) when calling the GetApplication operation: The application nope does not exist with the user or AWS account.\n"
        )
    }

    /// `--s3-location s3://bucket/key.tgz`, as `push` and `aws s3` print locations: the type comes from the key.
    @Test func anS3URLIsAnS3Location() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        #expect(try cli.run(["create-application", "--application-name", "shop"]).status == 0)
        #expect(try cli.run(["create-deployment-group", "--application-name", "shop", "--deployment-group-name", "web"]).status == 0)
        let created = try cli.json([
            "create-deployment", "--application-name", "shop", "--deployment-group-name", "web", "--s3-location", "s3://releases/app/v1.tar.gz",
        ])
        let id = try #require(created["deploymentId"] as? String)
        let info = try cli.json(["get-deployment", "--deployment-id", id])["deploymentInfo"] as? [String: Any]
        let s3 = (info?["revision"] as? [String: Any])?["s3Location"] as? [String: Any]
        #expect(s3?["bucket"] as? String == "releases")
        #expect(s3?["key"] as? String == "app/v1.tar.gz")
        #expect(s3?["bundleType"] as? String == "tgz")
        let bad = try cli.run([
            "create-deployment", "--application-name", "shop", "--deployment-group-name", "web", "--s3-location", "s3://releases/app.rar",
        ])
        #expect(bad.status == 252)
        #expect(bad.stderr.contains("the key does not end in .zip, .tar, .tgz or .tar.gz"), "\(bad.stderr)")
        #expect(
            try cli.run(["create-deployment", "--application-name", "shop", "--deployment-group-name", "web", "--s3-location", "s3://nokey"]).status
                == 252)
    }

    /// The IAM-shaped access-key commands (issue 10): the secret is shown once, lists never show it.
    @Test func accessKeysThroughTheCLI() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let created = try cli.json(["create-access-key", "--user-name", "ci", "--role", "read-only"])
        let key = try #require(created["AccessKey"] as? [String: Any])
        #expect(Array(key.keys).sorted() == ["AccessKeyId", "CreateDate", "SecretAccessKey", "Status", "UserName"])
        let id = try #require(key["AccessKeyId"] as? String)
        let secret = try #require(key["SecretAccessKey"] as? String)
        let listed = try cli.run(["list-access-keys"])
        #expect(listed.status == 0)
        #expect(listed.stdout.contains(id) && listed.stdout.contains("\"Role\": \"read-only\""))
        #expect(!listed.stdout.contains(secret), "a list shows no secret")
        #expect(try cli.run(["update-access-key", "--access-key-id", id, "--status", "Inactive"]).status == 0)
        #expect(try cli.run(["list-access-keys", "--user-name", "ci"]).stdout.contains("\"Status\": \"Inactive\""))
        #expect(try cli.run(["delete-access-key", "--access-key-id", id]).status == 0)
        let again = try cli.run(["delete-access-key", "--access-key-id", id])
        #expect(again.status == 254)
        #expect(again.stderr.contains("(NoSuchEntity) when calling the DeleteAccessKey operation"))
        #expect(try cli.run(["create-access-key", "--user-name", "ci", "--role", "root"]).status == 252)
    }

    @Test func missingRequiredFlagsExit252NamingTheFlag() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let result = try cli.run(["create-deployment-group", "--application-name", "a"])
        #expect(result.status == 252)
        #expect(result.stderr == "the following arguments are required: --deployment-group-name\n")
    }

    @Test func unknownOptionsAndSubcommandsExit252() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        #expect(try cli.run(["list-applications", "--page-size", "1"]).status == 252)
        #expect(try cli.run(["no-such-command"]).status == 252)
        #expect(try cli.run(["list-applications", "--output", "yaml"]).status == 252)
    }

    @Test func invalidStructuredInputNamesTheFlagAndMember() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        try cli.run(["create-application", "--application-name", "a"])
        let typo = try cli.run([
            "create-deployment-group", "--application-name", "a", "--deployment-group-name", "g",
            "--on-premises-instance-tag-filters", "Kye=env,Value=prod",
        ])
        #expect(typo.status == 252)
        #expect(
            typo.stderr.contains(
                #"--on-premises-instance-tag-filters): Unknown parameter in onPremisesInstanceTagFilters[0]: "Kye", must be one of: Key, Type, Value"#
            ))
        let badJSON = try cli.run(["create-deployment-config", "--deployment-config-name", "c", "--minimum-healthy-hosts", "{\"type\": "])
        #expect(badJSON.status == 252)
        #expect(badJSON.stderr.hasPrefix("Error parsing parameter '--minimum-healthy-hosts': invalid JSON"))
        let badEnum = try cli.run([
            "create-deployment-config", "--deployment-config-name", "c", "--minimum-healthy-hosts", "type=HALF,value=1",
        ])
        // An enum value is the service's to refuse (exit 254), naming the flag, member and the valid values.
        #expect(badEnum.status == 254)
        #expect(badEnum.stderr.contains("'--minimum-healthy-hosts.type'") && badEnum.stderr.contains("[HOST_COUNT, FLEET_PERCENT"))
        let s3 = try cli.run(["create-deployment", "--application-name", "a", "--s3-location", "bucket=b,key=k"])
        #expect(s3.status == 252)
        #expect(s3.stderr == "--s3-location must specify bucket, key and bundleType.\n")
    }

    @Test func anUnusableStateFileExits255AndSaysWhy() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let notADatabase = cli.directory.appendingPathComponent("junk.db")
        try Data(String(repeating: "garbage ", count: 200).utf8).write(to: notADatabase)
        let result = try cli.run(["list-applications", "--state", notADatabase.path], withState: false)
        #expect(result.status == 255)
        #expect(result.stderr.contains("junk.db"))
        // The bad file is left as it was.
        #expect(try Data(contentsOf: notADatabase) == Data(String(repeating: "garbage ", count: 200).utf8))
    }

    @Test func refusedOperationsLeaveTheStateUnchanged() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        try cli.run(["create-application", "--application-name", "a"])
        let before = try Data(contentsOf: URL(fileURLWithPath: cli.statePath))
        #expect(try cli.run(["create-application", "--application-name", "a"]).status == 254)
        #expect(
            try cli.run(["create-deployment-group", "--application-name", "a", "--deployment-group-name", "g", "--deployment-config-name", "Nope"])
                .status == 254)
        let apps = try cli.json(["list-applications"])["applications"] as? [String]
        #expect(apps == ["a"])
        let groups = try cli.json(["list-deployment-groups", "--application-name", "a"])["deploymentGroups"] as? [String]
        #expect(groups == [])
        _ = before
    }
}

@Suite struct CLIWorkflowTests {
    /// The README demo: an application, a group over tagged instances, a deployment, and get-deployment.
    @Test func readmeDemoFlow() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        _ = try cli.json(["create-application", "--application-name", "web-shop"])
        for (name, env) in [("web-1", "prod"), ("web-2", "prod"), ("web-3", "staging")] {
            #expect(try cli.run(["register-on-premises-instance", "--instance-name", name]).status == 0)
            #expect(try cli.run(["add-tags-to-on-premises-instances", "--instance-names", name, "--tags", "Key=env,Value=\(env)"]).status == 0)
        }
        _ = try cli.json([
            "create-deployment-group", "--application-name", "web-shop", "--deployment-group-name", "prod",
            "--on-premises-instance-tag-filters", "Key=env,Value=prod,Type=KEY_AND_VALUE",
            "--deployment-config-name", "CodeDeployDefault.HalfAtATime",
        ])
        let created = try cli.json([
            "create-deployment", "--application-name", "web-shop", "--deployment-group-name", "prod",
            "--s3-location", "bucket=releases,key=web-shop-1.0.zip,bundleType=zip", "--description", "first release",
        ])
        let id = try #require(created["deploymentId"] as? String)
        let info = try #require(try cli.json(["get-deployment", "--deployment-id", id])["deploymentInfo"] as? [String: Any])
        #expect(info["status"] as? String == "Created")
        #expect(info["deploymentConfigName"] as? String == "CodeDeployDefault.HalfAtATime")
        #expect((info["deploymentOverview"] as? [String: Int])?["Pending"] == 2)
        let targets = try cli.json(["list-deployment-targets", "--deployment-id", id])["targetIds"] as? [String]
        #expect(targets?.sorted() == ["web-1", "web-2"])

        let text = try cli.run(["get-deployment", "--deployment-id", id, "--output", "text"])
        #expect(text.stdout.hasPrefix("DEPLOYMENTINFO\tweb-shop\tServer\t"))
        let second = try cli.run([
            "create-deployment", "--application-name", "web-shop", "--deployment-group-name", "prod",
            "--s3-location", "bucket=releases,key=web-shop-1.1.zip,bundleType=zip",
        ])
        #expect(second.status == 254)
        #expect(second.stderr.contains("(DeploymentLimitExceededException)"))
        let stop = try cli.json(["stop-deployment", "--deployment-id", id])
        #expect(stop["status"] as? String == "Succeeded")
    }

    @Test func cliInputJSONFromAFileWithFlagsTakingPrecedence() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let file = cli.directory.appendingPathComponent("input.json")
        try Data(#"{"applicationName": "from-file", "computePlatform": "Server"}"#.utf8).write(to: file)
        _ = try cli.json(["create-application", "--cli-input-json", "file://\(file.path)"])
        _ = try cli.json(["create-application", "--cli-input-json", "file://\(file.path)", "--application-name", "from-flag"])
        #expect(try cli.json(["list-applications"])["applications"] as? [String] == ["from-file", "from-flag"])
    }

    @Test func listsFollowEveryPage() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        for i in 0..<105 {
            #expect(try cli.run(["register-on-premises-instance", "--instance-name", "host-\(i)"]).status == 0)
        }
        #expect((try cli.json(["list-on-premises-instances"])["instanceNames"] as? [String])?.count == 105)
        let firstPage = try cli.json(["list-on-premises-instances", "--no-paginate"])
        #expect((firstPage["instanceNames"] as? [String])?.count == 100)
        #expect(firstPage["nextToken"] is String)
    }

    @Test func jsonOutputIsExactlyTheAwsShape() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let result = try cli.run(["get-deployment-config", "--deployment-config-name", "CodeDeployDefault.OneAtATime"])
        #expect(
            result.stdout == """
                {
                    "deploymentConfigInfo": {
                        "deploymentConfigId": "00000000-0000-0000-0000-000000000001",
                        "deploymentConfigName": "CodeDeployDefault.OneAtATime",
                        "minimumHealthyHosts": {
                            "type": "MOST_CONCURRENCY",
                            "value": 1
                        },
                        "createTime": "2014-11-12T00:00:00+00:00",
                        "computePlatform": "Server"
                    }
                }

                """)
        // Operations without output print nothing.
        let none = try cli.run(["register-on-premises-instance", "--instance-name", "quiet"])
        #expect(none.status == 0 && none.stdout.isEmpty)
    }

    @Test func everySubcommandHasHelpDescribingItsFlags() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let root = try cli.run(["--help"], withState: false)
        #expect(root.status == 0)
        let commands = root.stdout.split(separator: "\n").compactMap { line -> String? in
            // Subcommand rows are indented by exactly two spaces; wrapped descriptions by more.
            guard line.hasPrefix("  "), line.dropFirst(2).first != " ", let first = line.split(separator: " ").first, !first.hasPrefix("-"),
                first.allSatisfy({ $0.isLowercase || $0 == "-" })
            else {
                return nil
            }
            return String(first)
        }
        let extensions: [String: String] = [
            "push": "--s3-location", "validate": "--bundle", "bundle": "extract", "local": "--bundle-location", "agent": "run",
            "wait": "deployment-successful", "create-access-key": "--user-name", "list-access-keys": "--user-name",
            "update-access-key": "--access-key-id", "delete-access-key": "--access-key-id", "server": "--tls-san",
            "register": "--instance-name", "deregister": "--instance-name", "install": "--config-file", "uninstall": "--prefix",
            "logs": "--deployment-id", "events": "--follow", "put-alarm": "--manual", "describe-alarms": "--alarm-names",
            "delete-alarms": "--alarm-names", "set-alarm-state": "--state-value", "sns": "list-deliveries", "migrate": "--replace",
        ]
        #expect(commands.count >= 41 + extensions.count)
        for command in commands {
            let help = try cli.run([command, "--help"], withState: false)
            #expect(help.status == 0, "\(command) --help")
            #expect(!help.stdout.hasPrefix("OVERVIEW: Self-hosted"), "\(command) --help printed the root help")
            if let flag = extensions[command] {
                #expect(help.stdout.contains(flag), "\(command) --help lists \(flag)")
            } else {
                #expect(help.stdout.contains("--cli-input-json"), "\(command) --help lists --cli-input-json")
                #expect(help.stdout.contains("--state"), "\(command) --help lists --state")
            }
        }
        let create = try cli.run(["create-deployment", "--help"], withState: false).stdout
        #expect(create.contains("--s3-location"))
        #expect(create.contains("--ignore-application-stop-failures"))
        #expect(create.contains("DISALLOW, OVERWRITE, RETAIN"))
    }
}

@Suite struct ConcurrencyTests {
    /// 20 invocations at once on one state file: none fails, none is lost.
    @Test func twentyConcurrentWritersLoseNothing() async throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        try cli.run(["create-application", "--application-name", "app"])
        let statuses = try await withThrowingTaskGroup(of: (Int, Int32, String).self) { group in
            for i in 0..<20 {
                group.addTask {
                    let arguments =
                        i % 2 == 0
                        ? ["register-on-premises-instance", "--instance-name", "node-\(i)"]
                        : ["create-deployment-group", "--application-name", "app", "--deployment-group-name", "group-\(i)"]
                    let result = try cli.run(arguments)
                    return (i, result.status, result.stderr)
                }
            }
            var all: [(Int, Int32, String)] = []
            for try await status in group { all.append(status) }
            return all
        }
        for (i, status, stderr) in statuses {
            #expect(status == 0, "invocation \(i) failed: \(stderr)")
        }
        let instances = try cli.json(["list-on-premises-instances"])["instanceNames"] as? [String] ?? []
        let groups = try cli.json(["list-deployment-groups", "--application-name", "app"])["deploymentGroups"] as? [String] ?? []
        #expect(instances.count == 10)
        #expect(groups.count == 10)
    }

    /// Twenty processes racing to create the very first state file all succeed against one schema.
    @Test func concurrentFirstOpensShareOneSchema() async throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let statuses = try await withThrowingTaskGroup(of: Int32.self) { group in
            for i in 0..<20 {
                group.addTask { try cli.run(["create-application", "--application-name", "app-\(i)"]).status }
            }
            var all: [Int32] = []
            for try await status in group { all.append(status) }
            return all
        }
        #expect(statuses.allSatisfy { $0 == 0 })
        #expect((try cli.json(["list-applications"])["applications"] as? [String])?.count == 20)
    }
}
