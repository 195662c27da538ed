import Foundation
import Testing

@Suite struct RevisionCommandTests {
    static let staticSite = CrashConsistencyTests.fixtures.appendingPathComponent("apps/static-site").path

    /// A copy of the static-site sample in the test's directory, to break on purpose.
    func copyOfStaticSite(_ cli: Deployctl) throws -> String {
        let copy = cli.directory.appendingPathComponent("static-site").path
        try FileManager.default.copyItem(atPath: Self.staticSite, toPath: copy)
        return copy
    }

    @Test func validateAcceptsTheSampleAsDirectoryAndAsEachBundleType() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let source = try cli.run(["validate", "--source", Self.staticSite], withState: false)
        #expect(source.status == 0, "\(source.stdout)")
        #expect(source.stdout.hasSuffix("valid (appspec.yml, 0 errors, 0 warnings)\n"))
        for type in ["zip", "tar", "tgz"] {
            let bundle = cli.directory.appendingPathComponent("site.\(type)").path
            #expect(
                try cli.run(["bundle", "create", "--source", Self.staticSite, "--bundle", bundle, "--bundle-type", type], withState: false).status
                    == 0)
            let result = try cli.run(["validate", "--bundle", bundle, "--bundle-type", type], withState: false)
            #expect(result.status == 0, "\(type): \(result.stdout)")
        }
    }

    @Test func validateReportsEveryProblemWithPositionsAndExits1() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let copy = try copyOfStaticSite(cli)
        try FileManager.default.removeItem(atPath: copy + "/scripts/check-files.sh")
        try FileManager.default.removeItem(atPath: copy + "/site")
        var appspec = try String(contentsOfFile: copy + "/appspec.yml", encoding: .utf8)
        appspec = appspec.replacingOccurrences(of: "AfterInstall:", with: "AfterInstal:\n    - location: scripts/x.sh\n  AfterInstall:")
        try Data(appspec.utf8).write(to: URL(fileURLWithPath: copy + "/appspec.yml"))
        let result = try cli.run(["validate", "--source", copy], withState: false)
        #expect(result.status == 1)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("appspec.yml:5:5: error RV108: files[0].source: 'site' is not in the revision"))
        #expect(
            lines.contains("appspec.yml:16:3: error AS135: hooks.AfterInstal: unknown lifecycle event 'AfterInstal'; did you mean 'AfterInstall'?"))
        #expect(lines.contains { $0.contains("hooks.AfterInstall[0].location: the script 'scripts/check-files.sh' is not in the revision") })
        #expect(lines.last == "\(copy): invalid (3 errors, 0 warnings)")

        let json = try cli.run(["validate", "--source", copy, "--output", "json"], withState: false)
        #expect(json.status == 1)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(report["valid"] as? Bool == false)
        #expect(report["errors"] as? Int == 3)
        #expect((report["findings"] as? [[String: Any]])?.first?["line"] as? Int == 5)
    }

    @Test func aBundleWithOneTopDirectoryIsReadFromInsideIt() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let wrapper = cli.directory.appendingPathComponent("wrap").path
        try FileManager.default.createDirectory(atPath: wrapper, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.staticSite, toPath: wrapper + "/release-1.0")
        let bundle = cli.directory.appendingPathComponent("wrapped.tgz").path
        #expect(try cli.run(["bundle", "create", "--source", wrapper, "--bundle", bundle, "--bundle-type", "tgz"], withState: false).status == 0)
        let result = try cli.run(["validate", "--bundle", bundle], withState: false)
        #expect(result.status == 0, "\(result.stdout)")
    }

    @Test func validateRefusesHostileBundlesNamingTheEntry() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let bundle = cli.directory.appendingPathComponent("slip.tar").path
        let script = """
            import tarfile, io
            with tarfile.open('\(bundle)', 'w') as t:
                for name, data in (('appspec.yml', b'version: 0.0\\nos: linux\\n'), ('../../escape.txt', b'x')):
                    info = tarfile.TarInfo(name); info.size = len(data); t.addfile(info, io.BytesIO(data))
            """
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c", script]
        try python.run()
        python.waitUntilExit()
        let result = try cli.run(["validate", "--bundle", bundle], withState: false)
        #expect(result.status == 1)
        #expect(result.stdout.contains("unsafe entry '../../escape.txt': '..' components would write outside the bundle"))
    }

    /// An appspec whose aliases stand for 10^12 nodes is refused in well under a second, by validate and by the
    /// agent (issue 9, item 6); it took minutes and gigabytes before.
    @Test func anAliasBombIsRefusedAtOnce() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let revision = cli.directory.appendingPathComponent("bomb").path
        var lines = ["version: 0.0", "os: linux", "x0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
        lines += (1...11).map { "x\($0): &l\($0) [" + Array(repeating: "*l\($0 - 1)", count: 10).joined(separator: ", ") + "]" }
        lines.append("permissions: *l11")
        try FileManager.default.createDirectory(atPath: revision, withIntermediateDirectories: true)
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: revision + "/appspec.yml"))
        let start = Date()
        let validate = try cli.run(["validate", "--source", revision], withState: false)
        #expect(validate.status == 1)
        #expect(validate.stdout.contains("more than 200000 YAML nodes once its aliases"), "\(validate.stdout)")
        let local = try cli.run(["local", "--bundle-location", revision, "--agent-root", cli.directory.path + "/root"], withState: false)
        #expect(local.status == 1)
        #expect(local.stdout.contains("Deployment failed at DownloadBundle"))
        // The same appspec inside a bundle.
        let bundle = cli.directory.appendingPathComponent("bomb.tgz").path
        #expect(try cli.run(["bundle", "create", "--source", revision, "--bundle", bundle, "--bundle-type", "tgz"], withState: false).status == 0)
        let packed = try cli.run(["validate", "--bundle", bundle], withState: false)
        #expect(packed.status == 1)
        #expect(packed.stdout.contains("more than 200000 YAML nodes once its aliases"), "\(packed.stdout)")
        #expect(Date().timeIntervalSince(start) < 5)
    }

    @Test func pushStoresRegistersAndPrintsTheDeployCommand() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        #expect(try cli.run(["create-application", "--application-name", "site"]).status == 0)
        let push = try cli.run(["push", "--application-name", "site", "--s3-location", "s3://releases/site/v1.zip", "--source", Self.staticSite])
        #expect(push.status == 0, "\(push.stderr)")
        let lines = push.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "To deploy with this revision, run:")
        let command = try #require(lines.last)
        #expect(
            command.hasPrefix(
                "deployctl create-deployment --application-name site --s3-location bucket=releases,key=site/v1.zip,bundleType=zip,eTag="))

        // The revision is registered with the stored object's eTag and version, and the object is in the store.
        let revisions = try cli.json(["list-application-revisions", "--application-name", "site"])["revisions"] as? [[String: Any]]
        let s3 = try #require(revisions?.first?["s3Location"] as? [String: Any])
        let eTag = try #require(s3["eTag"] as? String)
        let version = try #require(s3["version"] as? String)
        #expect(eTag.count == 64)
        #expect(command.contains("eTag=\(eTag),version=\(version)"))
        let stored = cli.directory.appendingPathComponent("artifacts/releases/site/v1.zip@v/\(version)/content").path
        #expect(FileManager.default.fileExists(atPath: stored))
        let listed = try cli.run(["bundle", "list", "--bundle", stored], withState: false)
        #expect(listed.stdout.contains("appspec.yml"))
        let info = try cli.json([
            "get-application-revision", "--application-name", "site", "--s3-location",
            "bucket=releases,key=site/v1.zip,bundleType=zip,eTag=\(eTag),version=\(version)",
        ])
        #expect(((info["revisionInfo"] as? [String: Any])?["description"] as? String)?.hasPrefix("Uploaded by deployctl ") == true)
    }

    @Test func pushRefusesBadInputWithoutRegisteringAnything() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        #expect(try cli.run(["create-application", "--application-name", "site"]).status == 0)
        let badURL = try cli.run(["push", "--application-name", "site", "--s3-location", "releases/v1.zip", "--source", Self.staticSite])
        #expect(badURL.status == 252)
        #expect(badURL.stderr.contains("s3://<bucket>/<key>"))
        let noApp = try cli.run(["push", "--application-name", "nope", "--s3-location", "s3://releases/v1.zip", "--source", Self.staticSite])
        #expect(noApp.status == 254)
        #expect(noApp.stderr.contains("ApplicationDoesNotExistException"))
        let empty = cli.directory.appendingPathComponent("empty").path
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let noAppSpec = try cli.run(["push", "--application-name", "site", "--s3-location", "s3://releases/v1.zip", "--source", empty])
        #expect(noAppSpec.status == 255)
        #expect(noAppSpec.stderr.contains("appspec.yml was not found"))
        let copy = try copyOfStaticSite(cli)
        try FileManager.default.removeItem(atPath: copy + "/scripts/check-files.sh")
        let invalid = try cli.run(["push", "--application-name", "site", "--s3-location", "s3://releases/v1.zip", "--source", copy])
        #expect(invalid.status == 1)
        #expect(invalid.stderr.contains("the script 'scripts/check-files.sh' is not in the revision"))
        let revisions = try cli.json(["list-application-revisions", "--application-name", "site"])["revisions"] as? [Any]
        #expect(revisions?.isEmpty == true)
        #expect(!FileManager.default.fileExists(atPath: cli.directory.appendingPathComponent("artifacts/releases").path))
    }
}
