import AsyncHTTPClient
import ControlPlane
import DeployModel
import Foundation
import NIOCore
import NIOFoundationCompat
import Synchronization

/// Evaluates the Prometheus and HTTP alarms, every ``interval``, and records each
/// evaluation with the control plane (``ControlPlane/recordAlarmEvaluation(name:observation:)``), which stops the
/// deployments an ALARM concerns in the same transaction. Requests go out with a timeout and no store transaction
/// open: a slow Prometheus delays the next evaluation, never a deployment's writes.
///
/// - Prometheus: `GET <url>/api/v1/query?query=<query>`; a non-empty result is firing, and the alarm is in ALARM once
///   it has been firing for `forSeconds` (as an alerting rule's `for`; pending meanwhile, shown OK). An error answer
///   or an unreachable server is INSUFFICIENT_DATA, and unreadable.
/// - HTTP: `GET <url>`; ALARM after `failures` answers in a row that are not `expectStatus` (no answer counts), OK on
///   the next good one.
///
/// What it remembers between evaluations (since when a query fires, how many probes failed in a row) lives in
/// memory: a restarted evaluator starts over, as Prometheus's own pending alerts do.
public final class AlarmEvaluator: Sendable {
    public let interval: Duration
    public let timeout: TimeAmount
    /// How the evaluator reads the watched alarms and records evaluations: the control plane's calls, run where the
    /// caller wants blocking store work to run (the server: its reader and writer threads).
    let watched: @Sendable () async throws -> [WatchedAlarm]
    let record: @Sendable (WatchedAlarm, AlarmObservation) async throws -> [String]
    private let memory = Mutex<[String: Memory]>([:])

    struct Memory {
        var firingSince: Date?
        var failures = 0
        var definition: AlarmDefinition
    }

    public init(
        interval: Duration = .seconds(5), timeout: TimeAmount = .seconds(5), watched: @escaping @Sendable () async throws -> [WatchedAlarm],
        record: @escaping @Sendable (WatchedAlarm, AlarmObservation) async throws -> [String]
    ) {
        self.interval = interval
        self.timeout = timeout
        self.watched = watched
        self.record = record
    }

    /// An evaluator that calls the control plane on the caller's threads (a CLI process).
    public convenience init(plane: ControlPlane, interval: Duration = .seconds(5), timeout: TimeAmount = .seconds(5)) {
        self.init(
            interval: interval, timeout: timeout, watched: { try plane.evaluatedAlarms() },
            record: { try plane.recordAlarmEvaluation(name: $0.name, definition: $0.definition, observation: $1) })
    }

    /// Evaluates until cancelled; `stopped` gets the deployments each evaluation stopped (their agents may be waiting).
    public func run(stopped: @escaping @Sendable ([String]) -> Void = { _ in }) async {
        while !Task.isCancelled {
            let ids = await evaluateOnce()
            if !ids.isEmpty { stopped(ids) }
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
        }
    }

    /// One round over the watched alarms; answers the deployments stopped.
    public func evaluateOnce() async -> [String] {
        guard let alarms = try? await watched() else { return [] }
        var stopped: [String] = []
        for alarm in alarms {
            let observation = await evaluate(alarm)
            if let ids = try? await record(alarm, observation) { stopped += ids }
        }
        return stopped
    }

