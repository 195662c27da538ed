import Foundation
import Testing

/// Escapes (issue 9, items 1–3 and 20): nothing a bundle says may write, chmod, read or run anything outside where
/// deployctl was told to work. Each test builds the hostile revision itself and runs the built binary.
@Suite(.serialized) struct ConfinementTests {
    /// A directory revision: `files` maps relative paths to their contents; `links` maps paths to symlink targets.
    static func revision(_ at: String, appspec: String, files: [String: String] = [:], links: [String: String] = [:]) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: at, withIntermediateDirectories: true)
        try Data(appspec.utf8).write(to: URL(fileURLWithPath: at + "/appspec.yml"))
        for (path, text) in files {
            try fm.createDirectory(atPath: (at + "/" + path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: URL(fileURLWithPath: at + "/" + path))
            chmod(at + "/" + path, 0o755)
        }
        for (path, target) in links {
            try fm.createDirectory(atPath: (at + "/" + path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try fm.createSymbolicLink(atPath: at + "/" + path, withDestinationPath: target)
        }
    }

    static func local(_ cli: Deployctl, _ arguments: [String]) throws -> Deployctl.Result {
        try cli.run(["local", "--agent-root", cli.directory.appendingPathComponent("root").path] + arguments, withState: false)
    }

    static func contents(_ path: String) -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] }

    /// A symlink an earlier deployment installed stays inside its bundle but leads out of the install root once
    /// `files` moves it; a later deployment (another group, OVERWRITE, setuid mode) must not write through it,
    /// in every archive type and from a directory.
    @Test(arguments: ["directory", "zip", "tgz", "tar"])
    func aSymlinkPlacedByAnEarlierDeploymentNeverLeadsOutOfTheInstallRoot(type: String) throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let base = cli.directory.path
        let installRoot = base + "/host"
        let outside = base + "/escape"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: installRoot + "/escape", withIntermediateDirectories: true)
        // Inside the bundle, a/b/h/link -> ../../escape is a/escape; installed at <root>/link it is <base>/escape.
        try Self.revision(
            base + "/first", appspec: "version: 0.0\nos: linux\nfiles:\n  - source: a/b/h\n    destination: /\n",
            files: ["a/escape/keep.txt": "x"], links: ["a/b/h/link": "../../escape"])
        try Self.revision(
            base + "/second",
            appspec: """
                version: 0.0
                os: linux
                files:
                  - source: payload.sh
                    destination: /link
                file_exists_behavior: OVERWRITE
                permissions:
                  - object: /link/payload.sh
                    mode: 4755
                """, files: ["payload.sh": "#!/bin/sh\necho owned\n"])
        var first = base + "/first"
        var second = base + "/second"
        if type != "directory" {
            for name in ["first", "second"] {
                let bundle = base + "/\(name).\(type)"
                let made = try cli.run(
                    ["bundle", "create", "--source", base + "/" + name, "--bundle", bundle, "--bundle-type", type], withState: false)
                #expect(made.status == 0, "\(made.stderr)")
            }
            first = base + "/first.\(type)"
            second = base + "/second.\(type)"
        }
        let one = try Self.local(cli, ["--bundle-location", first, "--install-root", installRoot, "--deployment-group", "one"])
        #expect(one.status == 0, "\(one.stdout)\(one.stderr)")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: installRoot + "/link")) == "../../escape")
        _ = try Self.local(cli, ["--bundle-location", second, "--install-root", installRoot, "--deployment-group", "two"])
        #expect(Self.contents(outside).isEmpty, "a deployment wrote outside the install root: \(Self.contents(outside))")
        // Resolved as the host would see it, the link leads to <root>/escape: that is where the file may land.
        let inside = installRoot + "/escape/payload.sh"
        if FileManager.default.fileExists(atPath: inside) {
            let mode = try FileManager.default.attributesOfItem(atPath: inside)[.posixPermissions] as? Int
            #expect(mode == 0o4755)
        }
    }

    /// On the host's real root (no --install-root) a symlink that a deployment installed is never written through,
    /// whichever group wrote it; the deployment fails naming it and nothing is written at its target.
    @Test func onTheRealRootASymlinkADeploymentInstalledIsNeverWrittenThrough() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let base = cli.directory.path
        let outside = base + "/outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: base + "/real", withIntermediateDirectories: true)
        try Self.revision(
            base + "/first", appspec: "version: 0.0\nos: linux\nfiles:\n  - source: a/h\n    destination: \(base)/real\n",
            files: ["a/outside/keep": "x"], links: ["a/h/link": "../outside"])
        try Self.revision(
            base + "/second",
            appspec: "version: 0.0\nos: linux\nfiles:\n  - source: payload.sh\n    destination: \(base)/real/link\nfile_exists_behavior: OVERWRITE\n",
            files: ["payload.sh": "#!/bin/sh\n"])
        let one = try Self.local(cli, ["--bundle-location", base + "/first", "--deployment-group", "one"])
        #expect(one.status == 0, "\(one.stdout)")
        let two = try Self.local(cli, ["--bundle-location", base + "/second", "--deployment-group", "two"])
        #expect(two.status == 1)
        #expect(two.stdout.contains("is a symlink that a deployment installed; deployctl never writes through it"), "\(two.stdout)")
        #expect(Self.contents(outside).isEmpty)
        // The cleanup of a later deployment of group one removes only its own link, not what it points at.
        try Data("keep".utf8).write(to: URL(fileURLWithPath: outside + "/precious"))
        try Self.revision(base + "/third", appspec: "version: 0.0\nos: linux\n")
        let three = try Self.local(cli, ["--bundle-location", base + "/third", "--deployment-group", "one"])
        #expect(three.status == 0, "\(three.stdout)")
        #expect(Self.contents(outside) == ["precious"])
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: base + "/real/link")) == nil)
    }

    /// A directory revision gets the same entry rules as an archive: a hook location or a `files` source that is
    /// (or passes through) a symlink leading out of the revision is never chmod-ed, run, read or copied.
    @Test func aDirectoryRevisionNeverFollowsASymlinkOutOfItself() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let base = cli.directory.path
        let outside = base + "/outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try Data("#!/bin/sh\ntouch \(base)/ran\n".utf8).write(to: URL(fileURLWithPath: outside + "/evil.sh"))
        chmod(outside + "/evil.sh", 0o644)
        try Data("secret".utf8).write(to: URL(fileURLWithPath: outside + "/secret.txt"))
        let cases: [(String, String, [String: String])] = [
            ("hook", "hooks:\n  BeforeInstall:\n    - location: evil.sh\n", ["evil.sh": outside + "/evil.sh"]),
            ("relative hook", "hooks:\n  BeforeInstall:\n    - location: evil.sh\n", ["evil.sh": "../outside/evil.sh"]),
            ("source through a link", "files:\n  - source: linkdir/secret.txt\n    destination: /copied\n", ["linkdir": outside]),
            ("appspec", "", ["appspec.yml": outside + "/secret.txt"]),
        ]
        for (name, section, links) in cases {
            let revision = base + "/rev-\(name.replacingOccurrences(of: " ", with: "-"))"
            try Self.revision(revision, appspec: "version: 0.0\nos: linux\n" + section)
            if links["appspec.yml"] != nil { try FileManager.default.removeItem(atPath: revision + "/appspec.yml") }
            for (path, target) in links { try FileManager.default.createSymbolicLink(atPath: revision + "/" + path, withDestinationPath: target) }
            let result = try Self.local(cli, ["--bundle-location", revision, "--install-root", base + "/host"])
            // Kept as a symlink (as AWS does) but never followed: the deployment fails where it would be used.
            #expect(result.status == 1, "\(name): \(result.stdout)")
            #expect(result.stdout.contains("Deployment failed at"), "\(name): \(result.stdout)")
            #expect(result.stdout.contains("leads outside") || result.stdout.contains("no appspec"), "\(name): \(result.stdout)")
        }
        let mode = try FileManager.default.attributesOfItem(atPath: outside + "/evil.sh")[.posixPermissions] as? Int
        #expect(mode == 0o644, "a script outside the revision was made executable")
        #expect(!FileManager.default.fileExists(atPath: base + "/ran"))
        #expect(!FileManager.default.fileExists(atPath: base + "/host/copied/secret.txt"))
        // validate says the same, naming the entry and where it leads.
        let validate = try cli.run(["validate", "--source", base + "/rev-hook"], withState: false)
        #expect(validate.status == 1)
        #expect(validate.stdout.contains("'evil.sh' goes through the symlink 'evil.sh', which leads outside the revision"), "\(validate.stdout)")
        let source = try cli.run(["validate", "--source", base + "/rev-source-through-a-link"], withState: false)
        #expect(source.status == 1)
        #expect(source.stdout.contains("goes through the symlink 'linkdir'"), "\(source.stdout)")
    }

    /// Inside a revision a hook may still be a symlink to another file of the same revision.
    @Test func aHookSymlinkInsideTheRevisionStillRuns() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let base = cli.directory.path
        try Self.revision(
            base + "/rev", appspec: "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: run.sh\n",
            files: ["scripts/real.sh": "#!/bin/sh\ntouch \(base)/ran\n"], links: ["run.sh": "scripts/real.sh"])
        let result = try Self.local(cli, ["--bundle-location", base + "/rev", "--install-root", base + "/host"])
        #expect(result.status == 0, "\(result.stdout)")
        #expect(FileManager.default.fileExists(atPath: base + "/ran"))
    }

    /// `permissions: object: /` covers everything the deployment installed.
    @Test func permissionsOnTheRootObjectApplyToEverythingInstalled() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        let base = cli.directory.path
        try Self.revision(
            base + "/rev",
            appspec: """
                version: 0.0
                os: linux
                files:
                  - source: site
                    destination: /srv/site
                permissions:
                  - object: /
                    pattern: "**"
                    mode: 600
                    type: [file]
                """, files: ["site/index.html": "hi", "site/css/a.css": "x"])
        let result = try Self.local(cli, ["--bundle-location", base + "/rev", "--install-root", base + "/host"])
        #expect(result.status == 0, "\(result.stdout)")
        for file in ["index.html", "css/a.css"] {
            let mode = try FileManager.default.attributesOfItem(atPath: base + "/host/srv/site/" + file)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(file)")
        }
    }
}
