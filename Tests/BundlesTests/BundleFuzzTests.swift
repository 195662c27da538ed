import Bundles
import Foundation
import Testing

@Suite struct BundleFuzzTests {
    struct Rng: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state ^ (state >> 29)
        }
    }

    /// 2,400 damaged archives (bytes flipped, cut short, spliced) of each type: reading and extracting them fails
    /// with a BundleError or succeeds, never traps, and never writes outside the target.
    @Test func mutatedArchivesNeverCrashOrEscape() throws {
        let scratch = try Scratch()
        try scratch.write("src/appspec.yml", "version: 0.0\nos: linux\n")
        try scratch.write("src/scripts/run.sh", String(repeating: "echo hello\n", count: 40), mode: 0o755)
        try scratch.write("src/a/b/c.txt", "nested")
        try FileManager.default.createSymbolicLink(atPath: scratch.path + "/src/a/link", withDestinationPath: "b/c.txt")
        var seeds: [Data] = []
        for type in ArchiveFormat.allCases {
            let path = scratch.path + "/seed.\(type.rawValue)"
            try BundleArchive.create(from: scratch.path + "/src", to: path, type: type)
            seeds.append(try Data(contentsOf: URL(fileURLWithPath: path)))
        }
        var rng = Rng(state: 20_261_122)
        let work = scratch.path + "/work"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        var outcomes = (ok: 0, refused: 0)
        for round in 0..<2400 {
            var bytes = [UInt8](seeds[round % seeds.count])
            switch Int.random(in: 0..<3, using: &rng) {
            case 0:
                for _ in 0..<Int.random(in: 1...8, using: &rng) {
                    bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
            case 1:
                bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &rng)))
            default:
                let other = [UInt8](seeds.randomElement(using: &rng) ?? Data())
                let cut = Int.random(in: 0..<min(bytes.count, other.count), using: &rng)
                bytes = Array(bytes.prefix(cut)) + Array(other.suffix(from: cut))
            }
            let file = work + "/input"
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            let target = work + "/out"
            do {
                _ = try BundleArchive.entries(of: file)
                try BundleArchive.extract(file, into: target, limits: BundleLimits(maxTotalBytes: 1 << 20, maxEntries: 100))
                outcomes.ok += 1
                try FileManager.default.removeItem(atPath: target)
            } catch is BundleError {
                outcomes.refused += 1
            }
            #expect(Set(try FileManager.default.contentsOfDirectory(atPath: work)) == ["input"], "round \(round) left files behind")
        }
        #expect(outcomes.ok + outcomes.refused == 2400)
        #expect(outcomes.refused > 0)
    }
}