    /// Probes one alarm and turns the answer into its state, with what it remembers of earlier rounds.
    func evaluate(_ alarm: WatchedAlarm) async -> AlarmObservation {
        let now = Date()
        switch alarm.definition.kind {
        case .manual:
            return AlarmObservation(state: alarm.state, reason: "manual")
        case .prometheus:
            let answer = await queryPrometheus(alarm.definition)
            return remember(alarm) { memory in
                switch answer {
                case .failure(let reason):
                    memory.firingSince = nil
                    return AlarmObservation(state: "INSUFFICIENT_DATA", reason: reason, unreadable: true)
                case .success(let series) where series.isEmpty:
                    memory.firingSince = nil
                    return AlarmObservation(state: "OK", reason: "The query returned no series.")
                case .success(let series):
                    let since = memory.firingSince ?? now
                    memory.firingSince = since
                    let firing = Int(now.timeIntervalSince(since))
                    let needed = alarm.definition.forSeconds ?? 0
                    let shown = series.prefix(3).joined(separator: ", ")
                    if firing >= needed {
                        return AlarmObservation(
                            state: "ALARM", reason: "The query has returned \(series.count) series for \(firing) s (for: \(needed) s): \(shown)")
                    }
                    return AlarmObservation(
                        state: "OK", reason: "Pending: the query has returned \(series.count) series for \(firing) of \(needed) s: \(shown)")
                }
            }
        case .http:
            let answer = await probe(alarm.definition)
            return remember(alarm) { memory in
                let expected = alarm.definition.expectStatus ?? 200
                let limit = alarm.definition.failures ?? 3
                if case .success(let status) = answer, status == expected {
                    memory.failures = 0
                    return AlarmObservation(state: "OK", reason: "\(alarm.definition.httpURL ?? "") answered \(status).")
                }
                memory.failures += 1
                let what: String
                switch answer {
                case .success(let status): what = "answered \(status), expected \(expected)"
                case .failure(let reason): what = reason
                }
                let state = memory.failures >= limit ? "ALARM" : "OK"
                return AlarmObservation(state: state, reason: "\(alarm.definition.httpURL ?? "") \(what) (\(memory.failures) of \(limit) in a row).")
            }
        }
    }

    /// Runs `body` on the alarm's memory (forgotten when its definition changed).
    private func remember(_ alarm: WatchedAlarm, _ body: (inout Memory) -> AlarmObservation) -> AlarmObservation {
        memory.withLock { memory in
            var entry = memory[alarm.name].flatMap { $0.definition == alarm.definition ? $0 : nil } ?? Memory(definition: alarm.definition)
            let observation = body(&entry)
            memory[alarm.name] = entry
            return observation
        }
    }

    enum Answer<Value: Sendable>: Sendable {
        case success(Value)
        case failure(String)
    }

    /// The series an instant query returns, each as its labels (`{job="web"}`), or why it could not be read.
    func queryPrometheus(_ definition: AlarmDefinition) async -> Answer<[String]> {
        guard var components = URLComponents(string: definition.prometheusURL ?? "") else { return .failure("bad URL") }
        components.path = (components.path.hasSuffix("/") ? String(components.path.dropLast()) : components.path) + "/api/v1/query"
        components.queryItems = [URLQueryItem(name: "query", value: definition.prometheusQuery ?? "")]
        guard let url = components.url?.absoluteString else { return .failure("bad URL") }
        let body: Data
        switch await get(url) {
        case .failure(let reason): return .failure("Prometheus at \(definition.prometheusURL ?? "") cannot be read: \(reason)")
        case .success(let (status, data)):
            guard status == 200 else {
                let detail = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["error"] as? String ?? "HTTP \(status)"
                return .failure("Prometheus refused the query: \(detail.prefix(300))")
            }
            body = data
        }
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any], object["status"] as? String == "success",
            let data = object["data"] as? [String: Any]
        else { return .failure("Prometheus answered something that is not a query result") }
        switch data["result"] {
        case let vector as [[String: Any]]:
            return .success(vector.map { Self.labels($0["metric"] as? [String: Any] ?? [:]) })
        case let scalar as [Any]:
            // A scalar or string result: firing when it is there and not 0.
            return .success((scalar.last as? String).map { $0 == "0" ? [] : [$0] } ?? [])
        default:
            return .failure("Prometheus answered a result of type \(data["resultType"] as? String ?? "unknown")")
        }
    }

    static func labels(_ metric: [String: Any]) -> String {
        "{" + metric.keys.sorted().map { "\($0)=\"\(metric[$0] as? String ?? "")\"" }.joined(separator: ",") + "}"
    }

    /// The status an HTTP probe got, or why it got none.
    func probe(_ definition: AlarmDefinition) async -> Answer<Int> {
        switch await get(definition.httpURL ?? "") {
        case .success(let (status, _)): return .success(status)
        case .failure(let reason): return .failure("did not answer: \(reason)")
        }
    }

    /// GET with the evaluator's timeout; at most 1 MiB of body is read.
    func get(_ url: String) async -> Answer<(Int, Data)> {
        do {
            var request = HTTPClientRequest(url: url)
            request.method = .GET
            let response = try await HTTPClient.shared.execute(request, timeout: timeout)
            let buffer = try await response.body.collect(upTo: 1 << 20)
            return .success((Int(response.status.code), Data(buffer: buffer)))
        } catch {
            return .failure("\(error)".prefix(300).description)
        }
    }
}
