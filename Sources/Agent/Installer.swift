import AppSpec
import CAgentSupport
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
}

/// Installs a revision's files and permissions, and removes what the previous install of the group created.
public struct Installer: Sendable {
    /// Prefixed to every destination (as `DESTDIR` is for `make install`); empty for the real root.
    public var installRoot: String

    public init(installRoot: String?) {
        var root = installRoot.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? ""
        if root == "/" { root = "" }
        self.installRoot = root
    }

    public func destination(_ path: String) -> String {
        let normalized = URL(fileURLWithPath: path).standardizedFileURL.path
        return installRoot + normalized
    }

    // MARK: Cleanup of the previous install

    /// Removes, newest first, what the cleanup list names: files and symlinks, and directories once empty.
    /// A torn last line (no newline) is ignored. Returns the paths removed.
    /// The paths a cleanup list names (without its torn last line).
    public static func listed(in cleanupList: String) -> [String] {
        guard let text = try? String(contentsOfFile: cleanupList, encoding: .utf8) else { return [] }
        var lines = text.components(separatedBy: "\n")
        lines.removeLast()
        return lines.filter { !$0.isEmpty }
    }

    @discardableResult
    public static func removePrevious(cleanupList: String) -> [String] {
        guard let text = try? String(contentsOfFile: cleanupList, encoding: .utf8) else { return [] }
        var lines = text.components(separatedBy: "\n")
        // The piece after the last newline is either empty or a torn write: drop it either way.
        lines.removeLast()
        var removed: [String] = []
        for path in lines.reversed() where !path.isEmpty {
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            if info.st_mode & S_IFMT == S_IFDIR {
                if rmdir(path) == 0 { removed.append(path) }
            } else if unlink(path) == 0 {
                removed.append(path)
            }
        }
        try? FileManager.default.removeItem(atPath: cleanupList)
        return removed
    }

    // MARK: Planning

