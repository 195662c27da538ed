import AWSWire
import ControlPlane
import DeployModel
import DeployStore
import Foundation
import Testing

/// The AWS JSON 1.1 dispatch over the control plane, in process (the server will serve exactly this).
@Suite struct JSONProtocolTests {
    static func call(_ api: any CodeDeployAPI, _ operation: String, _ body: String) async -> JSONProtocol.Response {
        await JSONProtocol.handle(target: "CodeDeploy_20141006." + operation, body: Data(body.utf8), api: api)
    }

    @Test func operationsAnswerWithTheOutputShapeAndEpochTimestamps() async throws {
        let plane = ControlPlane(store: MemoryStore())
        let created = await Self.call(plane, "CreateApplication", #"{"applicationName": "web"}"#)
        #expect(created.status == 200)
        #expect(created.body.hasPrefix(#"{"applicationId":""#))
        let got = await Self.call(plane, "GetApplication", #"{"applicationName": "web"}"#)
        #expect(got.status == 200)
        let application = try #require(try JSONValue.parse(got.body)["application"])
        guard case .double = application["createTime"] else {
            Issue.record("createTime is not epoch seconds: \(got.body)")
            return
        }
        // botocore's own JSON parser reads it into the output shape (timestamps as datetimes).
        let parsed = try Self.botocoreParse("GetApplication", got.body)
        #expect(parsed.contains("'applicationName': 'web'") && parsed.contains("datetime.datetime("), "\(parsed)")
        // An operation without output answers {}.
        #expect(await Self.call(plane, "DeleteApplication", #"{"applicationName": "web"}"#) == .init(status: 200, body: "{}", errorCode: nil))
    }

    @Test func failuresAreAwsErrors() async throws {
        let plane = ControlPlane(store: MemoryStore())
        let missing = await Self.call(plane, "GetApplication", #"{"applicationName": "nope"}"#)
        #expect(missing.status == 400)
        #expect(missing.errorCode == "ApplicationDoesNotExistException")
        #expect(try JSONValue.parse(missing.body)["__type"] == .string("ApplicationDoesNotExistException"))
        #expect(await Self.call(plane, "NoSuchOperation", "{}").errorCode == "UnknownOperationException")
        #expect(await JSONProtocol.handle(target: nil, body: Data(), api: plane).errorCode == "UnknownOperationException")
        #expect(await Self.call(plane, "GetApplication", "{not json").errorCode == "SerializationException")
        #expect(await Self.call(plane, "GetApplication", "[1]").errorCode == "SerializationException")
        let typed = await Self.call(plane, "GetApplication", #"{"applicationName": 5}"#)
        #expect(typed.errorCode == "ValidationException")
        #expect(typed.body.contains("applicationName"))
        let big = await JSONProtocol.handle(
            target: "CodeDeploy_20141006.GetApplication", body: Data(repeating: 0x20, count: JSONProtocol.maxBodyBytes + 1), api: plane)
        #expect(big.status == 413)
    }

    /// Parses a response body with botocore's JSONParser against the operation's output shape.
    static func botocoreParse(_ operation: String, _ body: String) throws -> String {
        let script = """
            import sys, botocore.session, botocore.parsers
            model = botocore.session.get_session().get_service_model('codedeploy').operation_model(sys.argv[1])
            parsed = botocore.parsers.create_parser('json').parse(
                {'body': sys.stdin.buffer.read(), 'headers': {}, 'status_code': 200}, model.output_shape)
            parsed.pop('ResponseMetadata', None)
            print(repr(parsed))
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, operation]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(body.utf8))
        try input.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text
    }
}
