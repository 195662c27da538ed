import CAgentSupport
import Foundation

/// A directory that paths are resolved inside, component by component, so that no symlink, `..` or race leads
/// out of it (SECURITY.md). The installer, the cleanup of a previous install and the permissions step reach every
/// destination through one; hook scripts, `files` sources and the appspec are reached through one on the
/// deployment archive.
///
/// Every operation works on a descriptor of the parent directory (`mkdirat`, `openat(O_EXCL|O_NOFOLLOW)`,
/// `unlinkat`, `symlinkat`), so the last component is never followed either.
public struct ConfinedRoot: Sendable {
    /// How symlinks met on the way are treated.
    public enum Policy: Sendable, Equatable {
        /// The directory is `/` for every path and symlink (as in a chroot): an install root.
        case inRoot
        /// A step that would leave the directory (`..`, an absolute or escaping symlink) is refused: a revision.
        case beneath
        /// The host's real `/`: the system's own symlinks (`/var/run`) are followed, but never one that a
        /// deployment installed (`placed`, read from the cleanup lists) nor one this install creates.
        case host(placed: Set<String>)
    }

    /// The directory; `/` for the host root.
    public let path: String
    public let policy: Policy

    public init(path: String, policy: Policy) {
        self.path = path.isEmpty ? "/" : path
        self.policy = policy
    }

    /// Why a path could not be reached inside the root.
    public struct Refusal: Error, Sendable, CustomStringConvertible {
        public var path: String
        public var reason: String
        /// The path does not exist (a missing component); other refusals are confinement or I/O failures.
        public var missing: Bool
        public var description: String { "\(path): \(reason)" }
    }

    static func components(_ relative: String) -> [String] {
        relative.split(separator: "/").map(String.init).filter { $0 != "." && !$0.isEmpty }
    }

    /// The display path of `relative` (what logs and cleanup lists name).
    public func display(_ relative: String) -> String {
        let parts = Self.components(relative).joinedPath()
        return path == "/" ? "/" + parts : (parts.isEmpty ? path : path + "/" + parts)
    }

    func refusal(_ relative: String, _ code: Int32) -> Refusal {
        let shown = display(relative)
        switch code {
        case EXDEV:
            return Refusal(path: shown, reason: "the path leads outside \(path) (through '..' or a symlink)", missing: false)
        case ELOOP:
            return Refusal(path: shown, reason: "a symlink is in the way and is not followed", missing: false)
        case ENOENT:
            return Refusal(path: shown, reason: "no such file or directory", missing: true)
        case ENOTDIR:
            return Refusal(path: shown, reason: "a component is not a directory", missing: true)
        default:
            return Refusal(path: shown, reason: String(cString: strerror(code)), missing: false)
        }
    }

    /// Opens the directory `relative` (components of a path inside the root) as an `O_PATH` descriptor.
    public func openDirectory(_ relative: String) throws(Refusal) -> Int32 {
        let parts = Self.components(relative)
        let rootFD = open(path, deployctl_o_path() | deployctl_o_directory() | O_CLOEXEC)
        guard rootFD >= 0 else { throw refusal("", errno) }
        if parts.isEmpty { return rootFD }
        switch policy {
        case .inRoot, .beneath:
            defer { close(rootFD) }
            let resolve = policy == .inRoot ? deployctl_resolve_in_root() : deployctl_resolve_beneath()
            let fd = deployctl_openat2(rootFD, parts.joinedPath(), deployctl_o_path() | deployctl_o_directory(), 0, resolve)
            guard fd >= 0 else { throw refusal(relative, errno) }
            return fd
        case .host(let placed):
            var fd = rootFD
            var real = path == "/" ? "" : path
            for part in parts {
                var info = stat()
                guard fstatat(fd, part, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                    let code = errno
                    close(fd)
                    throw refusal(relative, code)
                }
                let candidate = real + "/" + part
                let next: Int32
                if info.st_mode & S_IFMT == S_IFLNK {
                    if placed.contains(candidate) {
                        close(fd)
                        throw Refusal(
                            path: display(relative),
                            reason: "\(candidate) is a symlink that a deployment installed; deployctl never writes through it",
                            missing: false)
                    }
                    next = openat(fd, part, deployctl_o_path() | deployctl_o_directory() | O_CLOEXEC)
                } else {
                    next = openat(fd, part, deployctl_o_path() | deployctl_o_directory() | deployctl_o_nofollow() | O_CLOEXEC)
                }
                let code = errno
                close(fd)
                guard next >= 0 else { throw refusal(relative, code) }
                fd = next
                real = info.st_mode & S_IFMT == S_IFLNK ? (Self.realPath(of: fd) ?? candidate) : candidate
            }
            return fd
        }
    }

