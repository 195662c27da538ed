import Foundation
import Testing

@testable import DeployModel

@Suite struct JSONValueTests {
    @Test func rendersLikePythonJsonDumpsIndent4() {
        let value = JSONValue.members([
            ("zeta", .int(1)), ("alpha", .array([.string("a\"b"), .bool(true), .null])), ("empty", .object([])), ("list", .array([])),
            ("pi", .double(3.25)),
        ])
        #expect(
            value.rendered() == """
                {
                    "zeta": 1,
                    "alpha": [
                        "a\\"b",
                        true,
                        null
                    ],
                    "empty": {},
                    "list": [],
                    "pi": 3.25
                }
                """)
    }

    @Test func parseKeepsMemberOrderAndRoundTrips() throws {
        let text = #"{"b": 1, "a": [1.5, "x\u00e9\n", {"k": null}], "c": false}"#
        let value = try JSONValue.parse(text)
        guard case .object(let members) = value else {
            Issue.record("not an object")
            return
        }
        #expect(members.map(\.key) == ["b", "a", "c"])
        #expect(try JSONValue.parse(value.compact()) == value)
        #expect(value["a"]?.arrayValue?[1] == .string("xé\n"))
    }

    @Test(arguments: ["{", "[1,]", "{\"a\" 1}", "tru", "\"unterminated", "{} x", "[\"\\q\"]"])
    func malformedJSONIsAnErrorWithAPosition(_ text: String) {
        #expect(throws: JSONSyntaxError.self) { try JSONValue.parse(text) }
    }

    /// The byte-level parser agrees with Foundation's on strings of every kind (escapes, controls, accents,
    /// characters outside the BMP, surrogate-pair escapes), and what it writes reads back unchanged.
    @Test func stringsOfEveryKindAgreeWithFoundationAndRoundTrip() throws {
        let pieces = ["a", "\"", "\\", "/", "\n", "\t", "\u{01}", "\u{1F}", "é", "日本", "😀", " ", "\u{7F}", "\u{2028}"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let text = (0..<Int.random(in: 0...12, using: &generator)).map { _ in pieces.randomElement(using: &generator) ?? "" }.joined()
            let written = JSONValue.array([.string(text), .members([(text, .int(1))])]).compact()
            #expect(try JSONValue.parse(written) == .array([.string(text), .members([(text, .int(1))])]))
            let foundation = try JSONSerialization.jsonObject(with: Data(written.utf8)) as? [Any]
            #expect(foundation?.first as? String == text)
        }
        #expect(try JSONValue.parse(#""\ud83d\ude00 \u00E9\/\b\f""#) == .string("😀 é/\u{08}\u{0C}"))
        // The escapes written, exactly (short forms where JSON has them, lower-case hex otherwise), with and without
        // asciiOnly.
        let escaped = JSONValue.string("a\"b\\c/\n\r\t\u{08}\u{0C}\u{01}\u{1F}\u{7F}é😀").compact()
        #expect(escaped == #""a\"b\\c/\n\r\t\b\f\u0001\u001f\#u{7F}é😀""#)
        // Whole numbers as "%.1f" prints them.
        #expect(
            JSONValue.array([.double(1_700_000_000), .double(-0.0), .double(-5), .double(1e15), .double(0.25)]).compact()
                == "[1700000000.0,-0.0,-5.0,1000000000000000.0,0.25]")
        var ascii = ""
        JSONValue.writeString("a\"\u{01}é😀", into: &ascii, asciiOnly: true)
        #expect(ascii == #""a\"\u0001\u00e9\ud83d\ude00""#)
        #expect(
            try JSONValue.parse(" [ -1.5e3 , 42 , true , false , null ] ") == .array([.double(-1500), .int(42), .bool(true), .bool(false), .null]))
    }

    /// Error offsets count characters, not UTF-8 bytes.
    @Test func errorOffsetsCountCharacters() {
        #expect(throws: JSONSyntaxError(offset: 7, reason: "expected ':'")) { try JSONValue.parse(#"{"日本😀" 1}"#) }
        #expect(throws: JSONSyntaxError(offset: 3, reason: "control character in string")) { try JSONValue.parse("[\"é\u{01}\"]") }
        #expect(throws: JSONSyntaxError(offset: 3, reason: "unterminated string")) { try JSONValue.parse("[\"é") }
    }

    @Test func encoderKeepsModelOrderAndDropsNil() throws {
        let info = ApplicationInfo(applicationId: "id", applicationName: "n", createTime: Date(timeIntervalSince1970: 1_409_764_576.589))
        let value = try JSONValueEncoder(dateEncoding: .display).encode(GetApplicationOutput(application: info))
        #expect(
            value.compact() == #"{"application":{"applicationId":"id","applicationName":"n","createTime":"2014-09-03T17:16:16.589000+00:00"}}"#)
    }

    /// The wire (AWS JSON 1.1) and the state file carry epoch seconds; the decoder reads both forms.
    @Test func datesAreEpochSecondsOnTheWireAndDecodeFromEitherForm() throws {
        let info = ApplicationInfo(applicationId: "id", applicationName: "n", createTime: Date(timeIntervalSince1970: 1_409_764_576.589))
        let wire = try JSONValueEncoder().encode(GetApplicationOutput(application: info))
        #expect(wire.compact() == #"{"application":{"applicationId":"id","applicationName":"n","createTime":1409764576.589}}"#)
        let display = try JSONValueEncoder(dateEncoding: .display).encode(GetApplicationOutput(application: info))
        for form in [wire, display] {
            let back = try JSONValueDecoder().decode(GetApplicationOutput.self, from: form)
            #expect(back.application?.createTime == info.createTime)
        }
    }

    @Test func timestampsFormatAsAwsCliV2AndParseBack() {
        #expect(Timestamp.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00+00:00")
        #expect(Timestamp.format(Date(timeIntervalSince1970: 1.5)) == "1970-01-01T00:00:01.500000+00:00")
        // EventBridge's `time`: whole seconds, Z.
        #expect(Timestamp.seconds(Date(timeIntervalSince1970: 1_795_341_600.9)) == "2026-11-22T10:00:00Z")
        #expect(Timestamp.seconds(Date(timeIntervalSince1970: 1_467_324_391)) == "2016-06-30T22:06:31Z")
        #expect(Timestamp.parse("2026-11-22T10:00:00Z") == Date(timeIntervalSince1970: 1_795_341_600))
        #expect(Timestamp.parse("2026-11-22T12:00:00+02:00") == Date(timeIntervalSince1970: 1_795_341_600))
        #expect(Timestamp.parse("2026-11-22") == Date(timeIntervalSince1970: 1_795_305_600))
        #expect(Timestamp.parse("1795341600") == Date(timeIntervalSince1970: 1_795_341_600))
        #expect(Timestamp.parse("yesterday") == nil)
        #expect(Timestamp.parse("2026-13-01") == nil)
    }
}

