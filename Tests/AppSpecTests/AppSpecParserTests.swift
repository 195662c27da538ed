import AppSpec
import Foundation
import HostCommandModel
import Testing

@Suite struct AppSpecParserTests {
    @Test func fullFeaturedAppSpecIsReadIntoTypedValues() throws {
        let report = AppSpecParser.parse(try Corpus.text("valid", "full-featured.yml"))
        let spec = try #require(report.appSpec)
        #expect(spec.fileExistsBehavior == .overwrite)
        #expect(spec.files.map(\.source) == ["/", "config/app.conf"])
        #expect(spec.files.first?.position == SourcePosition(line: 6, column: 5))
        #expect(spec.hooks.keys.sorted() == LifecycleEventName.hookable.sorted())
        let afterInstall = try #require(spec.hooks["AfterInstall"])
        #expect(afterInstall.map(\.location) == ["scripts/configure.sh", "/scripts/migrate.sh"])
        #expect(afterInstall.map(\.timeout) == [300, 900])
        #expect(afterInstall.first?.runas == "deploy")
        #expect(spec.hooks["BeforeInstall"]?.first?.timeout == 3600)

        let scripts = try #require(spec.permissions.first)
        #expect(scripts.pattern == "*.sh")
        #expect(scripts.except == ["debug.sh"])
        #expect(scripts.owner == "deploy")
        #expect(scripts.types == [.file])
        // Unquoted 0755 is read as octal digits, not as YAML's integer 493.
        #expect(scripts.mode == FileMode(bits: 0o755))

        let data = try #require(spec.permissions.last)
        #expect(data.mode == FileMode(bits: 0o750))
        #expect(data.acls.map(\.description) == ["user:backup:r-x", "default:group:ops:rwx", "mask::rwx"])
        #expect(data.context == SELinuxContext(name: "system_u", type: "httpd_sys_content_t", range: "s0-s1:c0.c3,c7"))
        #expect(data.types == [.directory])
        // The one warning: the AWS agent would read that unquoted 0755 as 493 and refuse it (issue 12).
        #expect(
            report.warnings.map(\.message) == [
                "deployctl applies 0755 as written, but the AWS CodeDeploy agent reads an unquoted 0755 as the number 493 and would fail (493 is not an octal mode); quote it (\"0755\") or drop the leading zero so both agree"
            ])
    }

    /// Where the AWS agent 1.8.1 reads an appspec differently ("mode" and "version", observed),
    /// deployctl keeps what the author meant and says what AWS would do.
    @Test func awsDifferencesAreWarnings() throws {
        let mode = AppSpecParser.parse("version: 0.0\nos: linux\npermissions:\n  - object: /srv\n    mode: 0644\n")
        #expect(mode.appSpec?.permissions.first?.mode == FileMode(bits: 0o644))
        #expect(mode.warnings.first?.message.contains("reads an unquoted 0644 as the number 420 and would apply 0420 (r---w----)") == true)
        #expect(mode.warnings.first?.keyPath == "permissions[0].mode")
        for quiet in ["644", "\"0644\""] {
            #expect(AppSpecParser.parse("version: 0.0\nos: linux\npermissions:\n  - object: /srv\n    mode: \(quiet)\n").warnings.isEmpty)
        }
        let version = AppSpecParser.parse("version: \"0.0\"\nos: linux\n")
        #expect(version.appSpec != nil)
        #expect(
            version.warnings.map(\.message) == [
                "the version is quoted; deployctl accepts it, but the AWS CodeDeploy agent refuses a quoted version: write version: 0.0"
            ])
        #expect(AppSpecParser.parse("version: 0.0\nos: linux\n").warnings.isEmpty)
    }

    @Test(arguments: [("644", 0o644), ("0644", 0o644), ("\"0644\"", 0o644), ("7", 0o7), ("4755", 0o4755)])
    func modesAreOctalDigitsWhateverYAMLThinks(_ text: String, _ bits: Int) throws {
        let report = AppSpecParser.parse("version: 0.0\nos: linux\npermissions:\n  - object: /srv\n    mode: \(text)\n")
        #expect(report.appSpec?.permissions.first?.mode == FileMode(bits: UInt16(bits)))
    }

    @Test func versionMayBeQuotedOrZero() {
        for version in ["0.0", "\"0.0\"", "0", "0.00", "'0.0'"] {
            #expect(AppSpecParser.parse("version: \(version)\nos: linux\n").errors.isEmpty, "version: \(version)")
        }
    }

    @Test func timeoutsAboveTheAwsCapAreAllowedWithAWarning() throws {
        let report = AppSpecParser.parse(try Corpus.text("valid", "long-timeout.yml"), fileName: "appspec.yml")
        #expect(report.errors.isEmpty)
        #expect(report.appSpec?.hooks["AfterInstall"]?.first?.timeout == 7200)
        #expect(report.warnings.map(\.keyPath) == ["hooks.AfterInstall[0].timeout"])
    }

    @Test func emptyEventsAreIgnoredWithAWarningAndAnchorsWork() throws {
        let hooksOnly = AppSpecParser.parse(try Corpus.text("valid", "hooks-only.yml"))
        #expect(hooksOnly.appSpec?.hooks["ValidateService"] == nil)
        #expect(hooksOnly.warnings.count == 1)
        let anchors = AppSpecParser.parse(try Corpus.text("valid", "anchors.yml"))
        #expect(anchors.appSpec?.hooks["ApplicationStop"] == anchors.appSpec?.hooks["BeforeInstall"])
    }

    @Test func everyProblemIsReportedNotJustTheFirst() throws {
        let report = AppSpecParser.parse(try Corpus.text("invalid", "59-several-problems.yml"))
        #expect(report.errors.count == 6)
        #expect(report.errors.map { $0.position?.line ?? 0 } == report.errors.map { $0.position?.line ?? 0 }.sorted())
    }
}

