import DeployModel
import DeployStore
import Foundation

/// A step of `deployctl register` or `deregister` that was refused: the operation the user would recognise
/// (`RegisterOnPremisesInstance`, `AddTagsToOnPremisesInstances`, `CreateAccessKey`, …) and why. Nothing was written.
public struct RegistrationFailure: Error, Sendable, CustomStringConvertible {
    public var operation: String
    public var error: ServiceError
    public var description: String { "\(operation): \(error)" }
}

/// Setting a host up for `deployctl server` and taking it away again, each as one transaction (issue 22, item 13):
/// the instance, its tags and its access key are written together or not at all, and every check runs before the
/// first write, so a rerun after a refusal starts from the same state.
extension ControlPlane {
    /// Registers `instanceName` (with ``instanceUserArn(_:)``), tags it, and makes its instance key.
    public func registerInstanceWithKey(instanceName: String, tags: [Tag]) throws(RegistrationFailure) -> AccessKey {
        let input = RegisterOnPremisesInstanceInput(instanceName: instanceName, iamUserArn: instanceUserArn(instanceName))
        let name = try step("RegisterOnPremisesInstance") { try validatedRegistration(input) }
        let tagChange = try step("AddTagsToOnPremisesInstances") { tags.isEmpty ? [] : try validatedInstanceTagChange(tags, [instanceName]) }
        let key = try step("CreateAccessKey") { try newAccessKey(userName: name, role: .instance, accessKeyId: nil, secretAccessKey: nil) }
        try transaction(startingAt: "RegisterOnPremisesInstance") { tx, step in
            try insertRegistration(tx, name: name, input)
            step = "AddTagsToOnPremisesInstances"
            if !tagChange.isEmpty { try addTags(tx, tagChange, to: [name]) }
            step = "CreateAccessKey"
            try insert(tx, key)
        }
        return key
    }

    /// The IAM user ARN `register` gives an instance (its agent sends it as its HostIdentifier).
    public func instanceUserArn(_ instanceName: String) -> String { "arn:aws:iam::\(account):user/deployctl/\(instanceName)" }

    /// Deregisters `instanceName` and deletes its instance keys, together.
    public func deregisterInstanceWithKeys(instanceName: String) throws(RegistrationFailure) {
        let name = try step("DeregisterOnPremisesInstance") { try Validate.instanceName(instanceName) }
        try transaction(startingAt: "DeregisterOnPremisesInstance") { tx, step in
            try markDeregistered(tx, name)
            step = "DeleteAccessKey"
            for record in try tx.accessKeys(userName: name) where record.role == AccessRole.instance.rawValue {
                noteAccessChange()
                try tx.deleteAccessKey(id: record.accessKeyId)
            }
        }
    }

    /// One store transaction whose refusal names the step it was at (`body` moves `step` along as it goes).
    private func transaction(startingAt first: String, _ body: (any StoreTransaction, inout String) throws -> Void) throws(RegistrationFailure) {
        var step = first
        do {
            try store.write { tx in try body(tx, &step) }
        } catch let error as ServiceError {
            throw RegistrationFailure(operation: step, error: error)
        } catch {
            throw RegistrationFailure(operation: step, error: ServiceError("InternalFailure", "\(error)"))
        }
    }

    private func step<T>(_ operation: String, _ body: () throws -> T) throws(RegistrationFailure) -> T {
        do {
            return try body()
        } catch let error as ServiceError {
            throw RegistrationFailure(operation: operation, error: error)
        } catch {
            throw RegistrationFailure(operation: operation, error: ServiceError("InternalFailure", "\(error)"))
        }
    }
}
