import CArchive
import Foundation

/// The archive kinds a revision bundle can be.
public enum ArchiveFormat: String, Sendable, CaseIterable, Codable {
    case zip, tar, tgz
}

/// One entry of a bundle, as its header declares it.
public struct BundleEntry: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        case file, directory, symlink, hardlink, device, fifo, socket
    }

    /// The entry's path inside the bundle, with any leading `./` removed.
    public var path: String
    public var kind: Kind
    /// The declared uncompressed size in bytes.
    public var size: Int64
    public var mode: UInt16
    /// The target of a symlink or hard link.
    public var linkTarget: String?

    public init(path: String, kind: Kind, size: Int64, mode: UInt16, linkTarget: String? = nil) {
        self.path = path
        self.kind = kind
        self.size = size
        self.mode = mode
        self.linkTarget = linkTarget
    }
}

/// Bounds that keep a hostile bundle from filling the disk.
public struct BundleLimits: Sendable, Equatable {
    public var maxTotalBytes: Int64
    public var maxEntries: Int

    public init(maxTotalBytes: Int64 = 10 << 30, maxEntries: Int = 1_000_000) {
        self.maxTotalBytes = maxTotalBytes
        self.maxEntries = maxEntries
    }

    public static let `default` = BundleLimits()
}

/// Why a bundle could not be read, extracted or created; each case names the file or entry at fault.
public enum BundleError: Error, Sendable, Equatable, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case typeMismatch(path: String, declared: ArchiveFormat, detected: ArchiveFormat)
    case unsafeEntry(path: String, reason: String)
    case limitExceeded(String)
    case corrupt(path: String, reason: String)
    case io(String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason): return "cannot open the bundle \(path): \(reason)"
        case .typeMismatch(let path, let declared, let detected):
            return "the bundle \(path) was declared \(declared.rawValue) but is a \(detected.rawValue) archive"
        case .unsafeEntry(let path, let reason): return "unsafe entry '\(path)': \(reason)"
        case .limitExceeded(let what): return what
        case .corrupt(let path, let reason): return "the bundle \(path) is damaged: \(reason)"
        case .io(let message): return message
        }
    }
}

/// What an extraction wrote.
public struct ExtractionSummary: Sendable, Equatable {
    public var entries: Int
    public var bytes: Int64
}

/// The rules every entry must pass before anything is written (pure; used for listing, validation and extraction).
public struct EntrySafety {
    private var symlinks: Set<String> = []
    private var regularFiles: Set<String> = []
    private var count = 0
    private var declaredBytes: Int64 = 0
    let limits: BundleLimits

    public init(limits: BundleLimits = .default) { self.limits = limits }

    /// The longest entry name accepted (a deployed path must also fit in the host's PATH_MAX with its destination).
    public static let maxPathBytes = 2048

    /// The entry's path with `./` prefixes and trailing slashes removed; empty for the root itself.
    public static func normalize(_ path: String) -> String {
        var p = Substring(path)
        while p.hasPrefix("./") { p = p.dropFirst(2) }
        while p.hasSuffix("/") && p.count > 1 { p = p.dropLast() }
        if p == "." { return "" }
        return String(p)
    }

    static func components(_ path: String) -> [Substring] { path.split(separator: "/", omittingEmptySubsequences: true) }

    /// Whether `target`, resolved from the directory holding `path`, stays inside the bundle.
    public static func staysInside(_ target: String, from path: String) -> Bool {
        if target.hasPrefix("/") { return false }
        var depth = components(path).count - 1
        for part in components(target) {
            if part == ".." {
                depth -= 1
                if depth < 0 { return false }
            } else if part != "." {
                depth += 1
            }
        }
        return true
    }

