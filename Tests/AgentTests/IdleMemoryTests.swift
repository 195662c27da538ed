import Foundation
import Testing

@testable import Agent

/// Written once, before the release: it must keep its value (a written page is never dropped).
nonisolated(unsafe) var writtenBeforeRelease: [Int] = []

@Suite struct IdleMemoryTests {
    static func residentFileKilobytes() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("RssFile:") } ?? ""
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
    }

    @Test func cleanPagesGoAndWrittenDataStays() throws {
        writtenBeforeRelease = Array(0..<10_000)
        let heap = Data((0..<1_000_000).map { UInt8($0 % 251) })
        let section = try #require(ExecutableSections.range(of: ".text"))
        #expect(section.count > 0)
        let before = Self.residentFileKilobytes()
        let released = IdleMemory.release()
        let after = Self.residentFileKilobytes()
        #expect(released > 1 << 20, "released \(released) bytes")
        #expect(after < before, "RssFile \(before) kB before, \(after) kB after")
        // Everything written stays; code and constants come back on use.
        #expect(writtenBeforeRelease.count == 10_000 && writtenBeforeRelease.reduce(0, +) == 49_995_000)
        #expect(heap.count == 1_000_000 && heap[999_999] == UInt8(999_999 % 251))
        #expect(String(describing: IdleMemoryTests.self) == "IdleMemoryTests")
        // Twice is harmless.
        #expect(IdleMemory.release() >= 0)
        #expect(writtenBeforeRelease.last == 9_999)
    }
}
