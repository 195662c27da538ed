import Foundation
import TestSupport

/// Runs the built `deployctl` binary as a user would, against a state file of its own.
struct Deployctl {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static var binary: String { BuiltBinary.path }

    let directory: URL
    var statePath: String { directory.appendingPathComponent("state.db").path }

    /// `makingState: false` leaves the state file to the commands (to check that one does not create it).
    init(makingState: Bool = true) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        guard makingState else { return }
        // The state file exists, as after any first write (a command that only reads never creates a named one):
        // deleting an application that does not exist writes nothing else.
        let made = try run(["delete-application", "--application-name", "none"])
        guard made.status == 0 else { throw Failure("cannot make the state file: \(made.stderr)") }
    }

    func cleanUp() { try? FileManager.default.removeItem(at: directory) }

    /// Runs `deployctl ARGS --state <this state>` and collects its output.
    @discardableResult
    func run(_ arguments: [String], withState: Bool = true, environment extra: [String: String] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments + (withState ? ["--state", statePath] : [])
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "DEPLOYCTL_STATE")
        environment.merge(extra) { _, new in new }
        process.environment = environment
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // stderr is drained on its own thread, so a chatty command (a waiter's progress lines) cannot fill the
        // pipe and block while we read stdout.
        let errorReader = DataReader(err.fileHandleForReading)
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = errorReader.finish()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }

    /// Runs and returns stdout parsed as JSON, failing loudly when the command did not succeed.
    func json(_ arguments: [String]) throws -> [String: Any] {
        let result = try run(arguments)
        guard result.status == 0 else {
            throw Failure("deployctl \(arguments.joined(separator: " ")) exited \(result.status): \(result.stderr)")
        }
        guard let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else {
            throw Failure("not a JSON object: \(result.stdout)")
        }
        return object
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}

/// Reads a pipe to its end on a thread of its own.
final class DataReader: @unchecked Sendable {
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            data = handle.readDataToEndOfFile()
            done.signal()
        }
    }

    func finish() -> Data {
        done.wait()
        return data
    }
}