    /// Checks one entry against the rules and the limits, in archive order.
    public mutating func check(_ entry: BundleEntry) throws(BundleError) {
        let path = entry.path
        count += 1
        if count > limits.maxEntries {
            throw .limitExceeded("the bundle has more than \(limits.maxEntries) entries (the limit); refusing to extract it")
        }
        if entry.size > 0 { declaredBytes += entry.size }
        if declaredBytes > limits.maxTotalBytes {
            throw .limitExceeded(
                "the bundle declares more than \(limits.maxTotalBytes) bytes uncompressed (the limit) by entry '\(path)'; refusing to extract it")
        }
        if path.hasPrefix("/") { throw .unsafeEntry(path: path, reason: "absolute paths are not allowed in a bundle") }
        if path.utf8.count > Self.maxPathBytes {
            throw .unsafeEntry(
                path: String(path.prefix(120)) + "…",
                reason: "the name is \(path.utf8.count) bytes long; entry names are limited to \(Self.maxPathBytes) bytes")
        }
        if path.contains("\0") { throw .unsafeEntry(path: path, reason: "the name contains a NUL character") }
        let parts = Self.components(path)
        if parts.contains("..") { throw .unsafeEntry(path: path, reason: "'..' components would write outside the bundle") }
        var prefix = ""
        for part in parts.dropLast() {
            prefix = prefix.isEmpty ? String(part) : prefix + "/" + part
            if symlinks.contains(prefix) {
                throw .unsafeEntry(path: path, reason: "it would be written through the symlink '\(prefix)'")
            }
        }
        switch entry.kind {
        case .device, .fifo, .socket:
            throw .unsafeEntry(path: path, reason: "\(entry.kind.rawValue) entries are not allowed in a bundle")
        case .symlink:
            // A symlink leading outside (`current -> /etc/myapp`) is kept as a symlink, as the AWS agent keeps it: it
            // is never followed while extracting or installing (nothing is written through it), and validate warns.
            let target = entry.linkTarget ?? ""
            guard !target.isEmpty else { throw .unsafeEntry(path: path, reason: "the symlink has an empty target") }
            if target.contains("\0") { throw .unsafeEntry(path: path, reason: "the symlink target contains a NUL character") }
            symlinks.insert(path)
        case .hardlink:
            let target = Self.normalize(entry.linkTarget ?? "")
            guard !target.isEmpty, !target.hasPrefix("/"), !Self.components(target).contains(".."), regularFiles.contains(target) else {
                throw .unsafeEntry(
                    path: path, reason: "the hard link points outside the bundle or to no earlier file (to '\(entry.linkTarget ?? "")')")
            }
            regularFiles.insert(path)
        case .file:
            regularFiles.insert(path)
            symlinks.remove(path)
        case .directory:
            break
        }
    }
}

/// A libarchive reader over a bundle file, restricted to zip and tar (plain or compressed).
final class ArchiveReader {
    let handle: OpaquePointer
    let path: String

    init(path: String) throws(BundleError) {
        guard let handle = archive_read_new() else {
            throw .io(deployctl_archive_load().map { String(cString: $0) } ?? "libarchive could not allocate a reader")
        }
        self.handle = handle
        self.path = path
        archive_read_support_filter_all(handle)
        archive_read_support_format_zip(handle)
        archive_read_support_format_tar(handle)
        archive_read_support_format_gnutar(handle)
        // A throwing init still runs deinit once every property is set, and deinit frees the handle.
        guard FileManager.default.fileExists(atPath: path) else { throw .cannotOpen(path: path, reason: "no such file") }
        if archive_read_open_filename(handle, path, 1 << 16) != ARCHIVE_OK {
            throw .cannotOpen(path: path, reason: Self.message(handle))
        }
    }

    deinit { archive_read_free(handle) }

    static func message(_ handle: OpaquePointer?) -> String {
        guard let handle, let text = archive_error_string(handle) else { return "unknown libarchive error" }
        return String(cString: text)
    }

    /// The next entry's header, or nil at the end.
    func next() throws(BundleError) -> (OpaquePointer, BundleEntry)? {
        var entry: OpaquePointer?
        let status = archive_read_next_header(handle, &entry)
        if status == ARCHIVE_EOF { return nil }
        guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let entry else {
            throw .corrupt(path: path, reason: Self.message(handle))
        }
        let rawPath =
            archive_entry_pathname_utf8(entry).map { String(cString: $0) }
            ?? archive_entry_pathname(entry).map { String(cString: $0) } ?? ""
        let type = UInt32(archive_entry_filetype(entry))
        var kind: BundleEntry.Kind
        switch type & deployctl_AE_IFMT {
        case deployctl_AE_IFDIR: kind = .directory
        case deployctl_AE_IFLNK: kind = .symlink
        case deployctl_AE_IFCHR, deployctl_AE_IFBLK: kind = .device
        case deployctl_AE_IFIFO: kind = .fifo
        case deployctl_AE_IFSOCK: kind = .socket
        default: kind = .file
        }
        var target: String?
        if let hardlink = archive_entry_hardlink(entry) {
            kind = .hardlink
            target = String(cString: hardlink)
        } else if kind == .symlink, let symlink = archive_entry_symlink(entry) {
            target = String(cString: symlink)
        }
        let normalized = rawPath.hasPrefix("/") ? rawPath : EntrySafety.normalize(rawPath)
        let info = BundleEntry(
            path: normalized, kind: kind, size: archive_entry_size_is_set(entry) != 0 ? archive_entry_size(entry) : 0,
            mode: UInt16(truncatingIfNeeded: archive_entry_perm(entry)), linkTarget: target)
        return (entry, info)
    }

