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
    /// bundles (S3 GetObject, HeadObject) of deployments in flight on that instance. Nothing of the CodeDeploy API.
    case instance
    /// A Prometheus scraper: `/metrics` and nothing else.
    case metrics

    /// Whether this role may call `operation`: a CodeDeploy operation name (`CreateDeployment`) or an S3 one
    /// (`PutObject`). Reading is Get/List/BatchGet (and S3's Head); a deployer also creates and stops deployments,
    /// registers revisions and uploads bundles; deleting anything is for admins.
    public func allows(_ operation: String) -> Bool {
        let reads =
            operation.hasPrefix("Get") || operation.hasPrefix("List") || operation.hasPrefix("BatchGet") || operation.hasPrefix("Head")
            || operation.hasPrefix("Describe")
        switch self {
        case .admin: return !Self.agentOperations.contains(operation)
        case .metrics: return operation == "Metrics"
        case .instance: return Self.agentOperations.contains(operation) || operation == "GetObject" || operation == "HeadObject"
        case .readOnly: return reads && !Self.agentOperations.contains(operation) && operation != "Metrics"
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
        "PutLifecycleEventHookExecutionStatus", "SetAlarmState",
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
    /// Said once, when the key is made: an imported key shorter than IAM's.
    public var warnings: [String] = []
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
        let key = try newAccessKey(userName: userName, role: role, accessKeyId: accessKeyId, secretAccessKey: secretAccessKey)
        try store.write { tx in try insert(tx, key) }
        return key
    }

    /// Stores a key made by ``newAccessKey(userName:role:accessKeyId:secretAccessKey:)`` in `tx`.
    func insert(_ tx: any StoreTransaction, _ key: AccessKey) throws {
        if try tx.accessKey(id: key.accessKeyId) != nil {
            throw ServiceError("EntityAlreadyExists", "The access key \(key.accessKeyId) already exists.")
        }
        noteAccessChange()
        try tx.insertAccessKey(
            AccessKeyRecord(
                accessKeyId: key.accessKeyId, userName: key.userName, secretAccessKey: key.secretAccessKey ?? "", status: key.status,
                role: key.role.rawValue, createDate: key.createDate))
    }

    /// A validated key, not stored yet: every check happens before anything is written.
    func newAccessKey(userName: String, role: AccessRole, accessKeyId: String?, secretAccessKey: String?) throws -> AccessKey {
        // IAM's 64 characters, except that an instance's key is named for its instance, whose name may have 100.
        let longest = role == .instance ? 100 : 64
        guard !userName.isEmpty, userName.count <= longest,
            userName.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "+=,.@_-".unicodeScalars.contains($0)) })
        else {
            throw ServiceError("ValidationError", "The user name must be 1-\(longest) letters, digits or +=,.@_- characters.")
        }
        if (accessKeyId == nil) != (secretAccessKey == nil) {
            throw ServiceError("ValidationError", "Importing a key needs both accessKeyId and secretAccessKey.")
        }
        // Imported pairs may be shorter than IAM's (20 and 40 characters): local AWS emulators ship fixed test keys of
        // 9-12 characters, and test suites written against them must run unchanged. Keys made here stay IAM-shaped.
        var warnings: [String] = []
        if let accessKeyId {
            guard (1...128).contains(accessKeyId.count), accessKeyId.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw ServiceError("ValidationError", "An access key ID is 1-128 letters, digits or _.")
            }
            if accessKeyId.count < 16 { warnings.append("the access key ID \(accessKeyId) is shorter than IAM's 16 characters") }
        }
        if let secretAccessKey {
            guard (1...128).contains(secretAccessKey.count),
                !secretAccessKey.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 } == true })
            else {
                throw ServiceError("ValidationError", "A secret access key is 1-128 characters without spaces or control characters.")
            }
            if secretAccessKey.count < 40 {
                warnings.append(
                    "the secret access key is \(secretAccessKey.count) characters, shorter than IAM's 40: anyone who can guess it acts with this key")
            }
        }
        return AccessKey(
            userName: userName, accessKeyId: accessKeyId ?? "AKIA" + Self.random(Self.keyAlphabet, count: 16), status: "Active",
            secretAccessKey: secretAccessKey ?? Self.random(Self.secretAlphabet, count: 40), createDate: now(), role: role, warnings: warnings)
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
            noteAccessChange()
            try tx.updateAccessKey(record)
        }
    }

    public func deleteAccessKey(accessKeyId: String) throws {
        try store.write { tx in
            guard try tx.accessKey(id: accessKeyId) != nil else {
                throw ServiceError("NoSuchEntity", "The access key \(accessKeyId.prefix(128)) does not exist.")
            }
            noteAccessChange()
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
