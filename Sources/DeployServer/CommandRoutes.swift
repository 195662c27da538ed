import AWSWire
import ControlPlane
import DeployModel
import Foundation
import HostCommandModel
import Hummingbird
import NIOCore
import Synchronization

/// The agent command service (`CodeDeployCommandService_v20141006.*`) for deployctl's agent and AWS's: polls held
/// until there is work, one command per host at a time in lifecycle order (the control plane's rules), the spec in a
/// PKCS7/JSON envelope, idempotent completes. Only an instance's own key (`deployctl register`) may call it, and only
/// for that instance.
struct CommandRoutes {
    let responder: ServerResponder
    let requestId: String
    let channel: any Channel

    /// The longest body an agent sends (diagnostics are at most 8 KB).
    static let maxBodyBytes = 64 << 10

    struct Refusal: Error {
        var status: Int
        var code: String
        var message: String
    }

    func fail(_ status: Int, _ code: String, _ message: String, operation: String) -> WireResponse {
        WireResponse(JSONProtocol.Response.error(code, message, status: status), operation: operation)
    }

    func ok(_ value: JSONValue, operation: String) -> WireResponse {
        WireResponse(status: 200, contentType: JSONProtocol.contentType, text: value.compact(), operation: operation)
    }

    func handle(_ request: Request, _ wire: WireRequest, operation target: String, keyId: inout String) async -> WireResponse {
        // Metrics labels and log fields come from the fixed operation list only: a stranger's invented target must
        // not create one (issue 22, item 3).
        let known = CommandProtocol.operations.contains(target)
        let operation = known ? target : "Unknown"
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: Self.maxBodyBytes)
        } catch {
            return fail(413, "ClientException", "The request body is larger than \(Self.maxBodyBytes) bytes.", operation: operation)
        }
        let bytes = Data(body.readableBytesView)
        let signed = SigV4.Request(method: wire.method, path: wire.path, query: wire.query, headers: wire.headers, body: bytes)
        let key: (role: AccessRole, userName: String)
        do {
            let signer = try responder.credentials.verify(signed, services: CommandProtocol.signingServices)
            keyId = signer.accessKeyId
            key = (signer.role, signer.userName)
        } catch {
            return fail(error == .missing ? 403 : 400, error.code, error.description, operation: operation)
        }
        guard known else {
            return fail(400, "UnknownOperationException", "Unknown operation \(LogText.clean(target, limit: 100)).", operation: operation)
        }
        guard key.role == .instance else {
            return fail(
                400, "AccessDeniedException",
                "The access key \(keyId) is not an instance's key; agents use the key `deployctl register` made for their instance.",
                operation: operation)
        }
        let input: JSONValue
        do {
            input = bytes.isEmpty ? .object([]) : try JSONValue.parse(String(decoding: bytes, as: UTF8.self))
            guard case .object = input else { throw Refusal(status: 400, code: "SerializationException", message: "not an object") }
        } catch {
            return fail(400, "SerializationException", "Malformed request body.", operation: operation)
        }
        let address = channel.remoteAddress?.ipAddress ?? "unknown"
        let agent = wire.header("user-agent") ?? "unknown"
        responder.agentContacts.record(key.userName, address: address, agent: agent)
        // Recorded again when the call ends: a held poll is the agent being there until it answers.
        defer { responder.agentContacts.record(key.userName, address: address, agent: agent) }
        do {
            let answer: JSONValue
            switch operation {
            case "PollHostCommand": answer = try await poll(input, instance: key.userName)
            case "GetDeploymentSpecification": answer = try await specification(input, instance: key.userName)
            case "PutHostCommandAcknowledgement": answer = try await acknowledge(input, instance: key.userName)
            case "PutHostCommandComplete": answer = try await complete(input, instance: key.userName)
            default: answer = try await update(input, instance: key.userName)
            }
            return ok(answer, operation: operation)
        } catch let refusal as Refusal {
            if refusal.code == "AccessDeniedException" { logRefusal(refusal.message, keyId: keyId, caller: key.userName, operation: operation) }
            return fail(refusal.status, refusal.code, refusal.message, operation: operation)
        } catch let error as ServiceError where error.code == "AccessDeniedException" {
            // Another instance's command (item 1 of issue 22): logged with both identities, nothing changed.
            logRefusal(error.message, keyId: keyId, caller: key.userName, operation: operation)
            return fail(400, error.code, error.message, operation: operation)
        } catch let error as ServiceError {
            return fail(400, "ClientException", error.message, operation: operation)
        } catch let refusal as BlockingExecutor.Refusal {
            // The agent retries a ThrottlingException with backoff, as it does against AWS.
            return fail(503, "ThrottlingException", refusal.description, operation: operation)
        } catch let error as ServiceUnavailable {
            // The store cannot be reached now (PostgreSQL restarting): nothing was done, and the agent retries.
            return fail(503, "ThrottlingException", error.message, operation: operation)
        } catch {
            responder.logger.error(
                "command service failed", metadata: ["request_id": .string(requestId), "operation": .string(operation), "error": .string("\(error)")])
            return fail(500, "ServerException", "The server could not complete the request.", operation: operation)
        }
    }

    /// A caller that tried to act for another instance: its key and instance, and what it named (in `reason`).
    func logRefusal(_ reason: String, keyId: String, caller: String, operation: String) {
        responder.logger.warning(
            "host command refused",
            metadata: [
                "request_id": .string(requestId), "key_id": .string(keyId), "caller_instance": .string(caller), "operation": .string(operation),
                "reason": .string(reason),
            ])
    }

    // MARK: Identity

    /// The HostIdentifier must be the instance's registered ARN (the agent's `iam_user_arn` or `iam_session_arn`).
    func checkHost(_ input: JSONValue, instance: String) async throws -> String {
        guard let host = input["HostIdentifier"]?.stringValue, !host.isEmpty, host.count <= 2048 else {
            throw Refusal(status: 400, code: "ClientException", message: "HostIdentifier is required.")
        }
        let arns = try await responder.credentials.identities(of: instance, readers: responder.readers)
        guard arns.contains(host) else {
            throw Refusal(
                status: 400, code: "AccessDeniedException",
                message: "The HostIdentifier \(host.prefix(200)) is not the instance \(instance) this access key belongs to.")
        }
        return host
    }

    /// The identifier the caller handed back, checked against the caller: it must name the caller's own instance.
    /// That the command it names is the caller's (instance and deployment) is checked in the control plane, in the
    /// same transaction as the change.
    func command(_ input: JSONValue, instance: String) throws -> (CommandProtocol.CommandIdentifier, HostCommandCaller) {
        guard let text = input["HostCommandIdentifier"]?.stringValue, let identifier = CommandProtocol.CommandIdentifier(decoding: text) else {
            throw Refusal(status: 400, code: "ClientException", message: "HostCommandIdentifier is missing or not one this server issued.")
        }
        guard identifier.instanceName == instance else {
            throw Refusal(
                status: 400, code: "AccessDeniedException",
                message:
                    "The host command names instance \(LogText.clean(identifier.instanceName, limit: 100)), not \(instance) whose key signed the request."
            )
        }
        return (identifier, HostCommandCaller(instanceName: instance, deploymentId: identifier.deploymentId))
    }

    // MARK: Operations

    func poll(_ input: JSONValue, instance: String) async throws -> JSONValue {
        let host = try await checkHost(input, instance: instance)
        let deadline = ContinuousClock.now + responder.pollHold
        // Woken but nothing found: perhaps another poll of this instance (a connection the agent abandoned) took the
        // command; it can be handed out again after the redelivery delay, so look again then.
        let recheck = Duration.milliseconds(Int64(responder.plane.redeliveryDelay * 1000) + 250)
        var lookAgainSoon = false
        let poll = responder.waiters.begin(for: instance)
        while true {
            // The agent went away while its poll was held, or polls again on another connection (it was killed and
            // restarted): hand this poll nothing; the agent's newest poll gets the command.
            guard channel.isActive, responder.waiters.isNewest(poll, for: instance) else { return .object([]) }
            // Taken before looking: a wake between the look and the wait is not missed.
            let ticket = responder.waiters.ticket(for: instance)
            // Taken before the look too: a commit during it makes the look's answer stale.
            let mark = responder.waiters.mark(for: instance)
            var found: HostCommand?
            if !responder.waiters.isSettled(instance, now: mark) {
                let look = try await responder.onReaders { plane in try plane.lookForHostCommand(instanceName: instance) }
                responder.waiters.settle(instance, at: look.settled ? mark : nil)
                if look.mayHave {
                    found = try await responder.onWriter { plane in try plane.takeHostCommand(instanceName: instance) }
                }
            }
            if let command = found {
                let identifier = CommandProtocol.CommandIdentifier(
                    commandId: command.id, deploymentId: command.deploymentId, instanceName: instance)
                let execution = CommandProtocol.executionId(
                    region: responder.plane.region, account: responder.plane.account, deploymentId: command.deploymentId)
                return .members([
                    (
                        "HostCommand",
                        .members([
                            ("HostCommandIdentifier", .string(identifier.encoded)), ("HostIdentifier", .string(host)),
                            ("DeploymentExecutionId", .string(execution)), ("CommandName", .string(command.lifecycleEvent)),
                            ("Nonce", .int(Int(Date().timeIntervalSince1970 * 1000))),
                        ])
                    )
                ])
            }
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero || responder.waiters.isClosed { return .object([]) }
            let timeout = lookAgainSoon ? min(remaining, recheck) : remaining
            lookAgainSoon = await responder.waiters.wait(for: instance, since: ticket, timeout: timeout)
            // The hold ran out with no wake: nothing changed for this instance that a look would find now (the
            // agent's next poll looks again), so answer without another read; an idle fleet's polls are most of
            // what it costs.
            if !lookAgainSoon, ContinuousClock.now >= deadline { return .object([]) }
        }
    }

    func specification(_ input: JSONValue, instance: String) async throws -> JSONValue {
        _ = try await checkHost(input, instance: instance)
        guard let execution = input["DeploymentExecutionId"]?.stringValue, let deploymentId = CommandProtocol.deploymentId(fromExecutionId: execution)
        else {
            throw Refusal(status: 400, code: "ClientException", message: "DeploymentExecutionId is missing or not one this server issued.")
        }
        let spec = try await responder.onReaders { plane in try plane.deploymentSpecification(deploymentId: deploymentId, instanceName: instance) }
        let envelope = try responder.signer.envelope(CommandProtocol.specificationJSON(spec))
        return .members([
            ("DeploymentSystem", .string("CodeDeploy")),
            (
                "DeploymentSpecification",
                .members([("GenericEnvelope", .members([("Format", .string("PKCS7/JSON")), ("Payload", .string(envelope))]))])
            ),
        ])
    }

    /// The AWS agent says nothing of how long a command will take: it gets an hour (the longest a hook may run by
    /// default); deployctl's agent sends the sum of its scripts' timeouts (`ExpectedSeconds`, ignored by AWS).
    static let defaultExpectedSeconds = 3600

    func acknowledge(_ input: JSONValue, instance: String) async throws -> JSONValue {
        let (identifier, caller) = try command(input, instance: instance)
        var expected = Self.defaultExpectedSeconds
        if let payload = input["Diagnostics"]?["Payload"]?.stringValue, let fields = try? JSONValue.parse(String(payload.prefix(8192))),
            case .int(let seconds)? = fields["ExpectedSeconds"]
        {
            expected = seconds
        }
        let seconds = expected
        do {
            try await responder.onWriter { plane in
                try plane.acknowledgeHostCommand(id: identifier.commandId, caller: caller, expectedSeconds: seconds)
            }
            return .members([("CommandStatus", .string("InProgress"))])
        } catch let error as ServiceError where error.code != "AccessDeniedException" {
            // Stopped or expired meanwhile: the agent skips the command.
            return .members([("CommandStatus", .string("Failed"))])
        }
    }

    func complete(_ input: JSONValue, instance: String) async throws -> JSONValue {
        let (identifier, caller) = try command(input, instance: instance)
        let status = input["CommandStatus"]?.stringValue ?? "Failed"
        guard ["Succeeded", "Failed"].contains(status) else {
            throw Refusal(status: 400, code: "ClientException", message: "CommandStatus must be Succeeded or Failed.")
        }
        let report = CommandProtocol.report(status: status, diagnostics: input["Diagnostics"])
        let started: [String]
        do {
            started = try await responder.onWriter { plane in
                try plane.completeHostCommand(id: identifier.commandId, caller: caller, report: report)
            }
        } catch let error as ServiceError where error.code != "AccessDeniedException" {
            // A repeat (AWS's agent sends a second Failed), or a complete for a command that expired: the first stays.
            return .object([])
        }
        // This instance's next command is due now, and AWS's agent polls while a command runs (it sleeps one second
        // after every poll), so its poll may be held already. Other targets started (OneAtATime, HalfAtATime): their
        // agents may be holding polls too.
        responder.waiters.wake([instance] + started)
        return .object([])
    }

    func update(_ input: JSONValue, instance: String) async throws -> JSONValue {
        let (identifier, caller) = try command(input, instance: instance)
        var note = input["Diagnostics"]?["Payload"]?.stringValue ?? ""
        if let fields = try? JSONValue.parse(String(note.prefix(8192))), let text = fields["note"]?.stringValue { note = text }
        let text = String(note.prefix(1024))
        if !text.isEmpty {
            do {
                try await responder.onWriter { plane in try plane.postHostCommandUpdate(id: identifier.commandId, caller: caller, note: text) }
            } catch let error as ServiceError where error.code != "AccessDeniedException" {
                // A note for a command that finished meanwhile: nothing to show it on.
            }
        }
        return .members([("CommandStatus", .string("InProgress"))])
    }
}