    /// The entry's access and modification times for `futimens` (the access time is the modification time when
    /// the archive has none), or nil when it records no modification time.
    static func times(of entry: OpaquePointer) -> (timespec, timespec)? {
        guard archive_entry_mtime_is_set(entry) != 0 else { return nil }
        let modified = timespec(tv_sec: archive_entry_mtime(entry), tv_nsec: Int(archive_entry_mtime_nsec(entry)))
        guard archive_entry_atime_is_set(entry) != 0 else { return (modified, modified) }
        return (timespec(tv_sec: archive_entry_atime(entry), tv_nsec: Int(archive_entry_atime_nsec(entry))), modified)
    }

    /// The bundle type, known once the first header has been read.
    var detectedType: ArchiveFormat? {
        let format = archive_format(handle) & ARCHIVE_FORMAT_BASE_MASK
        if format == ARCHIVE_FORMAT_ZIP { return .zip }
        if format == ARCHIVE_FORMAT_TAR {
            return archive_filter_code(handle, 0) == ARCHIVE_FILTER_NONE ? .tar : .tgz
        }
        return nil
    }

    func checkDeclared(_ declared: ArchiveFormat?) throws(BundleError) {
        guard let declared, let detected = detectedType else { return }
        // A gzip-compressed tar declared `tar` works with the CodeDeploy agent too (GNU tar detects it).
        if declared == detected || (declared == .tar && detected == .tgz) { return }
        throw .typeMismatch(path: path, declared: declared, detected: detected)
    }
}

/// Reading, extracting and creating revision bundles.
public enum BundleArchive {
    /// The type of the bundle at `path`, read from its content.
    public static func detectType(of path: String) throws(BundleError) -> ArchiveFormat {
        let reader = try ArchiveReader(path: path)
        _ = try reader.next()
        guard let type = reader.detectedType else { throw .corrupt(path: path, reason: "it is empty or not a zip or tar archive") }
        return type
    }

    /// Every entry of the bundle, checked against the safety rules and limits; nothing is written.
    public static func entries(of path: String, declaredType: ArchiveFormat? = nil, limits: BundleLimits = .default) throws(BundleError)
        -> [BundleEntry]
    {
        let reader = try ArchiveReader(path: path)
        var safety = EntrySafety(limits: limits)
        var result: [BundleEntry] = []
        var first = true
        while let (_, entry) = try reader.next() {
            if first {
                try reader.checkDeclared(declaredType)
                first = false
            }
            try safety.check(entry)
            if !entry.path.isEmpty { result.append(entry) }
            if archive_read_data_skip(reader.handle) != ARCHIVE_OK {
                throw .corrupt(path: path, reason: ArchiveReader.message(reader.handle))
            }
        }
        if first, reader.detectedType == nil { throw .corrupt(path: path, reason: "it is empty or not a zip or tar archive") }
        return result
    }