    /// The parent directory of `relative` as a descriptor, and the last component's name.
    public func openParent(_ relative: String) throws(Refusal) -> (fd: Int32, name: String) {
        var parts = Self.components(relative)
        guard let name = parts.popLast() else {
            throw Refusal(path: display(relative), reason: "the root itself cannot be written", missing: false)
        }
        return (try openDirectory(parts.joinedPath()), name)
    }

    /// `lstat` of `relative`, or nil when it (or a directory on its way) does not exist.
    public func lstat(_ relative: String) throws(Refusal) -> stat? {
        if Self.components(relative).isEmpty {
            var info = stat()
            return statPath(path, &info) == 0 ? info : nil
        }
        return try OpenDirectories(self).lstat(relative)
    }

    /// Opens `relative` itself without following a last symlink (`O_PATH` unless `flags` say otherwise).
    public func openEntry(_ relative: String, flags: Int32 = deployctl_o_path()) throws(Refusal) -> Int32 {
        try OpenDirectories(self).openEntry(relative, flags: flags)
    }

    /// Reads a regular file inside the root (a last-component symlink is refused), at most `maxBytes`.
    public func readFile(_ relative: String, maxBytes: Int) throws(Refusal) -> Data {
        let fd = try openEntry(relative, flags: O_RDONLY | O_NONBLOCK)
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw Refusal(path: display(relative), reason: "not a regular file", missing: false)
        }
        guard info.st_size <= maxBytes else {
            throw Refusal(path: display(relative), reason: "larger than \(maxBytes) bytes", missing: false)
        }
        var data = Data(count: Int(info.st_size))
        var total = 0
        while total < data.count {
            let n = data.withUnsafeMutableBytes { raw in raw.baseAddress.map { read(fd, $0 + total, raw.count - total) } ?? 0 }
            if n <= 0 { break }
            total += n
        }
        return data.prefix(total)
    }

    /// The path the kernel knows for an open descriptor.
    public static func realPath(of fd: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A path that names exactly the inode behind `fd`, for tools run as child processes (setfacl, chcon).
    public static func procPath(of fd: Int32) -> String { "/proc/\(getpid())/fd/\(fd)" }
}

/// `stat(2)` by path (inside types where `stat` names the struct).
func statPath(_ path: String, _ info: inout stat) -> Int32 { stat(path, &info) }

/// The directories of one ``ConfinedRoot`` that a step has reached, kept open for the entries inside them: a
/// 10,000-file install opens each directory once instead of resolving every file's whole path again. Used by one
/// thread for one step; a descriptor it returns is valid until the next call.
public final class OpenDirectories {
    public let root: ConfinedRoot
    private var open: [String: Int32] = [:]
    static let limit = 256

    public init(_ root: ConfinedRoot) { self.root = root }

    deinit { for fd in open.values { close(fd) } }

    /// The parent directory of `relative` (resolved as ``ConfinedRoot/openDirectory(_:)`` does), and its last component.
    public func parent(_ relative: String) throws(ConfinedRoot.Refusal) -> (fd: Int32, name: String) {
        var parts = ConfinedRoot.components(relative)
        guard let name = parts.popLast() else {
            throw ConfinedRoot.Refusal(path: root.display(relative), reason: "the root itself cannot be written", missing: false)
        }
        let key = parts.joinedPath()
        if let fd = open[key] { return (fd, name) }
        if open.count >= Self.limit {
            for fd in open.values { close(fd) }
            open.removeAll(keepingCapacity: true)
        }
        let fd = try root.openDirectory(key)
        open[key] = fd
        return (fd, name)
    }

    /// Opens `relative` itself without following a last symlink (`O_PATH` unless `flags` say otherwise); the caller
    /// closes it.
    public func openEntry(_ relative: String, flags: Int32 = deployctl_o_path()) throws(ConfinedRoot.Refusal) -> Int32 {
        let found = try parent(relative)
        let fd = openat(found.fd, found.name, flags | deployctl_o_nofollow() | O_CLOEXEC)
        guard fd >= 0 else { throw root.refusal(relative, errno) }
        return fd
    }

    /// `lstat` of `relative`, or nil when it (or a directory on its way) does not exist.
    public func lstat(_ relative: String) throws(ConfinedRoot.Refusal) -> stat? {
        if ConfinedRoot.components(relative).isEmpty { return try root.lstat(relative) }
        let found: (fd: Int32, name: String)
        do {
            found = try parent(relative)
        } catch {
            if error.missing { return nil }
            throw error
        }
        var info = stat()
        return fstatat(found.fd, found.name, &info, AT_SYMLINK_NOFOLLOW) == 0 ? info : nil
    }
}

extension Sequence<String> {
    /// The components joined with "/": `joined(separator: "/")`, which the standard library runs unspecialized here,
    /// so its first call costs a conformance scan of the whole binary (issue 12: a trivial `deployctl local` made two).
    func joinedPath() -> String {
        var path = ""
        for (index, component) in enumerated() {
            if index > 0 { path += "/" }
            path += component
        }
        return path
    }
}