@Suite struct GrammarTests {
    @Test(arguments: [
        ("u:bob:rw", "user:bob:rw-"), ("bob:7", "user:bob:rwx"), ("d:u:bob:7", "default:user:bob:rwx"), ("g:ops:r-x", "group:ops:r-x"),
        ("m::rx", "mask::r-x"), ("mask:rwx", "mask::rwx"), ("d:o:5", "default:other::r-x"), ("default:group:web:4", "default:group:web:r--"),
    ])
    func aclEntriesInCanonicalForm(_ text: String, _ canonical: String) throws {
        #expect(try ACLGrammar.parse(text).get().description == canonical)
    }

    @Test(arguments: ["g::rwx", "other:r", "u:bob:rwq", "x:bob:rw", "a:b:c:d:e", "m:bob:rw", "u:bob:"])
    func invalidACLEntries(_ text: String) {
        #expect(throws: ACLGrammar.Problem.self) { try ACLGrammar.parse(text).get() }
    }

    @Test(arguments: ["s0", "s0-s0", "s0-s15:c0.c1023", "s0:c0,c2,c5.c7"])
    func validSELinuxRanges(_ range: String) { #expect(SELinuxRange.problem(in: range) == nil) }

    @Test(arguments: ["s2-s1", "x0", "s0:c1024", "s0:c5.c2", "s0:c1,c1", "s0-s1-s2", "s0:c"])
    func invalidSELinuxRanges(_ range: String) { #expect(SELinuxRange.problem(in: range) != nil) }

    @Test func suggestions() {
        #expect(Suggestion.closest(to: "BeforeInstal", in: LifecycleEventName.hookable) == "BeforeInstall")
        #expect(Suggestion.closest(to: "applicationstart", in: LifecycleEventName.hookable) == "ApplicationStart")
        #expect(Suggestion.closest(to: "Deploy", in: LifecycleEventName.hookable) == nil)
    }

    @Test func pathsMayNotLeaveTheBundle() {
        #expect(PathRules.escapesBundle("scripts/../a.sh") == nil)
        #expect(PathRules.escapesBundle("/scripts/a.sh") == nil)
        #expect(PathRules.escapesBundle("scripts/../../a.sh") != nil)
        #expect(PathRules.escapesBundle("..") != nil)
    }
}
