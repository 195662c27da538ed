import Foundation
import Testing

@testable import DeployCLI

@Suite struct TransferProgressTests {
    /// What the extraction and upload progress lines measure: how far this process has read an open file.
    @Test func theReadPositionOfAnOpenFileIsFound() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("progress-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(repeating: 7, count: 100_000).write(to: URL(fileURLWithPath: path))
        #expect(TransferProgress.readPosition(of: path) == nil)
        let handle = try #require(FileHandle(forReadingAtPath: path))
        defer { try? handle.close() }
        _ = try handle.read(upToCount: 12_345)
        #expect(TransferProgress.readPosition(of: path) == 12_345)
        _ = try handle.read(upToCount: 50_000)
        #expect(TransferProgress.readPosition(of: path) == 62_345)
    }

    @Test func smallTransfersAndNonTerminalsShowNothing() {
        #expect(TransferProgress.start("extracting", .reading(path: "/dev/null", total: 1 << 20), force: true) == nil)
        // Without a terminal on stderr (as in CI), nothing is shown whatever the size.
        if isatty(STDERR_FILENO) == 0 {
            #expect(TransferProgress.start("extracting", .reading(path: "/dev/null", total: 1 << 30)) == nil)
        }
    }
}
