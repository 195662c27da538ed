import Foundation
import Testing

@testable import Bundles

/// A scratch directory per test.
final class Scratch {
    let url: URL
    var path: String { url.path }

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("bundles-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func write(_ relative: String, _ text: String, mode: Int = 0o644) throws {
        let file = url.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: file)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: file.path)
    }

    func contents(_ relative: String = "") -> [String] {
        let base = relative.isEmpty ? path : path + "/" + relative
        return ((FileManager.default.enumerator(atPath: base)?.allObjects as? [String]) ?? []).sorted()
    }
}

enum Hostile {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let directory = root.appendingPathComponent("Fixtures/bundles/hostile")

    /// Generates the hostile bundles once per test process (they are not committed).
    static let generated: Bool = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", root.appendingPathComponent("Scripts/make-hostile-bundles.py").path, directory.path]
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus == 0
        } catch {
            return false
        }
    }()

    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
}

@Suite struct HostileBundleTests {
    static let cases: [(String, String)] = [
        ("zip-slip.zip", "'..' components would write outside the bundle"),
        ("absolute-path.tar", "absolute paths are not allowed"),
        ("symlink-then-write.tar", "it would be written through the symlink 'escape'"),
        ("symlink-then-write.zip", "it would be written through the symlink 'escape'"),
        ("hardlink-escape.tar", "the hard link points outside the bundle"),
        ("device-file.tar", "device entries are not allowed"),
        ("fifo.tar", "fifo entries are not allowed"),
        ("deep-path.tar", "entry names are limited to 2048 bytes"),
    ]

