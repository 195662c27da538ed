import DeployModel
import Foundation
import Testing

/// The shapes that build their own JSON (`DirectJSONEncodable`) write exactly what `Codable` writes through
/// `JSONValueEncoder`, member for member and byte for byte, with either date encoding.
struct DirectJSONTests {
    /// Encodes `value` through its `Codable` conformance (the encoder asks only the top-level value for a direct path).
    struct ThroughCodable<Value: Encodable>: Encodable {
        let value: Value
        func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
    }

    static func randomTarget(_ generator: inout some RandomNumberGenerator) -> InstanceTarget {
        func maybe<T>(_ value: @autoclosure () -> T) -> T? { Bool.random(using: &generator) ? value() : nil }
        let texts = ["", "i-1", "a\"b\\c\n\t\u{01}é😀", "ScriptFailed", String(repeating: "x", count: 300)]
        func text() -> String { texts.randomElement(using: &generator) ?? "" }
        func date() -> Date { Date(timeIntervalSince1970: Double.random(in: 0...2_000_000_000, using: &generator)) }
        let events = (0..<Int.random(in: 0...9, using: &generator)).map { _ in
            LifecycleEvent(
                lifecycleEventName: maybe(text()),
                diagnostics: maybe(
                    Diagnostics(
                        errorCode: maybe(LifecycleErrorCode.allCases.randomElement(using: &generator) ?? .success), scriptName: maybe(text()),
                        message: maybe(text()), logTail: maybe(text()))),
                startTime: maybe(date()), endTime: maybe(date()),
                status: maybe(LifecycleEventStatus.allCases.randomElement(using: &generator) ?? .pending))
        }
        return InstanceTarget(
            deploymentId: maybe(text()), targetId: maybe(text()), targetArn: maybe(text()),
            status: maybe(TargetStatus.allCases.randomElement(using: &generator) ?? .pending), lastUpdatedAt: maybe(date()),
            lifecycleEvents: maybe(events), instanceLabel: maybe(TargetLabel.allCases.randomElement(using: &generator) ?? .blue))
    }

    @Test func instanceTargetsAreWrittenAsCodableWritesThem() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<400 {
            let target = Self.randomTarget(&generator)
            for dates in [JSONValueEncoder.DateEncoding.epochSeconds, .display] {
                let encoder = JSONValueEncoder(dateEncoding: dates)
                let direct = try encoder.encode(target)
                #expect(direct == target.jsonValue(dates: dates))
                #expect(direct.compact() == (try encoder.encode(ThroughCodable(value: target))).compact())
            }
        }
    }

    /// A member added to one of these shapes (a new model) must be added to its direct path too: this fails first.
    @Test func theDirectPathsKnowEveryMemberOfTheirShapes() {
        #expect(Mirror(reflecting: InstanceTarget()).children.count == 7)
        #expect(Mirror(reflecting: LifecycleEvent()).children.count == 5)
        #expect(Mirror(reflecting: Diagnostics()).children.count == 4)
    }
}
