import DeployModel
import Foundation
import Testing

@testable import AWSWire

@Suite struct SigV4Tests {
    static let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

    /// AWS's published example (IAM ListUsers, "Create a signed AWS API request", Signature Version 4 docs).
    @Test func awsDocumentationExample() throws {
        let request = SigV4.Request(
            method: "GET", path: "/", query: "Action=ListUsers&Version=2010-05-08",
            headers: [
                ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"), ("Host", "iam.amazonaws.com"),
                ("X-Amz-Date", "20150830T123600Z"),
            ], body: Data())
        let canonical = SigV4.canonicalRequest(request, signedHeaders: ["content-type", "host", "x-amz-date"], service: "iam")
        #expect(
            canonical == """
                GET
                /
                Action=ListUsers&Version=2010-05-08
                content-type:application/x-www-form-urlencoded; charset=utf-8
                host:iam.amazonaws.com
                x-amz-date:20150830T123600Z

                content-type;host;x-amz-date
                e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
                """)
        let authorization = SigV4.authorization(
            for: request, accessKeyId: "AKIDEXAMPLE", secretAccessKey: Self.secret, region: "us-east-1", service: "iam")
        #expect(
            authorization
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        )
    }

    struct Signed: Decodable {
        var service: String
        var method: String
        var path: String
        var query: String
        var headers: [[String]]
        var body: String
        var authorization: String
    }

    /// 300 requests signed by botocore's own SigV4Auth (paths, queries with reserved and non-ASCII characters, S3
    /// payload hashes, headers with runs of spaces): we compute the same Authorization header and verify each.
    @Test func matchesBotocoreOnGeneratedRequests() throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("botocore_sign.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, "300", "20261130"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let signed = try JSONDecoder().decode([Signed].self, from: data)
        #expect(signed.count == 300)
        for item in signed {
            let headers = item.headers.filter { $0[0] != "Authorization" }.map { (name: $0[0], value: $0[1]) }
            let request = SigV4.Request(method: item.method, path: item.path, query: item.query, headers: headers, body: Data(item.body.utf8))
            var mine = SigV4.authorization(
                for: request, accessKeyId: "AKIDEXAMPLE", secretAccessKey: Self.secret, region: "us-east-1", service: item.service)
            // botocore leaves some headers out of the signature (user-agent, expect, …); sign what it signed.
            if let listed = item.authorization.components(separatedBy: "SignedHeaders=").last?.components(separatedBy: ",").first {
                let kept = Set(listed.split(separator: ";").map(String.init))
                let subset = SigV4.Request(
                    method: item.method, path: item.path, query: item.query, headers: headers.filter { kept.contains($0.name.lowercased()) },
                    body: Data(item.body.utf8))
                mine = SigV4.authorization(
                    for: subset, accessKeyId: "AKIDEXAMPLE", secretAccessKey: Self.secret, region: "us-east-1", service: item.service)
            }
            #expect(mine == item.authorization, "\(item.method) \(item.path)?\(item.query) [\(item.service)]")
            let date = headers.first { $0.name == "X-Amz-Date" }?.value ?? ""
            let verified = try SigV4.verify(
                SigV4.Request(
                    method: item.method, path: item.path, query: item.query, headers: item.headers.map { (name: $0[0], value: $0[1]) },
                    body: Data(item.body.utf8)),
                services: [item.service], now: try #require(Self.date(date))
            ) { $0 == "AKIDEXAMPLE" ? Self.secret : nil }
            #expect(verified.accessKeyId == "AKIDEXAMPLE")
        }
    }

    static func date(_ amz: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.date(from: amz)
    }

    /// Every way a request is refused: missing header, unknown key, wrong secret, another service, a skewed date,
    /// a tampered body or header.
    @Test func refusals() throws {
        let now = Date(timeIntervalSince1970: 1_796_000_000)
        let amzDate = SigV4.formatAmzDate(now)
        func request(body: String = "{}", target: String = "CodeDeploy_20141006.GetDeployment", date: String = amzDate) -> SigV4.Request {
            SigV4.Request(
                method: "POST", path: "/", headers: [("Host", "127.0.0.1:8443"), ("X-Amz-Date", date), ("X-Amz-Target", target)],
                body: Data(body.utf8))
        }
        func signed(_ r: SigV4.Request, secret: String = Self.secret, key: String = "AKID", service: String = "codedeploy") -> SigV4.Request {
            var copy = r
            copy.headers.append(
                ("Authorization", SigV4.authorization(for: r, accessKeyId: key, secretAccessKey: secret, region: "local", service: service)))
            return copy
        }
        func verify(_ r: SigV4.Request) -> SigV4.Refusal? {
            do {
                _ = try SigV4.verify(r, services: ["codedeploy"], now: now) { $0 == "AKID" ? Self.secret : nil }
                return nil
            } catch {
                return error
            }
        }
        #expect(verify(signed(request())) == nil)
        #expect(verify(request())?.code == "MissingAuthenticationTokenException")
        #expect(verify(signed(request(), key: "NOPE"))?.code == "UnrecognizedClientException")
        #expect(verify(signed(request(), secret: "wrong"))?.code == "InvalidSignatureException")
        #expect(verify(signed(request(), service: "s3"))?.description.contains("correct service") == true)
        let skewed = SigV4.formatAmzDate(now.addingTimeInterval(-16 * 60))
        #expect(verify(signed(request(date: skewed)))?.description.hasPrefix("Signature expired: ") == true)
        #expect(verify(signed(request(date: SigV4.formatAmzDate(now.addingTimeInterval(14 * 60))))) == nil)
        var tampered = signed(request())
        tampered.payloadHash = SigV4.Request(method: "POST", path: "/", headers: [], body: Data("{\"x\":1}".utf8)).payloadHash
        #expect(verify(tampered)?.code == "InvalidSignatureException")
        var retargeted = signed(request())
        retargeted.headers[2] = ("X-Amz-Target", "CodeDeploy_20141006.DeleteApplication")
        #expect(verify(retargeted)?.code == "InvalidSignatureException")
    }

    /// The Authorization header's fields are read by bytes: blanks and tabs before a name are skipped, a field
    /// without a name or a value is no field, a value keeps everything after the first `=`, and a header missing
    /// one of the three fields (or with unsorted or uppercase SignedHeaders) is refused before any key is looked up.
    @Test func authorizationFieldsAreReadByBytes() throws {
        let fields = SigV4.authorizationFields(
            "Credential=AKID/20261207/local/codedeploy/aws4_request,\t SignedHeaders=host;x-amz-date, Signature=ab=c,=x,Empty=".dropFirst(0).utf8)
        #expect(fields == ["Credential": "AKID/20261207/local/codedeploy/aws4_request", "SignedHeaders": "host;x-amz-date", "Signature": "ab=c"])
        #expect(SigV4.split("a//b", on: UInt8(ascii: "/")) == ["a", "", "b"])
        let amzDate = SigV4.formatAmzDate(Date())
        for authorization in [
            "AWS4-HMAC-SHA256 Credential=AKID/\(amzDate.prefix(8))/local/codedeploy/aws4_request, SignedHeaders=host",
            "AWS4-HMAC-SHA256 Credential=AKID/\(amzDate.prefix(8))/local/codedeploy/aws4_request, SignedHeaders=x-amz-date;host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKID/\(amzDate.prefix(8))/local/codedeploy/aws4_request, SignedHeaders=Host;x-amz-date, Signature=00",
        ] {
            let request = SigV4.Request(
                method: "POST", path: "/", headers: [("host", "h"), ("x-amz-date", amzDate), ("authorization", authorization)], body: Data())
            var looked = false
            #expect(throws: SigV4.Refusal.self) {
                try SigV4.verify(request, services: ["codedeploy"]) { _ in
                    looked = true
                    return "secret"
                }
            }
            if !authorization.contains("Signature=") { #expect(!looked) }
        }
    }

    /// X-Amz-Date: exactly `YYYYMMDDTHHMMSSZ`, calendar ranges checked, the same instant `formatAmzDate` wrote.
    @Test func amzDatesAreReadExactlyAndNothingElseIs() {
        for seconds in stride(from: 0.0, to: 4_000_000_000, by: 37_777_777) {
            let date = Date(timeIntervalSince1970: seconds)
            #expect(SigV4.parseAmzDate(SigV4.formatAmzDate(date)) == date)
        }
        #expect(SigV4.parseAmzDate("20261206T235960Z") == Timestamp.parse("2026-12-07T00:00:00Z"))
        for bad in [
            "", "20261206T2359Z", "20261206 235959Z", "20261206T235959z", "2026120GT235959Z", "20261306T235959Z", "20261200T235959Z",
            "20261206T245959Z", "20261206T236059Z", "20261206T235961Z", "20261206T235959Z ", "２0261206T235959Z", "-2026120T235959Z",
        ] {
            #expect(SigV4.parseAmzDate(bad) == nil, "\(bad)")
        }
    }
}