    @Test(arguments: cases)
    func refusedAndNothingWritten(_ name: String, _ reason: String) throws {
        #expect(Hostile.generated, "Scripts/make-hostile-bundles.py failed")
        let scratch = try Scratch()
        let target = scratch.path + "/deploy/archive"
        #expect {
            try BundleArchive.extract(Hostile.path(name), into: target)
        } throws: { error in
            (error as? BundleError)?.description.contains(reason) == true
        }
        #expect(!FileManager.default.fileExists(atPath: target))
        // Nothing at all was left: no staging directory, no escaped file next to or above the target.
        #expect(scratch.contents() == ["deploy"])
        #expect(scratch.contents("deploy") == [])
        #expect(!FileManager.default.fileExists(atPath: "/tmp/deployctl-hostile-absolute.txt"))
        // Listing refuses the same bundle for the same reason without writing anything.
        #expect(throws: BundleError.self) { try BundleArchive.entries(of: Hostile.path(name)) }
    }

    /// Symlinks leading outside (`etc -> /etc`, `up -> ../../..`) are kept as symlinks, as the AWS agent keeps them
    /// (issue 12); nothing is written through them and the directory they point at is untouched.
    @Test func symlinksLeadingOutsideAreKeptAsSymlinks() throws {
        #expect(Hostile.generated)
        let scratch = try Scratch()
        let target = scratch.path + "/deploy/archive"
        try BundleArchive.extract(Hostile.path("symlink-escape.tar"), into: target)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: target + "/etc") == "/etc")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: target + "/up") == "../../..")
        let entries = try BundleArchive.entries(of: Hostile.path("symlink-escape.tar"))
        #expect(entries.filter { $0.kind == .symlink && !EntrySafety.staysInside($0.linkTarget ?? "", from: $0.path) }.count == 2)
    }

    /// A symlink entry over a directory that earlier entries filled, then a file below it: refused whichever of the
    /// two extraction lanes gets there first (the safety rules, or `O_NOFOLLOW` when the symlink won the race), and
    /// nothing is written where the symlink points. Run 20 times to give the lanes their chances.
    @Test func aSymlinkReplacingAFilledDirectoryIsNeverWrittenThrough() throws {
        #expect(Hostile.generated)
        // The place the symlink points at exists, so a write through it would land there.
        let outside = "/tmp/deployctl-hostile-outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: outside) }
        for _ in 0..<20 {
            let scratch = try Scratch()
            #expect(throws: BundleError.self) {
                try BundleArchive.extract(Hostile.path("symlink-over-dir.tar"), into: scratch.path + "/deploy/archive")
            }
            #expect(scratch.contents("deploy") == [])
            #expect((try? FileManager.default.contentsOfDirectory(atPath: outside)) == [])
        }
    }

    /// The writer under both lanes never follows a symlink, at any depth and for every kind of entry, even one it
    /// did not create itself (a race, or a symlink entry that won it).
    @Test func theDiskWriterNeverFollowsASymlink() throws {
        let scratch = try Scratch()
        let outside = scratch.path + "/outside"
        let staging = scratch.path + "/staging"
        try FileManager.default.createDirectory(atPath: outside + "/sub", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: staging + "/a", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: staging + "/link", withDestinationPath: outside)
        try FileManager.default.createSymbolicLink(atPath: staging + "/a/deep", withDestinationPath: outside)
        let writer = try DiskWriter(root: staging)
        for path in ["link/pwned", "a/deep/pwned", "link/sub/pwned", "a/deep/sub/x/pwned"] {
            #expect(throws: BundleError.self) { _ = try writer.createFile(path) }
            #expect(throws: BundleError.self) { try writer.makeDirectory(path) }
            #expect(throws: BundleError.self) { try writer.symlink(path, to: "/etc/passwd", times: nil) }
        }
        // A last component that is a symlink is replaced, not written through.
        let fd = try writer.createFile("link")
        try writer.finishFile(fd, path: "link", size: 0, written: 0, mode: 0o644, times: nil)
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: staging + "/link")) == nil)
        #expect(try FileManager.default.subpathsOfDirectory(atPath: outside) == ["sub"])
    }

    @Test func zipBombIsRefusedAtTheByteLimit() throws {
        #expect(Hostile.generated)
        let scratch = try Scratch()
        let limits = BundleLimits(maxTotalBytes: 8 << 20, maxEntries: 100)
        #expect {
            try BundleArchive.extract(Hostile.path("zip-bomb.zip"), into: scratch.path + "/out", limits: limits)
        } throws: { error in
            if case .limitExceeded(let message)? = error as? BundleError { return message.contains("8388608 bytes") }
            return false
        }
        #expect(scratch.contents() == [])
        // With the default limits the same archive extracts: the limit, not the shape, refused it.
        let summary = try BundleArchive.extract(Hostile.path("zip-bomb.zip"), into: scratch.path + "/ok")
        #expect(summary.bytes == 64 << 20 + 23)
    }

    @Test func entryCountLimit() throws {
        #expect(Hostile.generated)
        let scratch = try Scratch()
        #expect(throws: BundleError.self) {
            try BundleArchive.extract(Hostile.path("many-entries.tgz"), into: scratch.path + "/out", limits: BundleLimits(maxEntries: 1000))
        }
        #expect(scratch.contents() == [])
        #expect(try BundleArchive.entries(of: Hostile.path("many-entries.tgz")).count == 5001)
    }
}

/// What `tar -x` does with an archive's own metadata, kept by deployctl's extraction (two lanes, directory modes
/// applied last): checked against GNU tar's result on the same archive where the machine has it.
@Suite struct TarSemanticsTests {
    func modified(_ path: String) -> Int {
        var info = stat()
        guard lstat(path, &info) == 0 else { return -1 }
        return info.st_mtim.tv_sec
    }

    func mode(_ path: String) -> mode_t {
        var info = stat()
        guard lstat(path, &info) == 0 else { return 0 }
        return info.st_mode & 0o7777
    }

    func inode(_ path: String) -> ino_t {
        var info = stat()
        guard lstat(path, &info) == 0 else { return 0 }
        return info.st_ino
    }

