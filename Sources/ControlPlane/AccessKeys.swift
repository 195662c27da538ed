import DeployModel
import DeployStore
import Foundation

/// What a key may call on `deployctl server`, shaped like IAM managed policies so they feel familiar.
public enum AccessRole: String, Sendable, CaseIterable {
    /// Everything.
    case admin
    /// Read everything; create and stop deployments; register revisions.
    case deployer
    /// Get, List and BatchGet operations only.
    case readOnly = "read-only"
    /// An on-premises instance's agent (`deployctl register`): the command service for that instance, and reading
    /// bundles (S3 GetObject, HeadObject). Nothing of the CodeDeploy API.
    case instance

    /// Whether this role may call `operation`: a CodeDeploy operation name (`CreateDeployment`) or an S3 one
    /// (`PutObject`). Reading is Get/List/BatchGet (and S3's Head); a deployer also creates and stops deployments,
    /// registers revisions and uploads bundles; deleting anything is for admins.
    public func allows(_ operation: String) -> Bool {
        let reads =
            operation.hasPrefix("Get") || operation.hasPrefix("List") || operation.hasPrefix("BatchGet") || operation.hasPrefix("Head")
        switch self {
        case .admin: return !Self.agentOperations.contains(operation)
        case .instance: return Self.agentOperations.contains(operation) || operation == "GetObject" || operation == "HeadObject"
        case .readOnly: return reads && !Self.agentOperations.contains(operation)
        case .deployer:
            return (reads || Self.deployerWrites.contains(operation)) && !Self.agentOperations.contains(operation)
        }
    }

    /// The agent command service's operations: only an instance's own key may call them (it acts for that host).
    public static let agentOperations: Set<String> = [
        "PollHostCommand", "GetDeploymentSpecification", "PutHostCommandAcknowledgement", "PutHostCommandComplete", "PostHostCommandUpdate",
    ]

    static let deployerWrites: Set<String> = [
        "CreateDeployment", "StopDeployment", "RegisterApplicationRevision", "ContinueDeployment", "SkipWaitTimeForInstanceTermination",
        "PutLifecycleEventHookExecutionStatus",
        "PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "AbortMultipartUpload", "CreateBucket",
    ]
}

/// An access key as `create-access-key` shows it, IAM's shape: the secret appears only here, once.
public struct AccessKey: Sendable, Equatable {
    public var userName: String
    public var accessKeyId: String
    public var status: String
    public var secretAccessKey: String?
    public var createDate: Date
    public var role: AccessRole
}

/// Access keys for `deployctl server` (issue 10): created, imported, listed, deactivated and deleted against the
/// state file. IAM's vocabulary and errors (`NoSuchEntity`, `EntityAlreadyExists`, `ValidationError`).
extension ControlPlane {
    static let keyAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    static let secretAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")

    static func random(_ alphabet: [Character], count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return String((0..<count).map { _ in alphabet[Int(generator.next(upperBound: UInt64(alphabet.count)))] })
    }

    /// Creates a key for `userName` (or imports `accessKeyId` + `secretAccessKey`, so CI secrets move over unchanged).
    public func createAccessKey(
        userName: String, role: AccessRole = .deployer, accessKeyId: String? = nil, secretAccessKey: String? = nil
    ) throws -> AccessKey {
        guard !userName.isEmpty, userName.count <= 64,
            userName.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "+=,.@_-".unicodeScalars.contains($0)) })
        else {
            throw ServiceError("ValidationError", "The user name must be 1-64 letters, digits or +=,.@_- characters.")
        }
        if (accessKeyId == nil) != (secretAccessKey == nil) {
            throw ServiceError("ValidationError", "Importing a key needs both accessKeyId and secretAccessKey.")
        }
        if let accessKeyId, !(16...128).contains(accessKeyId.count) || !accessKeyId.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) {
            throw ServiceError("ValidationError", "An access key ID is 16-128 letters and digits.")
        }
        if let secretAccessKey, secretAccessKey.count < 16 || secretAccessKey.count > 128 || secretAccessKey.contains(where: { $0.isWhitespace }) {
            throw ServiceError("ValidationError", "A secret access key is 16-128 characters without spaces.")
        }
        let record = AccessKeyRecord(
            accessKeyId: accessKeyId ?? "AKIA" + Self.random(Self.keyAlphabet, count: 16), userName: userName,
            secretAccessKey: secretAccessKey ?? Self.random(Self.secretAlphabet, count: 40), status: "Active", role: role.rawValue, createDate: now())
        try store.write { tx in
            if try tx.accessKey(id: record.accessKeyId) != nil {
                throw ServiceError("EntityAlreadyExists", "The access key \(record.accessKeyId) already exists.")
            }
            try tx.insertAccessKey(record)
        }
        return AccessKey(
            userName: userName, accessKeyId: record.accessKeyId, status: record.status, secretAccessKey: record.secretAccessKey,
            createDate: record.createDate, role: role)
    }

    /// Every key (or one user's), without secrets.
    public func listAccessKeys(userName: String? = nil) throws -> [AccessKey] {
        try store.read { tx in
            try tx.accessKeys(userName: userName).map {
                AccessKey(
                    userName: $0.userName, accessKeyId: $0.accessKeyId, status: $0.status, secretAccessKey: nil, createDate: $0.createDate,
                    role: AccessRole(rawValue: $0.role) ?? .readOnly)
            }
        }
    }

    public func updateAccessKey(accessKeyId: String, status: String) throws {
        guard ["Active", "Inactive"].contains(status) else {
            throw ServiceError("ValidationError", "The status must be Active or Inactive, got '\(status.prefix(40))'.")
        }
        try store.write { tx in
            guard var record = try tx.accessKey(id: accessKeyId) else {
                throw ServiceError("NoSuchEntity", "The access key \(accessKeyId.prefix(128)) does not exist.")
            }
            record.status = status
            try tx.updateAccessKey(record)
        }
    }

    public func deleteAccessKey(accessKeyId: String) throws {
        try store.write { tx in
            guard try tx.accessKey(id: accessKeyId) != nil else {
                throw ServiceError("NoSuchEntity", "The access key \(accessKeyId.prefix(128)) does not exist.")
            }
            try tx.deleteAccessKey(id: accessKeyId)
        }
    }

    /// The secret and role of an *active* key, for verifying a request; nil for an unknown or inactive one.
    public func activeCredentials(accessKeyId: String) throws -> (secret: String, role: AccessRole, userName: String)? {
        try store.read { tx in
            guard let record = try tx.accessKey(id: accessKeyId), record.status == "Active" else { return nil }
            return (record.secretAccessKey, AccessRole(rawValue: record.role) ?? .readOnly, record.userName)
        }
    }
}

extension ControlPlane {
    /// Whether any key exists (the server warns at start when none does: every request would be refused).
    public func hasAccessKeys() -> Bool {
        ((try? listAccessKeys())?.isEmpty == false)
    }
}
