import ControlPlane
import DeployModel
import Foundation
import Testing

/// Access keys and roles for `deployctl server` (issue 10), on both stores.
@Suite struct AccessKeyTests {
    @Test(arguments: StoreKind.selected)
    func keysAreCreatedImportedDeactivatedAndDeleted(_ store: StoreKind) throws {
        let f = try PlaneFixture(store)
        let made = try f.plane.createAccessKey(userName: "ci")
        #expect(made.accessKeyId.hasPrefix("AKIA") && made.accessKeyId.count == 20)
        #expect(made.secretAccessKey?.count == 40)
        #expect(made.role == .deployer)
        #expect(try f.plane.activeCredentials(accessKeyId: made.accessKeyId)?.secret == made.secretAccessKey)
        let imported = try f.plane.createAccessKey(
            userName: "ops", role: .admin, accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
        #expect(imported.accessKeyId == "AKIAIOSFODNN7EXAMPLE")
        #expect(
            serviceErrorCode {
                _ = try f.plane.createAccessKey(userName: "x", accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "0123456789abcdef")
            } == "EntityAlreadyExists")
        #expect(serviceErrorCode { _ = try f.plane.createAccessKey(userName: "x", accessKeyId: "AKIAIOSFODNN7EXAMPLE") } == "ValidationError")
        #expect(serviceErrorCode { _ = try f.plane.createAccessKey(userName: "bad name") } == "ValidationError")
        let listed = try f.plane.listAccessKeys()
        #expect(listed.map(\.userName) == ["ci", "ops"])
        #expect(listed.allSatisfy { $0.secretAccessKey == nil })
        #expect(try f.plane.listAccessKeys(userName: "ops").map(\.role) == [.admin])
        try f.plane.updateAccessKey(accessKeyId: imported.accessKeyId, status: "Inactive")
        #expect(try f.plane.activeCredentials(accessKeyId: imported.accessKeyId) == nil, "an inactive key signs nothing")
        #expect(serviceErrorCode { try f.plane.updateAccessKey(accessKeyId: imported.accessKeyId, status: "Maybe") } == "ValidationError")
        try f.plane.deleteAccessKey(accessKeyId: made.accessKeyId)
        #expect(try f.plane.activeCredentials(accessKeyId: made.accessKeyId) == nil)
        #expect(serviceErrorCode { try f.plane.deleteAccessKey(accessKeyId: made.accessKeyId) } == "NoSuchEntity")
    }

    @Test func rolesBoundWhatAKeyMayCall() {
        for operation in ["GetDeployment", "ListApplications", "BatchGetDeploymentTargets"] {
            #expect(AccessRole.readOnly.allows(operation) && AccessRole.deployer.allows(operation) && AccessRole.admin.allows(operation))
        }
        for operation in ["CreateDeployment", "StopDeployment", "RegisterApplicationRevision"] {
            #expect(!AccessRole.readOnly.allows(operation) && AccessRole.deployer.allows(operation) && AccessRole.admin.allows(operation))
        }
        for operation in ["DeleteApplication", "CreateDeploymentGroup", "RegisterOnPremisesInstance", "TagResource"] {
            #expect(!AccessRole.readOnly.allows(operation) && !AccessRole.deployer.allows(operation) && AccessRole.admin.allows(operation))
        }
    }
}