    @Test func readOnlyDirectoriesDuplicatesReplacedFilesSetuidAndHardLinks() throws {
        #expect(Hostile.generated)
        let scratch = try Scratch()
        let out = scratch.path + "/out"
        let summary = try BundleArchive.extract(Hostile.path("tar-semantics.tar"), into: out)
        #expect(summary.entries == 9)
        // The read-only directory received its file, then got its own mode and time.
        #expect(try String(contentsOfFile: out + "/ro/f", encoding: .utf8) == "in a read-only directory")
        #expect(mode(out + "/ro") == 0o555)
        #expect(modified(out + "/ro") == 1_000_000_000)
        #expect(modified(out + "/ro/f") == 1_200_000_000)
        // The later entry for a path wins, a symlink replaces the file before it.
        #expect(try String(contentsOfFile: out + "/dup.txt", encoding: .utf8) == "two")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: out + "/swap") == "dup.txt")
        // setuid and setgid are never kept from a bundle; the time is.
        #expect(mode(out + "/setuid") == 0o755)
        #expect(modified(out + "/setuid") == 1_300_000_000)
        #expect(inode(out + "/hl") == inode(out + "/dup.txt"))

        if FileManager.default.isExecutableFile(atPath: "/usr/bin/tar") || FileManager.default.isExecutableFile(atPath: "/bin/tar") {
            let gnu = scratch.path + "/gnu"
            try FileManager.default.createDirectory(atPath: gnu, withIntermediateDirectories: true)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["tar", "-xf", Hostile.path("tar-semantics.tar"), "-C", gnu, "--no-same-owner"]
            try process.run()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            for path in ["ro", "ro/f", "dup.txt", "swap", "hl", "appspec.yml"] {
                #expect(modified(out + "/" + path) == modified(gnu + "/" + path), "mtime of \(path)")
                #expect(mode(out + "/" + path) == mode(gnu + "/" + path) || path == "swap", "mode of \(path)")
            }
        }
    }

    /// Many files over many directories, as the two lanes share them: every byte and mode arrives.
    @Test func aLargeTreeArrivesWhole() throws {
        let scratch = try Scratch()
        for index in 0..<600 {
            try scratch.write(
                "src/d\(index % 7)/sub\(index % 3)/f\(index).txt", String(repeating: "\(index),", count: index % 50),
                mode: index % 2 == 0 ? 0o644 : 0o600)
        }
        try BundleArchive.create(from: scratch.path + "/src", to: scratch.path + "/b.tgz", type: .tgz)
        let out = scratch.path + "/out"
        let summary = try BundleArchive.extract(scratch.path + "/b.tgz", into: out)
        #expect(summary.entries == 600 + 7 + 21)
        for index in 0..<600 {
            let path = "/d\(index % 7)/sub\(index % 3)/f\(index).txt"
            #expect(try String(contentsOfFile: out + path, encoding: .utf8) == String(repeating: "\(index),", count: index % 50))
            #expect(mode(out + path) == (index % 2 == 0 ? 0o644 : 0o600))
        }
    }
}

@Suite struct BundleRoundTripTests {
    func sampleTree(_ scratch: Scratch) throws -> String {
        try scratch.write("src/appspec.yml", "version: 0.0\nos: linux\n")
        try scratch.write("src/scripts/start.sh", "#!/bin/sh\necho start\n", mode: 0o755)
        try scratch.write("src/site/index.html", "<h1>hi</h1>\n", mode: 0o640)
        try scratch.write("src/site/assets/app.css", "body{}\n")
        try scratch.write("src/.git/config", "[core]\n")
        try FileManager.default.createSymbolicLink(atPath: scratch.path + "/src/site/current", withDestinationPath: "assets")
        try FileManager.default.createSymbolicLink(atPath: scratch.path + "/src/start", withDestinationPath: "scripts/start.sh")
        return scratch.path + "/src"
    }

    @Test(arguments: ArchiveFormat.allCases)
    func createThenExtractKeepsContentModesAndSymlinks(_ type: ArchiveFormat) throws {
        let scratch = try Scratch()
        let source = try sampleTree(scratch)
        let bundle = scratch.path + "/bundle.\(type.rawValue)"
        let created = try BundleArchive.create(from: source, to: bundle, type: type)
        #expect(created.entries == 11)
        #expect(try BundleArchive.detectType(of: bundle) == type)

        let out = scratch.path + "/out"
        try BundleArchive.extract(bundle, declaredType: type, into: out)
        let fm = FileManager.default
        #expect(try String(contentsOfFile: out + "/scripts/start.sh", encoding: .utf8) == "#!/bin/sh\necho start\n")
        #expect((try fm.attributesOfItem(atPath: out + "/scripts/start.sh")[.posixPermissions] as? Int) == 0o755)
        #expect((try fm.attributesOfItem(atPath: out + "/site/index.html")[.posixPermissions] as? Int) == 0o640)
        #expect(try fm.destinationOfSymbolicLink(atPath: out + "/site/current") == "assets")
        #expect(try fm.destinationOfSymbolicLink(atPath: out + "/start") == "scripts/start.sh")
        #expect(fm.fileExists(atPath: out + "/.git/config"))
    }

