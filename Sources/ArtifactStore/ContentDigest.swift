import Crypto
import Foundation

/// The eTags of the artifact store and the digests of inline revisions: hex SHA-256 (swift-crypto), files streamed
/// in 1 MiB pieces so memory stays flat whatever their size.
public enum ContentDigest {
    public static func hex(of data: some DataProtocol) -> String {
        SHA256.hash(data: data).hexString
    }

    public static func hex(ofFile url: URL) throws -> String {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
        }
        return hasher.finalize().hexString
    }
}

extension Sequence<UInt8> {
    /// Lowercase hex of the bytes (a digest), without Foundation's format machinery.
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in self {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
