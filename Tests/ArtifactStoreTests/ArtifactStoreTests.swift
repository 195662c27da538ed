import ArtifactStore
import Foundation
import Testing

@Suite struct SHA256Tests {
    @Test func knownVectors() {
        #expect(ContentDigest.hex(of: Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(ContentDigest.hex(of: Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(ContentDigest.hex(of: long) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(ContentDigest.hex(of: Data(repeating: 0x61, count: 1_000_000)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}

@Suite struct ArtifactStoreTests {
    @Test func putThenHeadReturnsTheNewestVersionWithItsETag() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("as-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = ArtifactStore(root: dir.appendingPathComponent("artifacts"))
        let file = dir.appendingPathComponent("bundle.zip")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data("v1".utf8).write(to: file)
        let first = try store.put(bucket: "releases", key: "app/bundle.zip", contentsOf: file)
        try Data("v2".utf8).write(to: file)
        let second = try store.put(bucket: "releases", key: "app/bundle.zip", contentsOf: file)
        #expect(first.versionId != second.versionId)
        #expect(second.eTag == ContentDigest.hex(of: Data("v2".utf8)))
        #expect(try store.head(bucket: "releases", key: "app/bundle.zip") == second)
        #expect(try store.head(bucket: "releases", key: "app/bundle.zip", version: first.versionId) == first)
        #expect(try Data(contentsOf: URL(fileURLWithPath: first.path)) == Data("v1".utf8))
        #expect(throws: ArtifactStoreError.noSuchObject(bucket: "releases", key: "other.zip", version: nil)) {
            try store.head(bucket: "releases", key: "other.zip")
        }
    }

    @Test(arguments: [("Bad_Bucket", "k"), ("ok-bucket", "../escape"), ("ok-bucket", "/abs"), ("ok-bucket", "a//b"), ("ab", "k")])
    func invalidNamesAreRefused(_ bucket: String, _ key: String) {
        let store = ArtifactStore(root: FileManager.default.temporaryDirectory.appendingPathComponent("unused"))
        #expect(throws: ArtifactStoreError.self) { try store.head(bucket: bucket, key: key) }
    }
}
