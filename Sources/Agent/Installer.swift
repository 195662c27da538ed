import AppSpec
import Bundles
import CAgentSupport
import DeployModel
import Foundation

/// What one `files` step will do: directories to create and entries to copy, decided before anything is touched.
public struct InstallPlan: Sendable, Equatable {
    public struct Copy: Sendable, Equatable {
        public var source: String
        public var destination: String
        /// The destination exists and is replaced (OVERWRITE).
        public var replaces: Bool
    }
    public var directories: [String] = []
    public var copies: [Copy] = []
    /// Destinations left as they are (RETAIN).
    public var retained: [String] = []
    /// Destinations that exist and were not ours (the DISALLOW conflicts).
    public var conflicts: [String] = []
    /// The deployment archive the sources are in.
    public var archive: String = ""
}

/// Installs a revision's files and permissions, and removes what the previous install of the group created.
///
/// Every destination is reached through `target`, a ``ConfinedRoot``: with an install root nothing leads out of
/// it; on the host's real root no symlink that a deployment installed is ever written through. Sources are read
/// through a ``ConfinedRoot`` on the deployment archive that refuses anything leading out of the revision.
public struct Installer: Sendable {
    /// Prefixed to every destination (as `DESTDIR` is for `make install`); empty for the real root.
    public var installRoot: String
    /// Where destinations are resolved.
    public var target: ConfinedRoot

    /// `placedSymlinks`: on the real root, the symlinks earlier deployments installed (``placedSymlinks(in:)``).
    public init(installRoot: String?, placedSymlinks: Set<String> = []) {
        var root = installRoot.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? ""
        if root == "/" { root = "" }
        self.installRoot = root
        target = root.isEmpty ? ConfinedRoot(path: "/", policy: .host(placed: placedSymlinks)) : ConfinedRoot(path: root, policy: .inRoot)
    }

    public func destination(_ path: String) -> String {
        let normalized = URL(fileURLWithPath: path).standardizedFileURL.path
        return installRoot + normalized
    }

    /// The path inside the install root of a destination (as `destination(_:)` gives it), nil when it is not in it.
    func relative(_ destination: String) -> String? {
        if installRoot.isEmpty { return destination }
        if destination == installRoot { return "" }
        guard destination.hasPrefix(installRoot + "/") else { return nil }
        return String(destination.dropFirst(installRoot.count))
    }

    func confined(_ destination: String) throws(AgentError) -> String {
        guard let path = relative(destination) else { throw .install("\(destination) is outside the install root \(installRoot)") }
        return path
    }

    func lstatDestination(_ destination: String, in targets: OpenDirectories) throws(AgentError) -> stat? {
        let inside = try confined(destination)
        do {
            return try targets.lstat(inside)
        } catch {
            throw .install("cannot install to \(error.path): \(error.reason)")
        }
    }

    /// The parent directory of `destination`, from `targets` (valid until its next call), and the last component.
    func openParent(_ destination: String, in targets: OpenDirectories) throws(AgentError) -> (fd: Int32, name: String) {
        let inside = try confined(destination)
        do {
            return try targets.parent(inside)
        } catch {
            throw .install("cannot install to \(error.path): \(error.reason)")
        }
    }

