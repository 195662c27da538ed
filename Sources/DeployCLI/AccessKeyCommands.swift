import ArgumentParser
import ControlPlane
import DeployModel
import Foundation

extension AccessRole: ExpressibleByArgument {}

/// Runs an access-key operation on the local state file and prints its answer the aws CLI way (IAM's shapes).
private func runAccessKeyOperation(_ global: GlobalOptions, _ operation: String, _ body: (ControlPlane) throws -> JSONValue?) throws {
    let plane = try global.openControlPlane(for: .stateFileOnly(command: "deployctl \(operation.kebabCased)"))
    let output = try CLIFailure.calling(operation) { try body(plane) }
    if let output { try StandardStreams.out(try global.render(output, operation: operation)) }
}

/// `deployctl create-access-key`: a key for `deployctl server`, shaped like `aws iam create-access-key`.
struct CreateAccessKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-access-key",
        _superCommandName: "deployctl",
        abstract: "Create (or import) an access key for deployctl server, as aws iam create-access-key does (deployctl extension).",
        discussion: """
            Prints {"AccessKey": {UserName, AccessKeyId, Status, SecretAccessKey, CreateDate}}: the secret is shown this once. \
            --role bounds what the key may call: read-only (Get, List, BatchGet), deployer (also create and stop \
            deployments, register revisions; the default), admin, or metrics (GET /metrics only, for a Prometheus \
            scraper). --access-key-id with --secret-access-key imports an existing pair, so CI secrets move over unchanged: \
            any ID of 1-128 letters, digits and _, any secret of 1-128 characters (the fixed short test keys of local AWS \
            emulators work, with a warning). Works on the state file (local only).
            """)

    @Option(name: .customLong("user-name"), help: ArgumentHelp("Who the key is for (1-64 letters, digits, +=,.@_-).", valueName: "name"))
    var userName: String

    @Option(name: .customLong("role"), help: ArgumentHelp("admin, deployer (default), read-only or metrics.", valueName: "role"))
    var role: AccessRole = .deployer

    @Option(name: .customLong("access-key-id"), help: ArgumentHelp("Import this key ID (with --secret-access-key).", valueName: "id"))
    var accessKeyId: String?

    @Option(name: .customLong("secret-access-key"), help: ArgumentHelp("Import this secret (with --access-key-id).", valueName: "secret"))
    var secretAccessKey: String?

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try runAccessKeyOperation(global, "CreateAccessKey") { plane in
            let key = try plane.createAccessKey(userName: userName, role: role, accessKeyId: accessKeyId, secretAccessKey: secretAccessKey)
            for warning in key.warnings { StandardStreams.err("deployctl create-access-key: warning: \(warning)\n") }
            return .members([
                (
                    "AccessKey",
                    .members([
                        ("UserName", .string(key.userName)), ("AccessKeyId", .string(key.accessKeyId)), ("Status", .string(key.status)),
                        ("SecretAccessKey", .string(key.secretAccessKey ?? "")), ("CreateDate", .string(Timestamp.format(key.createDate))),
                    ])
                )
            ])
        }
    }
}

/// `deployctl list-access-keys`, as `aws iam list-access-keys` (plus each key's Role).
struct ListAccessKeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list-access-keys",
        _superCommandName: "deployctl",
        abstract: "List the access keys of deployctl server without their secrets (deployctl extension; IAM's shape plus Role).")

    @Option(name: .customLong("user-name"), help: ArgumentHelp("Only this user's keys.", valueName: "name"))
    var userName: String?

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try runAccessKeyOperation(global, "ListAccessKeys") { plane in
            let keys = try plane.listAccessKeys(userName: userName).map { key -> JSONValue in
                .members([
                    ("UserName", .string(key.userName)), ("AccessKeyId", .string(key.accessKeyId)), ("Status", .string(key.status)),
                    ("CreateDate", .string(Timestamp.format(key.createDate))), ("Role", .string(key.role.rawValue)),
                ])
            }
            return .members([("AccessKeyMetadata", .array(keys)), ("IsTruncated", .bool(false))])
        }
    }
}

/// `deployctl update-access-key`, as `aws iam update-access-key`.
struct UpdateAccessKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update-access-key", _superCommandName: "deployctl",
        abstract: "Make an access key Active or Inactive (deployctl extension, as aws iam update-access-key).")

    @Option(name: .customLong("access-key-id"), help: ArgumentHelp("The key.", valueName: "id"))
    var accessKeyId: String

    @Option(name: .customLong("status"), help: ArgumentHelp("Active or Inactive.", valueName: "status"))
    var status: String

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try runAccessKeyOperation(global, "UpdateAccessKey") { plane in
            try plane.updateAccessKey(accessKeyId: accessKeyId, status: status)
            return nil
        }
    }
}

/// `deployctl delete-access-key`, as `aws iam delete-access-key`.
struct DeleteAccessKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete-access-key", _superCommandName: "deployctl",
        abstract: "Delete an access key (deployctl extension, as aws iam delete-access-key).")

    @Option(name: .customLong("access-key-id"), help: ArgumentHelp("The key.", valueName: "id"))
    var accessKeyId: String

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try runAccessKeyOperation(global, "DeleteAccessKey") { plane in
            try plane.deleteAccessKey(accessKeyId: accessKeyId)
            return nil
        }
    }
}

extension String {
    /// `CreateAccessKey` → `create-access-key`.
    var kebabCased: String {
        var out = ""
        for character in self {
            if character.isUppercase, !out.isEmpty { out += "-" }
            out += character.lowercased()
        }
        return out
    }
}
