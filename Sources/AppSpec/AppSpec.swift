import DeployModel
import HostCommandModel

/// A line and column in the appspec file, both starting at 1.
public struct SourcePosition: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public var description: String { "\(line):\(column)" }
}

/// One problem (or warning) found in an appspec or a bundle: where, which key, what was expected.
public struct Finding: Sendable, Equatable, Codable, CustomStringConvertible {
    public enum Severity: String, Sendable, Codable {
        case error, warning
    }

    public var severity: Severity
    /// The rule's stable code (`AS101`): AS for the appspec, RV for the revision's files; 1xx errors, 2xx warnings,
    /// 00x a revision that cannot be read at all (`validate` exits 2 for those, 1 for the others).
    public var code: String
    /// The file the finding is about (`appspec.yml`, or a bundle path).
    public var file: String
    public var position: SourcePosition?
    /// The key path inside the file (`hooks.BeforeInstall[0].timeout`), empty for the whole file.
    public var keyPath: String
    public var message: String

    public init(_ severity: Severity, code: String, file: String, position: SourcePosition?, keyPath: String, message: String) {
        self.severity = severity
        self.code = code
        self.file = file
        self.position = position
        self.keyPath = keyPath
        self.message = message
    }

    /// `appspec.yml:12:5: error: hooks.BeforeInstall[0].timeout: must be a positive whole number of seconds, got "ten"`
    /// The description with the rule's code: `appspec.yml:12:5: error AS117: hooks.…`, as `validate` prints it.
    public var codedDescription: String {
        var out = file
        if let position { out += ":\(position)" }
        out += ": \(severity.rawValue) \(code): "
        if !keyPath.isEmpty { out += "\(keyPath): " }
        return out + message
    }

    public var description: String {
        var out = file
        if let position { out += ":\(position)" }
        out += ": \(severity.rawValue): "
        if !keyPath.isEmpty { out += "\(keyPath): " }
        return out + message
    }
}

/// A parsed, validated appspec.yml for the server (EC2/on-premises) platform.
public struct AppSpec: Sendable, Equatable {
    public var version: String
    public var os: String
    public var files: [FileMapping]
    public var permissions: [Permission]
    /// Scripts per lifecycle event, in file order.
    public var hooks: [String: [HookScript]]
    public var fileExistsBehavior: FileExistsBehavior?

    public init(
        version: String = "0.0", os: String = "linux", files: [FileMapping] = [], permissions: [Permission] = [],
        hooks: [String: [HookScript]] = [:], fileExistsBehavior: FileExistsBehavior? = nil
    ) {
        self.version = version
        self.os = os
        self.files = files
        self.permissions = permissions
        self.hooks = hooks
        self.fileExistsBehavior = fileExistsBehavior
    }
}

/// One `files` entry: a path in the bundle and the absolute directory it is installed into.
public struct FileMapping: Sendable, Equatable {
    /// Relative to the bundle root; `/` or empty means the whole bundle.
    public var source: String
    public var destination: String
    public var position: SourcePosition?

    public init(source: String, destination: String, position: SourcePosition? = nil) {
        self.source = source
        self.destination = destination
        self.position = position
    }
}

/// One script of a lifecycle event.
public struct HookScript: Sendable, Equatable {
    /// Relative to the bundle root (a leading `/` is still relative, as the agent treats it).
    public var location: String
    /// Seconds; 3600 when not given.
    public var timeout: Int
    public var runas: String?
    public var position: SourcePosition?

    public static let defaultTimeout = 3600

    public init(location: String, timeout: Int = HookScript.defaultTimeout, runas: String? = nil, position: SourcePosition? = nil) {
        self.location = location
        self.timeout = timeout
        self.runas = runas
        self.position = position
    }
}

/// A permission mode written as octal digits (`644`, `0644`, `"0644"`, `4755`).
public struct FileMode: Sendable, Equatable {
    public var bits: UInt16

    public init(bits: UInt16) { self.bits = bits }

    public var octal: String { String(bits, radix: 8) }
    /// `r---w----`, as `ls -l` shows the permission bits.
    public var symbolic: String {
        let letters = Array("rwxrwxrwx")
        return String((0..<9).map { bits & (0o400 >> UInt16($0)) != 0 ? letters[$0] : "-" })
    }
}

/// The kinds of filesystem object a permission entry applies to.
public enum PermissionObjectType: String, Sendable, Equatable, CaseIterable {
    case file, directory
}

/// One ACL entry, in setfacl's canonical form (`user:bob:rw-`, `default:group:ops:r-x`, `mask::rwx`).
public struct ACLEntry: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case user, group, mask, other
    }
    public var isDefault: Bool
    public var kind: Kind
    public var name: String
    public var read: Bool
    public var write: Bool
    public var execute: Bool

    public var description: String {
        (isDefault ? "default:" : "") + "\(kind.rawValue):\(name):" + (read ? "r" : "-") + (write ? "w" : "-") + (execute ? "x" : "-")
    }
}

/// An SELinux context to apply (`context: {name: user_u, type: httpd_sys_content_t, range: s0}`).
public struct SELinuxContext: Sendable, Equatable {
    public var name: String?
    public var type: String
    public var range: String?

    public init(name: String? = nil, type: String, range: String? = nil) {
        self.name = name
        self.type = type
        self.range = range
    }
}

/// One `permissions` entry.
public struct Permission: Sendable, Equatable {
    public var object: String
    public var pattern: String
    public var except: [String]
    public var owner: String?
    public var group: String?
    public var mode: FileMode?
    public var acls: [ACLEntry]
    public var context: SELinuxContext?
    public var types: [PermissionObjectType]
    public var position: SourcePosition?

    public init(
        object: String, pattern: String = "**", except: [String] = [], owner: String? = nil, group: String? = nil,
        mode: FileMode? = nil, acls: [ACLEntry] = [], context: SELinuxContext? = nil,
        types: [PermissionObjectType] = PermissionObjectType.allCases, position: SourcePosition? = nil
    ) {
        self.object = object
        self.pattern = pattern
        self.except = except
        self.owner = owner
        self.group = group
        self.mode = mode
        self.acls = acls
        self.context = context
        self.types = types
        self.position = position
    }
}

/// `FileExistsBehavior` under a name that does not clash with the API model's enum of the same name.