@Suite struct JSONValueDecoderTests {
    let decoder = JSONValueDecoder()

    @Test func shorthandStringsBecomeTypedValues() throws {
        let value = JSONValue.members([("type", .string("HOST_COUNT")), ("value", .string("3"))])
        #expect(try decoder.decode(MinimumHealthyHosts.self, from: value) == MinimumHealthyHosts(type: .hostCount, value: 3))
        let rollback = JSONValue.members([("enabled", .string("true")), ("events", .string("DEPLOYMENT_FAILURE"))])
        #expect(
            try decoder.decode(AutoRollbackConfiguration.self, from: rollback)
                == AutoRollbackConfiguration(enabled: true, events: [.deploymentFailure]))
    }

    @Test func unknownMembersAreReportedWithTheValidNames() {
        let value = JSONValue.members([("Kye", .string("env")), ("Value", .string("prod"))])
        do {
            _ = try decoder.decode(TagFilter.self, from: value)
            Issue.record("expected an error")
        } catch {
            #expect(error.path == ["Kye"])
            #expect(error.problem == .unknown(validNames: ["Key", "Type", "Value"]))
        }
    }

    @Test func missingRequiredMembersNameTheirPath() {
        do {
            _ = try decoder.decode(CreateApplicationInput.self, from: .object([]))
            Issue.record("expected an error")
        } catch {
            #expect(error.path == ["applicationName"])
            #expect(error.problem == .missing)
        }
    }

    @Test func badEnumValuesListTheValidOnes() {
        do {
            _ = try decoder.decode(TagFilter.self, from: .members([("Type", .string("KEYONLY"))]))
            Issue.record("expected an error")
        } catch {
            #expect(error.path == ["Type"])
            #expect(error.description.contains("KEY_ONLY, VALUE_ONLY, KEY_AND_VALUE"))
        }
    }

    @Test func nestedTypeErrorsCarryListPositions() {
        let value = JSONValue.members([("tags", .array([.members([("Key", .string("a"))]), .string("oops")]))])
        do {
            _ = try decoder.decode(CreateApplicationInput.self, from: value.merging(.members([("applicationName", .string("x"))])))
            Issue.record("expected an error")
        } catch {
            #expect(error.dottedPath == "tags[1]")
        }
    }
}
