import AppSpec
import Bundles
import Foundation
import Testing

@testable import Revisions

/// `deployctl validate`'s checks, one real revision (a directory, or a bundle written by libarchive) per edge.
@Suite struct RevisionValidatorTests {
    /// A fresh directory holding `files` (path → content); a content starting with "->" makes a symlink.
    final class Revision {
        let path: String

        init(_ files: [String: String], modes: [String: Int] = [:]) throws {
            path = NSTemporaryDirectory() + "revisions-tests-" + UUID().uuidString
            for (name, content) in files {
                let full = path + "/" + name
                try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                if content.hasPrefix("->") {
                    try FileManager.default.createSymbolicLink(atPath: full, withDestinationPath: String(content.dropFirst(2)))
                } else {
                    try content.write(toFile: full, atomically: false, encoding: .utf8)
                    chmod(full, mode_t(modes[name] ?? 0o755))
                }
            }
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }

        /// The revision written as a bundle of `type`, beside it.
        func bundle(_ type: ArchiveFormat) throws -> String {
            let file = path + "." + type.rawValue
            _ = try BundleArchive.create(from: path, to: file, type: type)
            return file
        }

        deinit {
            try? FileManager.default.removeItem(atPath: path)
            for type in ["zip", "tar", "tgz"] { try? FileManager.default.removeItem(atPath: path + "." + type) }
        }
    }

    static let hooked = "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: start.sh\n      timeout: 60\n"

    func codes(_ report: ValidationReport) -> [String] { report.findings.map(\.code) }

    @Test func aGoodRevisionIsValidAsADirectoryAndAsEachBundleType() throws {
        let revision = try Revision(["appspec.yml": Self.hooked, "start.sh": "#!/bin/sh\nexit 0\n"])
        let report = RevisionValidator.validate(directory: revision.path)
        #expect(report.isValid, "\(report.findings)")
        #expect(report.appSpecPath == "appspec.yml")
        for type in [ArchiveFormat.zip, .tar, .tgz] {
            let bundled = RevisionValidator.validate(bundle: try revision.bundle(type))
            #expect(bundled.isValid, "\(type): \(bundled.findings)")
            #expect(bundled.appSpec == report.appSpec)
        }
    }

    @Test func aMissingDirectoryIsUnreadableNotAFinding() {
        let report = RevisionValidator.validate(directory: "/nonexistent/revision")
        #expect(codes(report) == ["RV001"])
        #expect(report.isUnreadable)
    }

    @Test func noAppSpecNamesTheNamesItLookedFor() throws {
        let revision = try Revision(["start.sh": "#!/bin/sh\n"])
        let report = RevisionValidator.validate(directory: revision.path, appSpecFileName: "deploy.yml")
        #expect(codes(report) == ["RV102"])
        #expect(report.findings.first?.message.contains("deploy.yml, appspec.yaml, appspec.yml") == true, "\(report.findings)")
        #expect(!report.isUnreadable)
    }

    @Test func anAppSpecOverTheLimitIsRefusedUnread() throws {
        let big = Self.hooked + "# " + String(repeating: "x", count: RevisionValidator.maxAppSpecBytes) + "\n"
        let revision = try Revision(["appspec.yml": big, "start.sh": "#!/bin/sh\n"])
        #expect(codes(RevisionValidator.validate(directory: revision.path)) == ["RV112"])
        #expect(codes(RevisionValidator.validate(bundle: try revision.bundle(.tgz))) == ["RV112"])
    }

    @Test func anAppSpecThatIsASymlinkIsNeverFollowed() throws {
        let revision = try Revision(["appspec.yml": "->/etc/passwd", "start.sh": "#!/bin/sh\n"])
        let report = RevisionValidator.validate(directory: revision.path)
        #expect(codes(report).contains("RV103"), "\(report.findings)")
    }

