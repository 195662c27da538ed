import DeployClient
import DeployModel
import DeployStoreSQLite
import Testing

@testable import ControlPlane
@testable import DeployCLI

/// The one mapping from library errors to how the CLI ends (exit code and line).
@Suite struct CLIFailureTests {
    struct Unrelated: Error, Equatable {}

    @Test func aServiceRefusalIsExit254NamingTheOperationAndItsException() throws {
        let mapped = try #require(
            CLIFailure.mapping(ServiceError("InvalidRevisionException", "bad s3Location"), calling: "CreateDeployment") as? CLIFailure)
        #expect(mapped.exitCode == 254)
        #expect(mapped.message == "An error occurred (InvalidRevisionException) when calling the CreateDeployment operation: bad s3Location")
    }

    @Test func theMessageIsWordedByTheCaller() throws {
        let mapped = try #require(
            CLIFailure.mapping(
                ServiceError("X", "s3Location is wrong"), calling: "Op", message: { $0.replacingOccurrences(of: "s3Location", with: "--s3-location") }
            )
                as? CLIFailure)
        #expect(mapped == .service(operation: "Op", code: "X", message: "--s3-location is wrong"))
    }

    @Test func aRegistrationStepNamesItsOwnOperation() throws {
        let failure = RegistrationFailure(operation: "CreateAccessKey", error: ServiceError("LimitExceededException", "too many"))
        let mapped = try #require(CLIFailure.mapping(failure, calling: "RegisterOnPremisesInstance") as? CLIFailure)
        #expect(mapped == .service(operation: "CreateAccessKey", code: "LimitExceededException", message: "too many"))
    }

    @Test func aStateFileOrServerThatCannotBeUsedIsExit255() throws {
        let remote = try #require(CLIFailure.mapping(RemoteError("connection refused"), calling: "GetDeployment") as? CLIFailure)
        #expect(remote == .other("connection refused"))
        #expect(remote.exitCode == 255)
        let state = StateFileError.unreadable(path: "/nonexistent/state.db", reason: "no such directory")
        let mapped = try #require(CLIFailure.mapping(state, calling: "GetDeployment") as? CLIFailure)
        #expect(mapped == .other(state.description))
        #expect(mapped.exitCode == 255)
    }

    @Test func aCLIFailureAndAnythingElsePassUnchanged() throws {
        #expect(CLIFailure.mapping(CLIFailure.usage("no"), calling: "Op") as? CLIFailure == .usage("no"))
        #expect(CLIFailure.mapping(Unrelated(), calling: "Op") as? Unrelated == Unrelated())
    }

    @Test func callingMapsWhatItsBodyThrows() async throws {
        await #expect(throws: CLIFailure.service(operation: "ListAgents", code: "C", message: "m")) {
            try await CLIFailure.calling("ListAgents") { () async throws -> Int in throw ServiceError("C", "m") }
        }
        #expect(try CLIFailure.calling("Op") { 7 } == 7)
    }
}