    /// Plans the `files` section. Fails before touching anything when a source is missing, two sources land on one
    /// destination, or (DISALLOW) files that are not ours exist; the error names every conflicting file.
    /// `owned` lists paths the previous install created (the cleanup list): they will be gone by then, so they are
    /// not conflicts (used by preflight, which plans before any cleanup has run).
    public func plan(_ spec: AppSpec, archive: String, behavior: FileExistsBehavior, owned: Set<String> = []) throws(AgentError)
        -> InstallPlan
    {
        var plan = InstallPlan()
        var claimed: [String: String] = [:]
        var plannedDirectories = Set<String>()
        let fm = FileManager.default

        func addDirectory(_ path: String) throws(AgentError) {
            var components: [String] = []
            var current = path
            while !current.isEmpty, current != "/", !plannedDirectories.contains(current) {
                var info = stat()
                if lstat(current, &info) == 0 {
                    guard info.st_mode & S_IFMT == S_IFDIR || (info.st_mode & S_IFMT == S_IFLNK && isDirectory(current)) else {
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
            claimed[target] = source
            var info = stat()
            if !owned.contains(target), lstat(target, &info) == 0 {
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
            var info = stat()
            guard lstat(source, &info) == 0 else {
                throw .install("the files source '\(mapping.source)' is not in the revision")
            }
            try addDirectory(target)
            if info.st_mode & S_IFMT == S_IFDIR {
                let entries = ((fm.enumerator(atPath: source)?.allObjects as? [String]) ?? []).sorted()
                for entry in entries {
                    var entryInfo = stat()
                    guard lstat(source + "/" + entry, &entryInfo) == 0 else { continue }
                    if entryInfo.st_mode & S_IFMT == S_IFDIR {
                        try addDirectory(target + "/" + entry)
                    } else {
                        try addCopy(source + "/" + entry, target + "/" + entry, from: mapping.source)
                    }
                }
            } else {
                try addCopy(source, target + "/" + (source as NSString).lastPathComponent, from: mapping.source)
            }
        }
        if !plan.conflicts.isEmpty {
            let list = plan.conflicts.prefix(20).joined(separator: ", ") + (plan.conflicts.count > 20 ? " and \(plan.conflicts.count - 20) more" : "")
            throw .install(
                "\(plan.conflicts.count) file(s) already exist and were not installed by the previous revision of this group (file_exists_behavior DISALLOW): \(list). Use OVERWRITE or RETAIN, or remove them."
            )
        }
        return plan
    }

    func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    // MARK: Execution

    /// Creates and copies what the plan says. Every destination is appended to the cleanup list **before** it is
    /// written (directories right after they are created), so an interrupted install is still cleaned up next time.
    public func execute(_ plan: InstallPlan, cleanupList: String) throws(AgentError) -> [String] {
        try? FileManager.default.createDirectory(atPath: (cleanupList as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        guard let record = fopen(cleanupList, "a") else {
            throw .io("cannot write the cleanup list \(cleanupList): \(String(cString: strerror(errno)))")
        }
        defer { fclose(record) }
        func note(_ path: String) {
            fputs(path + "\n", record)
            fflush(record)
        }
        var installed: [String] = []
        for directory in plan.directories {
            guard mkdir(directory, 0o755) == 0 || errno == EEXIST else {
                throw .install("cannot create \(directory): \(String(cString: strerror(errno)))")
            }
            note(directory)
            installed.append(directory)
        }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        for copy in plan.copies {
            note(copy.destination)
            if copy.replaces { unlink(copy.destination) }
            try Self.copyEntry(copy.source, to: copy.destination, buffer: &buffer)
            installed.append(copy.destination)
        }
        return installed
    }

    /// Copies a file (content, mode, modification time) or recreates a symlink with the same target.
    static func copyEntry(_ source: String, to target: String, buffer: inout [UInt8]) throws(AgentError) {
        var info = stat()
        guard lstat(source, &info) == 0 else { throw .install("cannot read \(source): \(String(cString: strerror(errno)))") }
        if info.st_mode & S_IFMT == S_IFLNK {
            var link = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let count = readlink(source, &link, link.count - 1)
            guard count >= 0 else { throw .install("cannot read the symlink \(source)") }
            let text = String(decoding: link[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard symlink(text, target) == 0 else {
                throw .install("cannot create the symlink \(target): \(String(cString: strerror(errno)))")
            }
            return
        }
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw .install("cannot read \(source): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        let output = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, info.st_mode & 0o7777)
        guard output >= 0 else { throw .install("cannot create \(target): \(String(cString: strerror(errno)))") }
        defer { close(output) }
        // In-kernel copy first; plain reads and writes when the filesystem cannot (or copies less).
        let copied = info.st_size > 0 ? deployctl_copy_range(input, output, Int64(info.st_size)) : 0
        if copied > 0 { lseek(input, off_t(copied), SEEK_SET) }
        while copied < Int64(info.st_size) || info.st_size == 0 {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0 { throw .install("cannot read \(source): \(String(cString: strerror(errno)))") }
            if count == 0 { break }
            var written = 0
            while written < count {
                let n = buffer.withUnsafeBytes { raw in write(output, raw.baseAddress.map { $0 + written }, count - written) }
                guard n > 0 else { throw .install("cannot write \(target): \(String(cString: strerror(errno)))") }
                written += n
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
        for permission in spec.permissions {
            let object = destination(permission.object)
            var targets: [String] = []
            for path in installed {
                var info = stat()
                guard lstat(path, &info) == 0, info.st_mode & S_IFMT != S_IFLNK else { continue }
                let isDir = info.st_mode & S_IFMT == S_IFDIR
                guard permission.types.contains(isDir ? .directory : .file) else { continue }
                if path == object, !isDir {
                    targets.append(path)
                    continue
                }
                guard path.hasPrefix(object + "/") else { continue }
                let relative = String(path.dropFirst(object.count + 1))
                if permission.pattern != "**" {
                    guard !relative.contains("/"), Glob.matches(permission.pattern, relative) else { continue }
                }
                let name = (relative as NSString).lastPathComponent
                if permission.except.contains(where: { Glob.matches($0, name) }) { continue }
                targets.append(path)
            }
            for target in targets {
                guard done.insert(target).inserted else {
                    throw .install("the permissions for \(target) are set by more than one permissions entry")
                }
                if let mode = permission.mode, chmod(target, mode_t(mode.bits)) != 0 {
                    throw .install("cannot chmod \(mode.octal) \(target): \(String(cString: strerror(errno)))")
                }
                if !permission.acls.isEmpty {
                    if let note = try Self.applyACLs(permission.acls.map(\.description), to: target) { notes.append(note) }
                }
                if let context = permission.context {
                    if let note = try Self.applyContext(context, to: target) { notes.append(note) }
                }
                if permission.owner != nil || permission.group != nil {
                    var uid = uid_t.max
                    var gid = gid_t.max
                    if let owner = permission.owner {
                        guard let entry = getpwnam(owner) else { throw .install("the owner '\(owner)' does not exist on this host") }
                        uid = entry.pointee.pw_uid
                    }
                    if let group = permission.group {
                        guard let entry = getgrnam(group) else { throw .install("the group '\(group)' does not exist on this host") }
                        gid = entry.pointee.gr_gid
                    }
                    guard lchown(target, uid, gid) == 0 else {
                        throw .install("cannot change the owner of \(target): \(String(cString: strerror(errno)))")
                    }
                }
            }
        }
        return Array(Set(notes)).sorted()
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

    static func applyACLs(_ entries: [String], to target: String) throws(AgentError) -> String? {
        guard let setfacl = tool("setfacl") else {
            return "acls skipped: setfacl is not installed (Debian: apt-get install acl)"
        }
        let (status, message) = run(setfacl, ["-m", entries.joined(separator: ","), target])
        guard status == 0 else { throw .install("setfacl -m \(entries.joined(separator: ",")) \(target) failed: \(message)") }
        return nil
    }

    static func applyContext(_ context: SELinuxContext, to target: String) throws(AgentError) -> String? {
        guard FileManager.default.fileExists(atPath: "/sys/fs/selinux/enforce"), let chcon = tool("chcon") else {
            return "SELinux context skipped: SELinux is not enabled on this host"
        }
        var arguments = ["-t", context.type]
        if let user = context.name { arguments += ["-u", user] }
        if let range = context.range { arguments += ["-l", range] }
        let (status, message) = run(chcon, arguments + [target])
        guard status == 0 else { throw .install("chcon \(arguments.joined(separator: " ")) \(target) failed: \(message)") }
        return nil
    }
}

/// The agent's permission globs: only `*` is special (any run of characters, a leading dot included).
public enum Glob {
    public static func matches(_ pattern: String, _ name: String) -> Bool {
        let p = Array(pattern)
        let n = Array(name)
        var pi = 0
        var ni = 0
        var star = -1
        var mark = 0
        while ni < n.count {
            if pi < p.count, p[pi] == "*" {
                star = pi
                mark = ni
                pi += 1
            } else if pi < p.count, p[pi] == n[ni] {
                pi += 1
                ni += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                ni = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}