    /// Extracts the bundle into `directory`, which must not exist yet or be empty.
    ///
    /// Entries are checked before each is written, and written below a fresh staging directory beside the target
    /// that is renamed into place at the end, so a refused or failed extraction leaves nothing behind.
    @discardableResult
    public static func extract(
        _ path: String, declaredType: ArchiveFormat? = nil, into directory: String, limits: BundleLimits = .default
    ) throws(BundleError) -> ExtractionSummary {
        let fm = FileManager.default
        let target = URL(fileURLWithPath: directory).standardizedFileURL.path
        if fm.fileExists(atPath: target), let contents = try? fm.contentsOfDirectory(atPath: target), !contents.isEmpty {
            throw .io("cannot extract into \(target): the directory is not empty")
        }
        let parent = (target as NSString).deletingLastPathComponent
        do {
            try fm.createDirectory(atPath: parent, withIntermediateDirectories: true)
        } catch {
            throw .io("cannot create \(parent): \(error.localizedDescription)")
        }
        let staging = target + ".partial-\(UUID().uuidString.prefix(8))"
        do {
            try fm.createDirectory(atPath: staging, withIntermediateDirectories: false)
        } catch {
            throw .io("cannot create \(staging): \(error.localizedDescription)")
        }
        do throws(BundleError) {
            let summary = try extractEntries(path, declaredType: declaredType, staging: staging, limits: limits)
            if fm.fileExists(atPath: target) { try? fm.removeItem(atPath: target) }
            guard rename(staging, target) == 0 else {
                throw BundleError.io("cannot move the extracted bundle to \(target): \(String(cString: strerror(errno)))")
            }
            return summary
        } catch {
            try? fm.removeItem(atPath: staging)
            throw error
        }
    }

    private static func extractEntries(_ path: String, declaredType: ArchiveFormat?, staging: String, limits: BundleLimits) throws(BundleError)
        -> ExtractionSummary
    {
        let reader = try ArchiveReader(path: path)
        let lanes = [try ExtractionLane(root: staging), try ExtractionLane(root: staging)]
        lanes.forEach { $0.start() }
        var finished = false
        func finishLanes() throws(BundleError) {
            guard !finished else { return }
            finished = true
            let failures = lanes.compactMap { $0.finish() }
            if let failure = failures.first { throw failure }
        }
        defer { try? finishLanes() }
        var safety = EntrySafety(limits: limits)
        var summary = ExtractionSummary(entries: 0, bytes: 0)
        var directories: [DirectoryFixup] = []
        var hardlinks: [(path: String, target: String)] = []
        var first = true
        while let (entry, info) = try reader.next() {
            if first {
                try reader.checkDeclared(declaredType)
                first = false
            }
            try safety.check(info)
            if info.path.isEmpty {
                _ = archive_read_data_skip(reader.handle)
                continue
            }
            let lane = lanes[Int(UInt(bitPattern: info.path.hashValue) % UInt(lanes.count))]
            let times = ArchiveReader.times(of: entry)
            let mode = mode_t(info.mode & 0o1777)
            switch info.kind {
            case .directory:
                directories.append(DirectoryFixup(path: info.path, mode: mode, times: times))
                try lane.push(.directory(path: info.path))
            case .symlink:
                try lane.push(.symlink(path: info.path, target: info.linkTarget ?? "", times: times))
            case .hardlink:
                // Linked once every lane is done: its file may be written by the other lane.
                hardlinks.append((info.path, EntrySafety.normalize(info.linkTarget ?? "")))
            case .file:
                try lane.push(.fileStart(path: info.path))
                var buffer: UnsafeRawPointer?
                var size = 0
                var offset: la_int64_t = 0
                while true {
                    let status = archive_read_data_block(reader.handle, &buffer, &size, &offset)
                    if status == ARCHIVE_EOF { break }
                    guard status == ARCHIVE_OK || status == ARCHIVE_WARN else {
                        throw .corrupt(path: path, reason: "entry '\(info.path)': \(ArchiveReader.message(reader.handle))")
                    }
                    summary.bytes += Int64(size)
                    if summary.bytes > limits.maxTotalBytes {
                        throw .limitExceeded(
                            "the bundle expands to more than \(limits.maxTotalBytes) bytes (the limit) at entry '\(info.path)'; refusing to extract it"
                        )
                    }
                    guard let buffer, size > 0 else { continue }
                    try lane.push(.fileData(bytes: Array(UnsafeRawBufferPointer(start: buffer, count: size)), offset: Int64(offset)))
                }
                try lane.push(.fileEnd(path: info.path, size: info.size, mode: mode, times: times))
            case .device, .fifo, .socket:
                throw .unsafeEntry(path: info.path, reason: "\(info.kind.rawValue) entries are not allowed in a bundle")
            }
            summary.entries += 1
        }
        try finishLanes()
        let writer = try DiskWriter(root: staging)
        for link in hardlinks {
            try writer.hardlink(link.path, to: link.target)
            writer.limitOpenDirectories()
        }
        try writer.applyDirectoryModes(directories)
        if first, reader.detectedType == nil { throw .corrupt(path: path, reason: "it is empty or not a zip or tar archive") }
        return summary
    }
}

