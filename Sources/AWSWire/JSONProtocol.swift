import DeployModel
import Foundation

/// The AWS JSON 1.1 protocol of the CodeDeploy API, as botocore speaks it: `POST /` with
/// `X-Amz-Target: CodeDeploy_20141006.<Operation>` and a JSON body; the answer is the output shape with epoch-second
/// timestamps, or HTTP 400 with `{"__type": "<Exception>", "message": "…"}`. Transport-free, so the same dispatch is
/// tested in process and served over HTTP (ARCHITECTURE.md).
public enum JSONProtocol {
    public static let targetPrefix = "CodeDeploy_20141006."
    public static let contentType = "application/x-amz-json-1.1"
    /// The largest request body accepted (a CodeDeploy request is a few KB).
    public static let maxBodyBytes = 1 << 20

    /// What goes back on the wire.
    public struct Response: Sendable, Equatable {
        public var status: Int
        public var body: String
        /// The exception name when the request failed (for the access log and metrics).
        public var errorCode: String?

        public init(status: Int, body: String, errorCode: String?) {
            self.status = status
            self.body = body
            self.errorCode = errorCode
        }

        /// `{"__type": code, "message": …}` with `status`.
        public static func error(_ code: String, _ message: String, status: Int = 400) -> Response {
            let body = JSONValue.members([("__type", .string(code)), ("message", .string(message))]).compact()
            return Response(status: status, body: body, errorCode: code)
        }
    }

    /// The operation an `X-Amz-Target` names, or nil.
    public static func operation(target: String?) -> CodeDeployOperation? {
        guard let target, target.hasPrefix(targetPrefix) else { return nil }
        return CodeDeployOperation.all[String(target.dropFirst(targetPrefix.count))]
    }

    /// Decodes, calls `api`, encodes: every failure becomes the error AWS sends for it.
    public static func handle(target: String?, body: Data, api: any CodeDeployAPI) async -> Response {
        guard let target, target.hasPrefix(targetPrefix) else {
            return .error("UnknownOperationException", "Missing or unrecognized X-Amz-Target (expected \(targetPrefix)<Operation>).")
        }
        guard let operation = operation(target: target) else {
            return .error("UnknownOperationException", "Unknown operation \(String(target.dropFirst(targetPrefix.count)).prefix(100)).")
        }
        return await handle(operation, body: body, api: api)
    }

    /// ``handle(target:body:api:)`` for an operation already looked up (the server looks it up once per request).
    public static func handle(_ operation: CodeDeployOperation, body: Data, api: any CodeDeployAPI) async -> Response {
        guard body.count <= maxBodyBytes else {
            return .error("SerializationException", "The request body is larger than \(maxBodyBytes) bytes.", status: 413)
        }
        let request: JSONValue
        do {
            guard let text = String(validating: body, as: UTF8.self) else { throw JSONSyntaxErrorText("the body is not UTF-8") }
            request = body.isEmpty ? .object([]) : try JSONValue.parse(text)
            guard case .object = request else { throw JSONSyntaxErrorText("the body must be a JSON object") }
        } catch {
            return .error("SerializationException", "Malformed request body: \(String(describing: error).prefix(200))")
        }
        do {
            let output = try await operation.invoke(api, request, JSONValueEncoder())
            return Response(status: 200, body: output.compact(), errorCode: nil)
        } catch let error as ServiceError {
            return .error(error.code, error.message)
        } catch let error as ServiceUnavailable {
            return .error("ServiceUnavailable", error.message, status: 503)
        } catch let error as ParameterValidationError {
            if let refusal = error.serviceError(operation: operation.name) { return .error(refusal.code, refusal.message) }
            return .error("ValidationException", error.description)
        } catch {
            // A fault of ours, not of the request: 500, without internals.
            return .error("InternalFailure", "The server could not complete the request.", status: 500)
        }
    }

    struct JSONSyntaxErrorText: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
