import Foundation

/// Writes checked bundle entries below a directory this process has just created, one path component at a time
/// from descriptors it opened itself (`mkdirat`, `openat` with `O_NOFOLLOW | O_EXCL`, `symlinkat`, `linkat`): no
/// symlink is ever followed, so nothing lands outside the directory even when a bundle holds `current -> /etc`.
///
/// The directories it has opened stay open (up to ``maxOpenDirectories``), so an entry costs one `openat` of its
/// own rather than one per component of its path; libarchive's disk writer walked and `lstat`ed every component
/// of the absolute path for each entry (9 `openat` and 8 `fstatat` per file of a 10,000-file bundle).
///
/// Directory modes and times are applied by ``applyDirectoryModes(_:)``, deepest first, once everything inside them
/// is written, as `tar` does: a read-only directory in a bundle can still receive its files.
final class DiskWriter {
    static let maxOpenDirectories = 512

    /// The directory written into (for messages).
    let root: String
    private let rootFD: Int32
    private var open: [String: Int32] = [:]

    init(root: String) throws(BundleError) {
        self.root = root
        rootFD = Glibc.open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard rootFD >= 0 else { throw .io("cannot open \(root): \(String(cString: strerror(errno)))") }
    }

    deinit {
        for fd in open.values { close(fd) }
        close(rootFD)
    }

    private func failure(_ path: String, _ action: String, _ code: Int32) -> BundleError {
        switch code {
        case ELOOP, ENOTDIR:
            return .unsafeEntry(path: path, reason: "a component of its path is a symlink or a file in the bundle, and is not followed")
        default:
            return .io("cannot \(action) '\(path)' in \(root): \(String(cString: strerror(code)))")
        }
    }

    /// The directory `relative` (created with mode 0755 where missing), as a descriptor this writer keeps open.
    func directory(_ relative: Substring) throws(BundleError) -> Int32 {
        if relative.isEmpty { return rootFD }
        if let fd = open[String(relative)] { return fd }
        let parentFD: Int32
        let name: Substring
        if let slash = relative.lastIndex(of: "/") {
            parentFD = try directory(relative[..<slash])
            name = relative[relative.index(after: slash)...]
        } else {
            parentFD = rootFD
            name = relative
        }
        let component = String(name)
        if mkdirat(parentFD, component, 0o755) != 0, errno != EEXIST {
            throw failure(String(relative), "create the directory", errno)
        }
        let fd = openat(parentFD, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw failure(String(relative), "open the directory", errno) }
        open[String(relative)] = fd
        return fd
    }

    /// Closes the directories kept open once there are more than ``maxOpenDirectories``; called between entries,
    /// never while a descriptor from ``directory(_:)`` is in use.
    func limitOpenDirectories() {
        guard open.count > Self.maxOpenDirectories else { return }
        for fd in open.values { close(fd) }
        open.removeAll(keepingCapacity: true)
    }

    private func parent(of path: String) throws(BundleError) -> (fd: Int32, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (rootFD, path) }
        return (try directory(path[..<slash]), String(path[path.index(after: slash)...]))
    }

    /// Runs `create` once, and again after removing what was in the way when that was not a directory (a later
    /// entry of an archive replaces an earlier one, as with `tar -x`).
    private func replacing(_ path: String, in parentFD: Int32, _ name: String, _ action: String, _ create: () -> Int32) throws(BundleError) -> Int32 {
        var result = create()
        if result < 0, errno == EEXIST {
            var info = stat()
            if fstatat(parentFD, name, &info, AT_SYMLINK_NOFOLLOW) == 0, info.st_mode & S_IFMT == S_IFDIR {
                throw .unsafeEntry(path: path, reason: "it would replace a directory of the same name earlier in the bundle")
            }
            guard unlinkat(parentFD, name, 0) == 0 else { throw failure(path, action, errno) }
            result = create()
        }
        guard result >= 0 else { throw failure(path, action, errno) }
        return result
    }

    /// Creates the directory `path` (and any missing parent); its own mode and times are applied by
    /// ``applyDirectoryModes(_:)`` once everything inside it is written.
    func makeDirectory(_ path: String) throws(BundleError) {
        _ = try directory(Substring(path))
    }

    /// Creates the regular file `path` for writing (mode 0600 until ``finishFile`` sets the entry's own).
    func createFile(_ path: String) throws(BundleError) -> Int32 {
        let (parentFD, name) = try parent(of: path)
        return try replacing(path, in: parentFD, name, "create") {
            openat(parentFD, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        }
    }

    /// Sets the size (a sparse tail), mode and times of a file from ``createFile``, and closes it.
    func finishFile(_ fd: Int32, path: String, size: Int64, written: Int64, mode: mode_t, times: (timespec, timespec)?) throws(BundleError) {
        defer { close(fd) }
        if size > written, ftruncate(fd, off_t(size)) != 0 { throw failure(path, "write", errno) }
        guard fchmod(fd, mode) == 0 else { throw failure(path, "set the mode of", errno) }
        if var pair = times {
            let status = withUnsafePointer(to: &pair) { $0.withMemoryRebound(to: timespec.self, capacity: 2) { futimens(fd, $0) } }
            guard status == 0 else { throw failure(path, "set the times of", errno) }
        }
    }

    func symlink(_ path: String, to target: String, times: (timespec, timespec)?) throws(BundleError) {
        let (parentFD, name) = try parent(of: path)
        _ = try replacing(path, in: parentFD, name, "create the symlink") { symlinkat(target, parentFD, name) }
        if var pair = times {
            _ = withUnsafePointer(to: &pair) {
                $0.withMemoryRebound(to: timespec.self, capacity: 2) { utimensat(parentFD, name, $0, AT_SYMLINK_NOFOLLOW) }
            }
        }
    }

    /// A hard link to `target`, an earlier regular file of the bundle (``EntrySafety`` checked that).
    func hardlink(_ path: String, to target: String) throws(BundleError) {
        let (targetFD, targetName) = try parent(of: target)
        let (parentFD, name) = try parent(of: path)
        _ = try replacing(path, in: parentFD, name, "create the hard link") { linkat(targetFD, targetName, parentFD, name, 0) }
    }

    /// Applies the directories' own modes and times, deepest first.
    func applyDirectoryModes(_ fixups: [DirectoryFixup]) throws(BundleError) {
        for fixup in fixups.sorted(by: { $0.path.utf8.count > $1.path.utf8.count }) {
            let fd = try directory(Substring(fixup.path))
            guard fchmod(fd, fixup.mode) == 0 else { throw failure(fixup.path, "set the mode of", errno) }
            if var pair = fixup.times {
                _ = withUnsafePointer(to: &pair) { $0.withMemoryRebound(to: timespec.self, capacity: 2) { futimens(fd, $0) } }
            }
            limitOpenDirectories()
        }
    }
}

/// A directory entry's own mode and times, applied after its contents are written.
struct DirectoryFixup {
    var path: String
    var mode: mode_t
    var times: (timespec, timespec)?
}