extension BundleArchive {
    /// The content of one regular file of the bundle (at most `maxBytes`), without extracting anything else.
    public static func readFile(_ path: String, entry wanted: String, maxBytes: Int) throws(BundleError) -> Data {
        let reader = try ArchiveReader(path: path)
        while let (_, entry) = try reader.next() {
            guard entry.path == wanted, entry.kind == .file else {
                _ = archive_read_data_skip(reader.handle)
                continue
            }
            var data = Data()
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let count = chunk.withUnsafeMutableBytes { archive_read_data(reader.handle, $0.baseAddress, $0.count) }
                if count < 0 { throw .corrupt(path: path, reason: "entry '\(wanted)': \(ArchiveReader.message(reader.handle))") }
                if count == 0 { break }
                data.append(contentsOf: chunk[0..<count])
                if data.count > maxBytes { throw .limitExceeded("'\(wanted)' is larger than \(maxBytes) bytes") }
            }
            return data
        }
        throw .io("'\(wanted)' is not in the bundle \(path)")
    }
}

extension BundleArchive {
    /// Every entry of a revision directory, checked against the same rules and limits as a bundle's entries.
    /// Symlinks are entries (their targets are checked), never followed.
    public static func entries(ofDirectory root: String, limits: BundleLimits = .default) throws(BundleError) -> [BundleEntry] {
        let (entries, problems) = try checkedEntries(ofDirectory: root, limits: limits)
        if let first = problems.first { throw first }
        return entries
    }