    @Test func scriptEdges() throws {
        let appspec = """
            version: 0.0
            os: linux
            hooks:
              BeforeInstall:
                - location: missing.sh
                - location: scripts
                - location: plain.sh
                - location: out/escape.sh
              ApplicationStart:
                - location: bg.sh
                  timeout: 30

            """
        let revision = try Revision(
            [
                "appspec.yml": appspec, "scripts/keep": "", "plain.sh": "#!/bin/sh\n", "out": "->/tmp",
                "bg.sh": "#!/bin/sh\nsleep 100 &\necho started\n",
            ], modes: ["plain.sh": 0o644])
        let report = RevisionValidator.validate(directory: revision.path)
        let byCode = Dictionary(grouping: report.findings, by: \.code)
        #expect(byCode["RV106"]?.first?.keyPath == "hooks.BeforeInstall[0].location")
        #expect(byCode["RV105"]?.first?.keyPath == "hooks.BeforeInstall[1].location")
        #expect(byCode["RV203"]?.first?.severity == .warning)
        #expect(byCode["RV104"]?.first?.message.contains("goes through the symlink 'out'") == true)
        let background = try #require(byCode["RV202"]?.first)
        #expect(background.file == "bg.sh")
        #expect(background.position?.line == 2)
        #expect(background.message.contains("until the 30 s timeout"))
        #expect(byCode["RV201"]?.first?.keyPath == "out", "an escaping symlink is a warning of its own")
        #expect(!report.isValid)
    }

    @Test func filesSourceEdges() throws {
        let appspec = """
            version: 0.0
            os: linux
            files:
              - source: app
                destination: /srv/app
              - source: nowhere
                destination: /srv/x
              - source: link/inside
                destination: /srv/y

            """
        let revision = try Revision(["appspec.yml": appspec, "app/index.html": "hi", "link": "->/etc"])
        let report = RevisionValidator.validate(directory: revision.path)
        #expect(report.findings.filter { $0.severity == .error }.map(\.code).sorted() == ["RV107", "RV108"], "\(report.findings)")
        #expect(report.findings.first { $0.code == "RV108" }?.keyPath == "files[1].source")
        #expect(report.findings.first { $0.code == "RV107" }?.keyPath == "files[2].source")
    }

    @Test func aBundleWithOneTopDirectoryIsReadFromInsideIt() throws {
        let revision = try Revision(["release/appspec.yml": Self.hooked, "release/start.sh": "#!/bin/sh\n"])
        let report = RevisionValidator.validate(bundle: try revision.bundle(.tar))
        #expect(report.isValid, "\(report.findings)")
        #expect(report.appSpecPath == "appspec.yml")
    }

    @Test func bundleLimitsAndDeclaredTypesAreFindings() throws {
        let revision = try Revision(["appspec.yml": Self.hooked, "start.sh": "#!/bin/sh\n", "more.txt": "x"])
        let zip = try revision.bundle(.zip)
        #expect(codes(RevisionValidator.validate(bundle: zip, declaredType: .tgz)) == ["RV110"])
        #expect(codes(RevisionValidator.validate(bundle: zip, limits: BundleLimits(maxTotalBytes: 1 << 20, maxEntries: 1))) == ["RV111"])
        let garbage = revision.path + "/not-a-bundle.zip"
        try "not an archive".write(toFile: garbage, atomically: false, encoding: .utf8)
        let unreadable = RevisionValidator.validate(bundle: garbage)
        #expect(codes(unreadable) == ["RV003"])
        #expect(unreadable.isUnreadable)
    }

    @Test func hiddenFilesAreLeftOutOnlyWhenAsked() throws {
        let appspec = "version: 0.0\nos: linux\nfiles:\n  - source: .env\n    destination: /srv\n"
        let revision = try Revision(["appspec.yml": appspec, ".env": "A=1"])
        #expect(RevisionValidator.validate(directory: revision.path).isValid)
        #expect(codes(RevisionValidator.validate(directory: revision.path, ignoreHidden: true)) == ["RV108"])
    }

    @Test func findingsAreOrderedByFileThenPosition() throws {
        let appspec = "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: b.sh\n  BeforeInstall:\n    - location: a.sh\n"
        let revision = try Revision(["appspec.yml": appspec])
        let lines = RevisionValidator.validate(directory: revision.path).findings.compactMap { $0.position?.line }
        #expect(lines == lines.sorted(), "\(lines)")
        #expect(lines.count == 2)
    }

    @Test func s3LocationsSplitAsTheAwsCLISplitsThem() throws {
        #expect(try RevisionPush.parseS3URL("s3://bucket/path/to/app.zip") == ("bucket", "path/to/app.zip"))
        for bad in ["bucket/key", "s3://bucket", "s3://bucket/", "s3:///key", "https://bucket/key"] {
            #expect(throws: PushError.invalidS3Location(bad)) { try RevisionPush.parseS3URL(bad) }
        }
    }
}
