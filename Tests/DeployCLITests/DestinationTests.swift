import ArgumentParser
import Testing

@testable import DeployCLI

/// `GlobalOptions.destination(for:)` is the one place that decides whether a command talks to a server or opens
/// this host's state file.
@Suite struct DestinationTests {
    static let endpoint = "https://127.0.0.1:8443"

    func options(_ arguments: [String]) throws -> GlobalOptions { try GlobalOptions.parse(arguments) }

    @Test func theAPIGoesToTheEndpointFromTheFlagOrTheEnvironment() throws {
        #expect(try options(["--endpoint-url", Self.endpoint]).destination(for: .api, environment: [:]) == .server(endpoint: Self.endpoint))
        #expect(
            try options([]).destination(for: .api, environment: ["AWS_ENDPOINT_URL_CODEDEPLOY": Self.endpoint]) == .server(endpoint: Self.endpoint))
        #expect(try options([]).destination(for: .api, environment: ["AWS_ENDPOINT_URL": ""]) == .stateFile)
        #expect(try options([]).destination(for: .api, environment: [:]) == .stateFile)
    }

    @Test func uploadsFollowS3sOwnEndpointFirst() throws {
        let s3 = "https://127.0.0.1:9000"
        let environment = ["AWS_ENDPOINT_URL_S3": s3, "AWS_ENDPOINT_URL_CODEDEPLOY": Self.endpoint]
        #expect(try options([]).destination(for: .uploads, environment: environment) == .server(endpoint: s3))
        #expect(
            try options(["--endpoint-url", Self.endpoint]).destination(for: .uploads, environment: environment) == .server(endpoint: Self.endpoint))
    }

    @Test func aStateFileNamedOnPurposeRegistersLocallyEvenWithAnEndpoint() throws {
        let named = try options(["--state", "/tmp/state.db", "--endpoint-url", Self.endpoint])
        #expect(try named.destination(for: .registration, environment: [:]) == .stateFile)
        #expect(try named.destination(for: .api, environment: [:]) == .server(endpoint: Self.endpoint))
        let remote = try options(["--endpoint-url", Self.endpoint])
        #expect(try remote.destination(for: .registration, environment: [:]) == .server(endpoint: Self.endpoint))
    }

    @Test func aStateFileOnlyCommandRefusesAnExplicitEndpoint() throws {
        #expect(try options([]).destination(for: .stateFileOnly(command: "deployctl server"), environment: [:]) == .stateFile)
        #expect(throws: CLIFailure.self) {
            try options(["--endpoint-url", Self.endpoint]).destination(for: .stateFileOnly(command: "deployctl server"), environment: [:])
        }
        #expect(throws: CLIFailure.self) {
            try options(["--endpoint-url", Self.endpoint]).openControlPlane(for: .stateFileOnly(command: "deployctl create-access-key"))
        }
    }
}