    /// Like ``entries(ofDirectory:limits:)``, but collects every unsafe entry instead of stopping at the first;
    /// only an unreadable directory or an exceeded limit throws. Unsafe entries are left out of `entries`.
    public static func checkedEntries(ofDirectory root: String, limits: BundleLimits = .default) throws(BundleError) -> (
        entries: [BundleEntry], problems: [BundleError]
    ) {
        var problems: [BundleError] = []
        var safety = EntrySafety(limits: limits)
        var result: [BundleEntry] = []
        var pending = [""]
        while let relative = pending.popLast() {
            let absolute = relative.isEmpty ? root : root + "/" + relative
            let names: [String]
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: absolute)
            } catch {
                throw .cannotOpen(path: absolute, reason: "cannot list the directory (\(error.localizedDescription))")
            }
            var directories: [String] = []
            for name in names.sorted() {
                let path = relative.isEmpty ? name : relative + "/" + name
                var info = stat()
                guard lstat(root + "/" + path, &info) == 0 else {
                    throw .io("cannot read \(root)/\(path): \(String(cString: strerror(errno)))")
                }
                var entry = BundleEntry(path: path, kind: .file, size: Int64(info.st_size), mode: UInt16(info.st_mode & 0o7777))
                switch info.st_mode & S_IFMT {
                case S_IFDIR:
                    entry.kind = .directory
                    entry.size = 0
                    directories.append(path)
                case S_IFLNK:
                    entry.kind = .symlink
                    entry.size = 0
                    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                    let count = readlink(root + "/" + path, &buffer, buffer.count - 1)
                    guard count >= 0 else { throw .io("cannot read the symlink \(root)/\(path): \(String(cString: strerror(errno)))") }
                    entry.linkTarget = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                case S_IFREG: entry.kind = .file
                case S_IFIFO: entry.kind = .fifo
                case S_IFSOCK: entry.kind = .socket
                default: entry.kind = .device
                }
                do {
                    try safety.check(entry)
                    result.append(entry)
                } catch {
                    if case .limitExceeded = error { throw error }
                    problems.append(error)
                    directories.removeAll { $0 == path }
                }
            }
            pending.append(contentsOf: directories.reversed())
        }
        return (result, problems)
    }

    /// Copies a revision directory into `directory` (which must not exist yet or be empty) under the same rules as
    /// an extraction: every entry is checked first, symlinks are copied as symlinks and never followed, and the copy
    /// is made in a staging directory renamed into place, so a refused revision leaves nothing behind.
    public static func copyDirectory(_ source: String, into directory: String, limits: BundleLimits = .default) throws(BundleError) {
        let root = URL(fileURLWithPath: source).standardizedFileURL.path
        let entries = try entries(ofDirectory: root, limits: limits)
        let fm = FileManager.default
        let target = URL(fileURLWithPath: directory).standardizedFileURL.path
        if fm.fileExists(atPath: target), let contents = try? fm.contentsOfDirectory(atPath: target), !contents.isEmpty {
            throw .io("cannot copy into \(target): the directory is not empty")
        }
        let staging = target + ".partial-\(UUID().uuidString.prefix(8))"
        guard mkdir(staging, 0o700) == 0 else { throw .io("cannot create \(staging): \(String(cString: strerror(errno)))") }
        do throws(BundleError) {
            var buffer = DescriptorCopy.buffer()
            var total: Int64 = 0
            for entry in entries {
                let from = root + "/" + entry.path
                let to = staging + "/" + entry.path
                switch entry.kind {
                case .directory:
                    guard mkdir(to, 0o700) == 0 else { throw .io("cannot create \(to): \(String(cString: strerror(errno)))") }
                case .symlink:
                    guard symlink(entry.linkTarget ?? "", to) == 0 else {
                        throw .io("cannot create the symlink \(to): \(String(cString: strerror(errno)))")
                    }
                default:
                    total += try copyFile(from, to: to, mode: mode_t(entry.mode), buffer: &buffer)
                    if total > limits.maxTotalBytes {
                        throw .limitExceeded("the revision holds more than \(limits.maxTotalBytes) bytes (the limit) at '\(entry.path)'")
                    }
                }
            }
            // Directory modes last (deepest first), so a read-only directory is still filled.
            for entry in entries.reversed() where entry.kind == .directory {
                chmod(staging + "/" + entry.path, mode_t(entry.mode))
            }
            chmod(staging, 0o755)
            if fm.fileExists(atPath: target) { try? fm.removeItem(atPath: target) }
            guard rename(staging, target) == 0 else {
                throw .io("cannot move the copied revision to \(target): \(String(cString: strerror(errno)))")
            }
        } catch {
            try? fm.removeItem(atPath: staging)
            throw error
        }
    }

    private static func copyFile(_ source: String, to target: String, mode: mode_t, buffer: inout [UInt8]) throws(BundleError) -> Int64 {
        let input = open(source, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC)
        guard input >= 0 else { throw .io("cannot read \(source): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        var info = stat()
        guard fstat(input, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw .unsafeEntry(path: source, reason: "it changed into something other than a regular file while being copied")
        }
        let output = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard output >= 0 else { throw .io("cannot create \(target): \(String(cString: strerror(errno)))") }
        defer { close(output) }
        let total: Int64
        do {
            total = try DescriptorCopy.copy(from: input, to: output, buffer: &buffer)
        } catch {
            throw .io(error.describe(reading: source, writing: target))
        }
        fchmod(output, mode)
        var times = [info.st_atim, info.st_mtim]
        futimens(output, &times)
        return total
    }
}

/// Copies what is left of one descriptor to another with plain reads and writes (the fallback where the kernel
/// cannot copy in place), so extraction, directory revisions and the installer share one loop.
public enum DescriptorCopy {
    public enum Failure: Error {
        case read(Int32)
        case write(Int32)

        public func describe(reading source: String, writing target: String) -> String {
            switch self {
            case .read(let code): return "cannot read \(source): \(String(cString: strerror(code)))"
            case .write(let code): return "cannot write \(target): \(String(cString: strerror(code)))"
            }
        }
    }

    /// A copy buffer whose pages are not touched until `read` fills them: a `[UInt8](repeating: 0, count:)` of
    /// 1 MiB costs 256 page faults and 1 MiB of resident memory even when it copies a 20-byte file.
    public static func buffer(bytes: Int = 1 << 20) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: bytes) { _, count in count = bytes }
    }

    /// Returns the bytes copied.
    @discardableResult
    public static func copy(from input: Int32, to output: Int32, buffer: inout [UInt8]) throws(Failure) -> Int64 {
        var total: Int64 = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            if count < 0 { throw .read(errno) }
            if count == 0 { return total }
            try write(buffer[..<count], to: output)
            total += Int64(count)
        }
    }

    /// Writes all of `bytes` to `output`, through short writes and interruptions.
    public static func write(_ bytes: ArraySlice<UInt8>, to output: Int32) throws(Failure) {
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { raw in Glibc.write(output, raw.baseAddress.map { $0 + written }, raw.count - written) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw .write(n < 0 ? errno : EIO) }
            written += n
        }
    }
}