    /// The symlinks that deployments recorded in the cleanup lists of a deployment root and that still exist:
    /// on the real root, the installer never writes through them.
    public static func placedSymlinks(in instructionsDirectory: String) -> Set<String> {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: instructionsDirectory)) ?? []
        var placed = Set<String>()
        for file in files where file.hasSuffix("-cleanup") {
            for path in listed(in: instructionsDirectory + "/" + file) {
                var info = stat()
                if Glibc.lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFLNK { placed.insert(path) }
            }
        }
        return placed
    }

    // MARK: Cleanup of the previous install

    /// The paths a cleanup list names (without its torn last line).
    public static func listed(in cleanupList: String) -> [String] {
        guard let text = try? String(contentsOfFile: cleanupList, encoding: .utf8) else { return [] }
        var lines = text.components(separatedBy: "\n")
        // The piece after the last newline is either empty or a torn write: drop it either way.
        lines.removeLast()
        return lines.filter { !$0.isEmpty }
    }

    /// Removes, newest first, what the cleanup list names: files and symlinks, and directories once empty. Each
    /// path is resolved inside the install root like an install (a path outside it, or reached through a symlink
    /// a deployment placed, is left alone). Returns the paths removed.
    @discardableResult
    public func removePrevious(cleanupList: String, keeping kept: Set<String> = []) -> [String] {
        var removed: [String] = []
        for path in Self.listed(in: cleanupList).reversed() where !kept.contains(path) {
            guard let inside = relative(path), let parent = try? target.openParent(inside) else { continue }
            defer { close(parent.fd) }
            var info = stat()
            guard fstatat(parent.fd, parent.name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            let flags = info.st_mode & S_IFMT == S_IFDIR ? AT_REMOVEDIR : 0
            if unlinkat(parent.fd, parent.name, flags) == 0 { removed.append(path) }
        }
        try? FileManager.default.removeItem(atPath: cleanupList)
        return removed
    }

    /// The files the previous install created that `plan` would install again byte for byte (same size, mode and
    /// content as their source): a redeploy leaves them in place instead of removing and copying them again.
    public func unchanged(_ plan: InstallPlan, previous: Set<String>) -> Set<String> {
        let revision = ConfinedRoot(path: plan.archive, policy: .beneath)
        var same = Set<String>()
        // Allocated at the first comparison: a redeploy with nothing to compare touches no buffer.
        var left: [UInt8] = []
        var right: [UInt8] = []
        let targets = OpenDirectories(target)
        let sources = OpenDirectories(revision)
        for copy in plan.copies where previous.contains(copy.destination) {
            guard let inside = relative(copy.destination), let target = try? targets.openEntry(inside, flags: O_RDONLY | O_NONBLOCK) else { continue }
            defer { close(target) }
            let sourcePath = copy.source == plan.archive ? "" : String(copy.source.dropFirst(plan.archive.count))
            guard let source = try? sources.openEntry(sourcePath, flags: O_RDONLY | O_NONBLOCK) else { continue }
            defer { close(source) }
            var a = stat()
            var b = stat()
            guard fstat(source, &a) == 0, fstat(target, &b) == 0, a.st_mode & S_IFMT == S_IFREG, b.st_mode & S_IFMT == S_IFREG,
                a.st_size == b.st_size, a.st_mode & 0o7777 == b.st_mode & 0o7777
            else { continue }
            if left.isEmpty {
                left = DescriptorCopy.buffer()
                right = DescriptorCopy.buffer()
            }
            if Self.sameBytes(source, target, &left, &right) { same.insert(copy.destination) }
        }
        return same
    }

    static func sameBytes(_ a: Int32, _ b: Int32, _ left: inout [UInt8], _ right: inout [UInt8]) -> Bool {
        while true {
            let n = left.withUnsafeMutableBytes { read(a, $0.baseAddress, $0.count) }
            guard n >= 0 else { return false }
            var filled = 0
            while filled < n {
                let m = right.withUnsafeMutableBytes { raw in read(b, raw.baseAddress.map { $0 + filled }, n - filled) }
                guard m > 0 else { return false }
                filled += m
            }
            if n == 0 { return read(b, &right, 1) == 0 }
            if memcmp(left, right, n) != 0 { return false }
        }
    }

    // MARK: Planning

    /// Plans the `files` section. Fails before touching anything when a source is missing or leads out of the
    /// revision, two sources land on one destination, a destination cannot be reached inside the install root, or
    /// (DISALLOW) files that are not ours exist; the error names every conflicting file.
    /// `owned` lists paths the previous install created (the cleanup list): they will be gone by then, so they are
    /// not conflicts (used by preflight, which plans before any cleanup has run).
    public func plan(_ spec: AppSpec, archive: String, behavior: FileExistsBehavior, owned: Set<String> = []) throws(AgentError)
        -> InstallPlan
    {
        var plan = InstallPlan()
        plan.archive = archive
        var claimed: [String: String] = [:]
        var plannedDirectories = Set<String>()
        let revision = ConfinedRoot(path: archive, policy: .beneath)
        let targets = OpenDirectories(target)

        func addDirectory(_ path: String) throws(AgentError) {
            var components: [String] = []
            var current = path
            while !current.isEmpty, current != "/", current != installRoot, !plannedDirectories.contains(current) {
                if let info = try lstatDestination(current, in: targets) {
                    if info.st_mode & S_IFMT == S_IFLNK {
                        // Reached through below: it must lead to a directory inside the root.
                        let inside = try confined(current)
                        do {
                            close(try target.openDirectory(inside))
                        } catch {
                            throw .install("cannot install under \(current): \(error.reason)")
                        }
                    } else if info.st_mode & S_IFMT != S_IFDIR {
                        throw .install("cannot create the directory \(current): a file is in the way")
                    }
                    break
                }
                components.append(current)
                current = (current as NSString).deletingLastPathComponent
            }
            for directory in components.reversed() where plannedDirectories.insert(directory).inserted {
                if let owner = claimed[directory] {
                    throw .install("the appspec installs the file \(owner) where it also needs the directory \(directory)")
                }
                plan.directories.append(directory)
            }
        }

        func addCopy(_ source: String, _ target: String, from mapping: String) throws(AgentError) {
            if let previous = claimed[target] {
                throw .install("the appspec installs two files to \(target): \(previous) and \(source)")
            }
            if plannedDirectories.contains(target) {
                throw .install("the appspec installs the file \(source) where it also needs the directory \(target)")
            }
            // Its ancestors must not be files or symlinks this install creates (looked up, not scanned: O(depth)).
            var ancestor = Substring(target)
            while let slash = ancestor.lastIndex(of: "/"), slash > ancestor.startIndex {
                ancestor = ancestor[..<slash]
                if claimed[String(ancestor)] != nil {
                    throw .install("the appspec installs \(target) inside \(ancestor), which it installs as a file or symlink")
                }
            }
            claimed[target] = source
            // A file in a directory this install creates cannot exist yet: no need to look.
            let parent = target.lastIndex(of: "/").map { String(target[..<$0]) } ?? ""
            if !plannedDirectories.contains(parent), !owned.contains(target), let info = try lstatDestination(target, in: targets) {
                if info.st_mode & S_IFMT == S_IFDIR {
                    throw .install("cannot install \(source): a directory exists at \(target)")
                }
                switch behavior {
                case .disallow: plan.conflicts.append(target)
                case .overwrite: plan.copies.append(InstallPlan.Copy(source: source, destination: target, replaces: true))
                case .retain: plan.retained.append(target)
                }
            } else {
                plan.copies.append(InstallPlan.Copy(source: source, destination: target, replaces: false))
            }
        }

        for mapping in spec.files {
            let relative = mapping.source.split(separator: "/").filter { $0 != "." }.joined(separator: "/")
            let source = relative.isEmpty ? archive : archive + "/" + relative
            let target = destination(mapping.destination)
            let info = try Self.sourceInfo(mapping.source, relative: relative, in: revision)
            try addDirectory(target)
            if info.st_mode & S_IFMT == S_IFDIR {
                for entry in Self.walk(source) {
                    if entry.isDirectory {
                        try addDirectory(target + "/" + entry.path)
                    } else {
                        try addCopy(source + "/" + entry.path, target + "/" + entry.path, from: mapping.source)
                    }
                }
            } else {
                try addCopy(source, target + "/" + (source as NSString).lastPathComponent, from: mapping.source)
            }
        }
        try Self.refuseConflicts(plan.conflicts)
        return plan
    }

    /// What a `files` source is in the revision (looked up beneath it, never through a symlink out of it).
    static func sourceInfo(_ source: String, relative: String, in revision: ConfinedRoot) throws(AgentError) -> stat {
        let found: stat?
        do {
            found = try revision.lstat(relative)
        } catch {
            throw .install("the files source '\(source)' cannot be used: \(error.reason)")
        }
        guard let info = found else { throw .install("the files source '\(source)' is not in the revision") }
        return info
    }

    /// DISALLOW: files that exist and are not ours stop the install before anything is touched, every one named
    /// (the first 20, and how many more).
    static func refuseConflicts(_ conflicts: [String]) throws(AgentError) {
        guard !conflicts.isEmpty else { return }
        let list = conflicts.prefix(20).joined(separator: ", ") + (conflicts.count > 20 ? " and \(conflicts.count - 20) more" : "")
        throw .install(
            "\(conflicts.count) file(s) already exist and were not installed by the previous revision of this group (file_exists_behavior DISALLOW): \(list). Use OVERWRITE or RETAIN, or remove them."
        )
    }

    /// Every entry below `directory`, sorted, without following any symlink (a symlink is an entry, not a tree).
    /// Read with `readdir` from descriptors opened `O_NOFOLLOW`, taking the type from the directory entry.
    static func walk(_ directory: String) -> [(path: String, isDirectory: Bool)] {
        var result: [(path: String, isDirectory: Bool)] = []
        func visit(_ fd: Int32, _ relative: String) {
            guard let stream = fdopendir(fd) else {
                close(fd)
                return
            }
            defer { closedir(stream) }
            var children: [(name: String, isDirectory: Bool)] = []
            while let entry = readdir(stream) {
                let name = withUnsafePointer(to: &entry.pointee.d_name) {
                    $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
                }
                if name == "." || name == ".." { continue }
                var isDirectory = entry.pointee.d_type == UInt8(DT_DIR)
                if entry.pointee.d_type == UInt8(DT_UNKNOWN) {
                    var info = stat()
                    guard fstatat(dirfd(stream), name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                    isDirectory = info.st_mode & S_IFMT == S_IFDIR
                }
                children.append((name, isDirectory))
            }
            for child in children.sorted(by: { $0.name < $1.name }) {
                let path = relative.isEmpty ? child.name : relative + "/" + child.name
                result.append((path, child.isDirectory))
                if child.isDirectory {
                    let inner = openat(dirfd(stream), child.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    if inner >= 0 { visit(inner, path) }
                }
            }
        }
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { visit(fd, "") }
        return result.sorted { $0.path < $1.path }
    }

    // MARK: Execution

    /// Creates and copies what the plan says. Every destination is appended to the cleanup list **before** it is
    /// written (directories right after they are created; files in batches of ``noteBatch`` named before any of
    /// them is created), so an interrupted install is still cleaned up next time.
    /// `unchanged`: destinations already in place byte for byte (``unchanged(_:previous:)``): recorded, not copied.
    public func execute(_ plan: InstallPlan, cleanupList: String, unchanged: Set<String> = [], keptDirectories: [String] = []) throws(AgentError)
        -> [String]
    {
        try? FileManager.default.createDirectory(atPath: (cleanupList as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        guard let record = fopen(cleanupList, "a") else {
            throw .io("cannot write the cleanup list \(cleanupList): \(String(cString: strerror(errno)))")
        }
        defer { fclose(record) }
        func note(_ paths: some Sequence<String>) throws(AgentError) {
            for path in paths {
                guard fputs(path + "\n", record) >= 0 else {
                    throw .io("cannot write the cleanup list \(cleanupList): \(String(cString: strerror(errno)))")
                }
            }
            guard fflush(record) == 0 else {
                throw .io("cannot write the cleanup list \(cleanupList): \(String(cString: strerror(errno)))")
            }
        }
        let revisionRoot = ConfinedRoot(path: plan.archive, policy: .beneath)
        let targets = OpenDirectories(target)
        if !installRoot.isEmpty, !FileManager.default.fileExists(atPath: installRoot) {
            do {
                try FileManager.default.createDirectory(atPath: installRoot, withIntermediateDirectories: true)
            } catch {
                throw .install("cannot create the install root \(installRoot): \(error.localizedDescription)")
            }
        }
        var installed: [String] = []
        try note(keptDirectories)
        installed += keptDirectories
        for directory in plan.directories {
            let parent = try openParent(directory, in: targets)
            guard mkdirat(parent.fd, parent.name, 0o755) == 0 || errno == EEXIST else {
                throw .install("cannot create \(directory): \(String(cString: strerror(errno)))")
            }
            try note(CollectionOfOne(directory))
            installed.append(directory)
        }
        let lanes = (0..<2).map { _ in CopyLane(target: target, revision: revisionRoot) }
        var start = plan.copies.startIndex
        while start < plan.copies.endIndex {
            let batch = plan.copies[start..<min(start + Self.noteBatch, plan.copies.endIndex)]
            start = batch.endIndex
            try note(batch.lazy.map(\.destination))
            installed += batch.lazy.map(\.destination)
            var shares = Array(repeating: [InstallPlan.Copy](), count: lanes.count)
            for (index, copy) in batch.filter({ !unchanged.contains($0.destination) }).enumerated() {
                shares[index % lanes.count].append(copy)
            }
            let work = shares
            DispatchQueue.concurrentPerform(iterations: lanes.count) { index in
                lanes[index].copy(work[index], installer: self, archive: plan.archive)
            }
            if let failure = lanes.lazy.compactMap(\.failure).first { throw failure }
        }
        return installed
    }

    /// One of the threads a batch of copies is shared between (by parent directory, so that two threads never add
    /// names to one directory at once): creating files is mostly the kernel's work, and a second thread puts the
    /// second core of a small host to use. Its descriptors and buffer are its own.
    final class CopyLane: @unchecked Sendable {
        // Used by one thread at a time: `concurrentPerform` gives each lane to one iteration, and `failure` is read
        // after it returns.
        let targets: OpenDirectories
        let revision: OpenDirectories
        /// For filesystems where `copy_file_range` copies less than asked; most copies never touch it.
        lazy var buffer = DescriptorCopy.buffer()
        var failure: AgentError?

        init(target: ConfinedRoot, revision: ConfinedRoot) {
            targets = OpenDirectories(target)
            self.revision = OpenDirectories(revision)
        }

        func copy(_ copies: [InstallPlan.Copy], installer: Installer, archive: String) {
            guard failure == nil else { return }
            do throws(AgentError) {
                for copy in copies {
                    let parent = try installer.openParent(copy.destination, in: targets)
                    if copy.replaces { unlinkat(parent.fd, parent.name, 0) }
                    let source = copy.source == archive ? "" : String(copy.source.dropFirst(archive.count))
                    try Installer.copyEntry(source, of: revision, toParent: parent.fd, name: parent.name, display: copy.destination, buffer: &buffer)
                }
            } catch {
                failure = error
            }
        }
    }

    /// How many destinations are named in the cleanup list (one write) before they are created.
    static let noteBatch = 256

    /// Copies a file (content, mode, modification time) or recreates a symlink with the same target, from inside
    /// the revision to `name` in the directory `parentFD` (created anew: never through an existing entry).
    static func copyEntry(
        _ source: String, of revision: OpenDirectories, toParent parentFD: Int32, name: String, display: String, buffer: inout [UInt8]
    ) throws(AgentError) {
        let shown = revision.root.display(source)
        let parent: (fd: Int32, name: String)
        do {
            parent = try revision.parent(source)
        } catch {
            throw .install(error.missing ? "cannot read \(shown): no such file" : "cannot read \(shown): \(error.reason)")
        }
        // O_NONBLOCK: a FIFO (put there by a hook) must fail the copy below, not wait for a writer forever.
        let input = openat(parent.fd, parent.name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC)
        if input < 0, errno == ELOOP {
            var link = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let count = readlinkat(parent.fd, parent.name, &link, link.count - 1)
            guard count >= 0 else { throw .install("cannot read the symlink \(shown)") }
            let text = String(decoding: link[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard symlinkat(text, parentFD, name) == 0 else {
                throw .install("cannot create the symlink \(display): \(String(cString: strerror(errno)))")
            }
            return
        }
        guard input >= 0 else {
            throw .install(errno == ENOENT ? "cannot read \(shown): no such file" : "cannot read \(shown): \(String(cString: strerror(errno)))")
        }
        defer { close(input) }
        var info = stat()
        guard fstat(input, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw .install("cannot install \(shown): only regular files, directories and symlinks can be installed")
        }
        let output = openat(parentFD, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, info.st_mode & 0o7777)
        guard output >= 0 else { throw .install("cannot create \(display): \(String(cString: strerror(errno)))") }
        defer { close(output) }
        // In-kernel copy first; plain reads and writes when the filesystem cannot (or copies less).
        let copied = info.st_size > 0 ? deployctl_copy_range(input, output, Int64(info.st_size)) : 0
        if copied < Int64(info.st_size) {
            if copied > 0 { lseek(input, off_t(copied), SEEK_SET) }
            do throws(DescriptorCopy.Failure) {
                try DescriptorCopy.copy(from: input, to: output, buffer: &buffer)
            } catch {
                throw .install(error.describe(reading: shown, writing: display))
            }
        }
        fchmod(output, info.st_mode & 0o7777)
        var times = [info.st_atim, info.st_mtim]
        futimens(output, &times)
    }

    // MARK: Permissions

    /// Applies the `permissions` section to what this install created, in appspec order: chmod, ACLs, SELinux
    /// context, then owner and group. Returns notes for the log (skips where the system lacks ACL or SELinux tools).
    public func applyPermissions(_ spec: AppSpec, installed: [String]) throws(AgentError) -> [String] {
        var notes: [String] = []
        var done = Set<String>()
        let targets = OpenDirectories(target)
        for permission in spec.permissions {
            let object = destination(permission.object)
            // `object: /` is the whole install root: everything installed is below it.
            let prefix = object.hasSuffix("/") ? object : object + "/"
            var owner: (uid: uid_t, gid: gid_t)?
            // Each path is opened, matched, changed and closed in turn: holding every match open until the end ran
            // out of descriptors past about 1,000 files, and the files after that silently kept their modes.
            for path in installed {
                guard let inside = relative(path) else { continue }
                let fd: Int32
                do {
                    fd = try targets.openEntry(inside)
                } catch {
                    if error.missing { continue }
                    throw .install("cannot set the permissions of \(path): \(error.reason)")
                }
                defer { close(fd) }
                var info = stat()
                guard fstat(fd, &info) == 0, info.st_mode & S_IFMT != S_IFLNK else { continue }
                let isDir = info.st_mode & S_IFMT == S_IFDIR
                var matches = false
                if permission.types.contains(isDir ? .directory : .file) {
                    if path == object, !isDir {
                        matches = true
                    } else if path.hasPrefix(prefix) {
                        let relative = String(path.dropFirst(prefix.count))
                        let name = (relative as NSString).lastPathComponent
                        matches =
                            (permission.pattern == "**" || (!relative.contains("/") && Glob.matches(permission.pattern, relative)))
                            && !permission.except.contains(where: { Glob.matches($0, name) })
                    }
                }
                guard matches else { continue }
                guard done.insert(path).inserted else {
                    throw .install("the permissions for \(path) are set by more than one permissions entry")
                }
                // The descriptor was opened without following a symlink; its /proc path names exactly that inode.
                let exact = "/proc/self/fd/\(fd)"
                if let mode = permission.mode, chmod(exact, mode_t(mode.bits)) != 0 {
                    throw .install("cannot chmod \(mode.octal) \(path): \(String(cString: strerror(errno)))")
                }
                if !permission.acls.isEmpty {
                    if let note = try Self.applyACLs(permission.acls.map(\.description), to: ConfinedRoot.procPath(of: fd), shown: path) {
                        notes.append(note)
                    }
                }
                if let context = permission.context {
                    if let note = try Self.applyContext(context, to: ConfinedRoot.procPath(of: fd), shown: path) { notes.append(note) }
                }
                if permission.owner != nil || permission.group != nil {
                    if owner == nil { owner = try Self.ids(owner: permission.owner, group: permission.group) }
                    guard let ids = owner, chown(exact, ids.uid, ids.gid) == 0 else {
                        throw .install("cannot change the owner of \(path): \(String(cString: strerror(errno)))")
                    }
                }
            }
        }
        return Array(Set(notes)).sorted()
    }

    /// The uid and gid of a permissions entry's owner and group (`max`: left as it is).
    static func ids(owner: String?, group: String?) throws(AgentError) -> (uid: uid_t, gid: gid_t) {
        var uid = uid_t.max
        var gid = gid_t.max
        if let owner {
            guard let entry = getpwnam(owner) else { throw .install("the owner '\(owner)' does not exist on this host") }
            uid = entry.pointee.pw_uid
        }
        if let group {
            guard let entry = getgrnam(group) else { throw .install("the group '\(group)' does not exist on this host") }
            gid = entry.pointee.gr_gid
        }
        return (uid, gid)
    }

    static func tool(_ name: String) -> String? {
        ["/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/"].map { $0 + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static func run(_ tool: String, _ arguments: [String]) -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            return (127, "\(error)")
        }
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    static func applyACLs(_ entries: [String], to target: String, shown: String) throws(AgentError) -> String? {
        guard let setfacl = tool("setfacl") else {
            return "acls skipped: setfacl is not installed (Debian: apt-get install acl)"
        }
        let (status, message) = run(setfacl, ["-m", entries.joined(separator: ","), target])
        guard status == 0 else { throw .install("setfacl -m \(entries.joined(separator: ",")) \(shown) failed: \(message)") }
        return nil
    }

    static func applyContext(_ context: SELinuxContext, to target: String, shown: String) throws(AgentError) -> String? {
        guard FileManager.default.fileExists(atPath: "/sys/fs/selinux/enforce"), let chcon = tool("chcon") else {
            return "SELinux context skipped: SELinux is not enabled on this host"
        }
        var arguments = ["-t", context.type]
        if let user = context.name { arguments += ["-u", user] }
        if let range = context.range { arguments += ["-l", range] }
        let (status, message) = run(chcon, arguments + [target])
        guard status == 0 else { throw .install("chcon \(arguments.joined(separator: " ")) \(shown) failed: \(message)") }
        return nil
    }
}
