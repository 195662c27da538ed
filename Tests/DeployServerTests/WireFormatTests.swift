import AWSWire
import DeployServer
import Foundation
import Testing

@Suite struct WireFormatTests {
    /// Decodes `body` fed in pieces of `step` bytes.
    static func decode(_ body: String, step: Int) throws -> (payload: String, trailers: [String: String], complete: Bool) {
        var decoder = AWSChunkedDecoder()
        var out: [UInt8] = []
        let bytes = Array(body.utf8)
        var index = 0
        while index < bytes.count {
            let piece = Array(bytes[index..<min(index + step, bytes.count)])
            try piece.withUnsafeBytes { raw in try decoder.feed(raw) { out.append(contentsOf: $0) } }
            index += step
        }
        return (String(decoding: out, as: UTF8.self), decoder.trailers, decoder.isComplete)
    }

    @Test func awsChunkedBodiesDecodeWhereverTheyAreSplit() throws {
        let body = "5\r\nhello\r\n6;chunk-signature=x\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n"
        for step in 1...body.utf8.count {
            let (payload, trailers, complete) = try Self.decode(body, step: step)
            #expect(payload == "hello world")
            #expect(trailers["x-amz-checksum-crc32"] == "DUoRhQ==")
            #expect(complete)
        }
        let (_, _, truncated) = try Self.decode("5\r\nhello\r\n", step: 3)
        #expect(!truncated)
    }

    @Test func malformedAwsChunkedBodiesAreRefused() {
        for bad in [
            "zz\r\nhello\r\n", "3\r\nhello\r\n", "0\r\nno-colon-here\r\n\r\n", "0\r\n\r\nextra", String(repeating: "1", count: 5000) + "\r\n",
        ] {
            #expect(throws: AWSChunkedDecoder.Malformed.self, "\(bad.prefix(30))") { _ = try Self.decode(bad, step: 7) }
        }
    }

    @Test func crc32MatchesTheStandardCheckValue() {
        var crc = CRC32()
        Array("123456789".utf8).withUnsafeBytes { crc.update($0) }
        #expect(crc.value == 0xCBF4_3926)
        var hello = CRC32()
        Array("hello world".utf8).withUnsafeBytes { hello.update($0) }
        #expect(hello.base64 == "DUoRhQ==")
    }

    @Test func completedPartsAreReadFromTheRequestXML() {
        let xml = """
            <CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <Part><ETag>&quot;abc&quot;</ETag><PartNumber>1</PartNumber></Part>
              <Part><PartNumber>2</PartNumber><ETag>"def"</ETag></Part>
            </CompleteMultipartUpload>
            """
        let parts = S3XML.completedParts(xml)
        #expect(parts?.map(\.number) == [1, 2])
        #expect(parts?.map(\.eTag) == ["\"abc\"", "\"def\""])
        #expect(S3XML.completedParts("<CompleteMultipartUpload/>") == nil)
        #expect(S3XML.completedParts("<Part><PartNumber>0</PartNumber><ETag>x</ETag></Part>") == nil)
        #expect(S3XML.completedParts("<Part><PartNumber>1</PartNumber>") == nil)
        #expect(S3XML.escape("<a & 'b'>\u{1}") == "&lt;a &amp; &apos;b&apos;&gt;&#x1;")
    }

    @Test func theCAIsMadeOnceAndTheServerCertificateFollowsTheNames() throws {
        let directory = NSTemporaryDirectory() + "deployctl-tls-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try TLSMaterial.prepare(directory: directory, names: ["127.0.0.1", "localhost"])
        let ca = try String(contentsOfFile: first.caPath, encoding: .utf8)
        let certificate = try String(contentsOfFile: first.certificatePath, encoding: .utf8)
        var info = stat()
        #expect(stat(directory, &info) == 0 && info.st_mode & 0o777 == 0o700)
        for key in [first.keyPath, directory + "/ca-key.pem"] {
            #expect(stat(key, &info) == 0 && info.st_mode & 0o777 == 0o600, "\(key)")
        }
        // Same names: nothing is rewritten.
        let again = try TLSMaterial.prepare(directory: directory, names: ["localhost"])
        #expect(try String(contentsOfFile: again.certificatePath, encoding: .utf8) == certificate)
        // A new name: a new server certificate from the same CA, so clients keep trusting it.
        let wider = try TLSMaterial.prepare(directory: directory, names: ["127.0.0.1", "localhost", "deploy.example.com", "10.0.0.7"])
        #expect(try String(contentsOfFile: wider.certificatePath, encoding: .utf8) != certificate)
        #expect(try String(contentsOfFile: wider.caPath, encoding: .utf8) == ca)
        // openssl agrees the chain verifies and carries the names.
        let verify = Process()
        verify.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        verify.arguments = [
            "verify", "-CAfile", wider.caPath, "-verify_ip", "10.0.0.7", "-verify_hostname", "deploy.example.com", wider.certificatePath,
        ]
        let pipe = Pipe()
        verify.standardOutput = pipe
        verify.standardError = pipe
        try verify.run()
        verify.waitUntilExit()
        let said = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(verify.terminationStatus == 0, "\(said)")
        // A broken CA is an error that says how to recover, not a silent new CA.
        try "garbage".write(toFile: wider.caPath, atomically: true, encoding: .utf8)
        #expect(throws: TLSMaterialError.self) { try TLSMaterial.prepare(directory: directory, names: ["localhost"]) }
    }
}