    @Test func hiddenFilesCanBeLeftOut() throws {
        let scratch = try Scratch()
        let source = try sampleTree(scratch)
        try BundleArchive.create(from: source, to: scratch.path + "/b.zip", ignoreHidden: true)
        let names = try BundleArchive.entries(of: scratch.path + "/b.zip").map(\.path)
        #expect(!names.contains { $0.hasPrefix(".git") })
        #expect(names.contains("site/index.html"))
    }

    @Test func declaredTypeMustMatchTheContent() throws {
        let scratch = try Scratch()
        let source = try sampleTree(scratch)
        try BundleArchive.create(from: source, to: scratch.path + "/b.zip", type: .zip)
        try BundleArchive.create(from: source, to: scratch.path + "/b.tgz", type: .tgz)
        #expect(throws: BundleError.typeMismatch(path: scratch.path + "/b.zip", declared: .tar, detected: .zip)) {
            try BundleArchive.extract(scratch.path + "/b.zip", declaredType: .tar, into: scratch.path + "/x")
        }
        // A tgz declared tar is accepted, as the CodeDeploy agent (GNU tar) accepts it.
        try BundleArchive.extract(scratch.path + "/b.tgz", declaredType: .tar, into: scratch.path + "/y")
        #expect(throws: BundleError.self) { try BundleArchive.extract(scratch.path + "/b.tgz", declaredType: .zip, into: scratch.path + "/z") }
    }

    @Test func refusesANonEmptyTargetAndNonArchives() throws {
        let scratch = try Scratch()
        let source = try sampleTree(scratch)
        try BundleArchive.create(from: source, to: scratch.path + "/b.zip")
        try scratch.write("busy/file", "x")
        #expect(throws: BundleError.self) { try BundleArchive.extract(scratch.path + "/b.zip", into: scratch.path + "/busy") }
        #expect(throws: BundleError.self) { try BundleArchive.entries(of: source + "/appspec.yml") }
        #expect(throws: BundleError.self) { try BundleArchive.entries(of: scratch.path + "/missing.zip") }
    }

    @Test func readsOneFileWithoutExtracting() throws {
        let scratch = try Scratch()
        let source = try sampleTree(scratch)
        try BundleArchive.create(from: source, to: scratch.path + "/b.tgz", type: .tgz)
        let data = try BundleArchive.readFile(scratch.path + "/b.tgz", entry: "appspec.yml", maxBytes: 1024)
        #expect(String(decoding: data, as: UTF8.self) == "version: 0.0\nos: linux\n")
        #expect(throws: BundleError.self) { try BundleArchive.readFile(scratch.path + "/b.tgz", entry: "nope", maxBytes: 10) }
    }
}

@Suite struct EntrySafetyTests {
    func check(_ entries: [BundleEntry]) -> BundleError? {
        var safety = EntrySafety()
        do {
            for entry in entries { try safety.check(entry) }
            return nil
        } catch {
            return error
        }
    }

    func file(_ path: String) -> BundleEntry { BundleEntry(path: path, kind: .file, size: 1, mode: 0o644) }
    func link(_ path: String, _ target: String, _ kind: BundleEntry.Kind = .symlink) -> BundleEntry {
        BundleEntry(path: path, kind: kind, size: 0, mode: 0o777, linkTarget: target)
    }

    @Test func symlinksInsideTheBundleAreFine() {
        #expect(check([file("a/b.txt"), link("a/c", "b.txt"), link("d", "a/../a/b.txt"), link("a/e", "../a")]) == nil)
    }

    @Test func writingThroughAnEarlierSymlinkIsRefused() {
        #expect(check([link("sub", "real"), file("sub/x.txt")]) != nil)
    }

    @Test func hardLinksMustPointAtAnEarlierFile() {
        #expect(check([file("a"), link("b", "a", .hardlink)]) == nil)
        #expect(check([link("b", "a", .hardlink)]) != nil)
    }

    @Test func normalization() {
        #expect(EntrySafety.normalize("./a/b/") == "a/b")
        #expect(EntrySafety.normalize("./") == "")
        #expect(EntrySafety.normalize("././x") == "x")
    }
}
