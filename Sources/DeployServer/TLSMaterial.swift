import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// Why the server's TLS material could not be made or read.
public struct TLSMaterialError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// The server's certificates: a CA made on first start (`ca.pem`, `ca-key.pem`) and a server certificate it signs
/// (`server.pem`, `server-key.pem`) with SANs for every name clients use, all in one 0700 folder with 0600 keys.
/// Later starts reuse them; a server certificate that lacks a name asked for now is reissued by the same CA, so
/// clients that trust `ca.pem` keep working.
public struct TLSMaterial: Sendable {
    public var caPath: String
    public var certificatePath: String
    public var keyPath: String

    /// The folder's files, created or completed for `names` (host names and IP addresses).
    public static func prepare(directory: String, names: [String], now: Date = Date()) throws -> TLSMaterial {
        try makePrivateDirectory(directory)
        let caPath = directory + "/ca.pem"
        let caKeyPath = directory + "/ca-key.pem"
        let certificatePath = directory + "/server.pem"
        let keyPath = directory + "/server-key.pem"
        let fm = FileManager.default
        let (caCertificate, caKey): (Certificate, P256.Signing.PrivateKey)
        if fm.fileExists(atPath: caPath) || fm.fileExists(atPath: caKeyPath) {
            do {
                caCertificate = try Certificate(pemEncoded: String(contentsOfFile: caPath, encoding: .utf8))
                caKey = try P256.Signing.PrivateKey(pemRepresentation: String(contentsOfFile: caKeyPath, encoding: .utf8))
            } catch {
                throw TLSMaterialError("cannot read the CA in \(directory) (ca.pem, ca-key.pem): \(error); move the folder away to make a new CA")
            }
        } else {
            let key = P256.Signing.PrivateKey()
            let name = try DistinguishedName {
                OrganizationName("deployctl")
                CommonName("deployctl server CA (\(ProcessInfo.processInfo.hostName))")
            }
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: Certificate.PublicKey(key.publicKey))
            }
            caCertificate = try Certificate(
                version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: now.addingTimeInterval(-3600),
                notValidAfter: now.addingTimeInterval(10 * 365 * 86_400), issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: extensions, issuerPrivateKey: .init(key))
            caKey = key
            try writePrivate(key.pemRepresentation, to: caKeyPath)
            try writePrivate(caCertificate.serializeAsPEM().pemString, to: caPath, mode: 0o644)
        }
        if let existing = try? Certificate(pemEncoded: String(contentsOfFile: certificatePath, encoding: .utf8)),
            fm.fileExists(atPath: keyPath), existing.issuer == caCertificate.subject, existing.notValidAfter > now.addingTimeInterval(86_400),
            Set(names).isSubset(of: Set(subjectAlternativeNames(of: existing)))
        {
            return TLSMaterial(caPath: caPath, certificatePath: certificatePath, keyPath: keyPath)
        }
        let key = P256.Signing.PrivateKey()
        var sans: [GeneralName] = []
        for name in names {
            if let address = ipAddressBytes(name) {
                sans.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(address))))
            } else {
                sans.append(.dnsName(name))
            }
        }
        let subject = try DistinguishedName {
            OrganizationName("deployctl")
            CommonName(names.first ?? "localhost")
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
            try ExtendedKeyUsage([.serverAuth])
            SubjectAlternativeNames(sans)
            SubjectKeyIdentifier(hash: Certificate.PublicKey(key.publicKey))
            AuthorityKeyIdentifier(keyIdentifier: try caCertificate.extensions.subjectKeyIdentifier?.keyIdentifier)
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(825 * 86_400), issuer: caCertificate.subject, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions, issuerPrivateKey: .init(caKey))
        try writePrivate(key.pemRepresentation, to: keyPath)
        try writePrivate(certificate.serializeAsPEM().pemString, to: certificatePath, mode: 0o644)
        return TLSMaterial(caPath: caPath, certificatePath: certificatePath, keyPath: keyPath)
    }

    /// A certificate and key the operator brings (`--tls-cert`, `--tls-key`); `caPath` is the certificate itself.
    public static func provided(certificatePath: String, keyPath: String) -> TLSMaterial {
        TLSMaterial(caPath: certificatePath, certificatePath: certificatePath, keyPath: keyPath)
    }

    /// The server side of TLS 1.2+ with these files.
    public func serverConfiguration() throws -> TLSConfiguration {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificatePath).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
            var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
            configuration.minimumTLSVersion = .tlsv12
            return configuration
        } catch {
            throw TLSMaterialError("cannot load the TLS certificate \(certificatePath) or key \(keyPath): \(error)")
        }
    }

    static func subjectAlternativeNames(of certificate: Certificate) -> [String] {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return [] }
        return names.compactMap { name in
            switch name {
            case .dnsName(let text): return text
            case .ipAddress(let bytes): return ipAddressText(Array(bytes.bytes))
            default: return nil
            }
        }
    }

    /// The 4 or 16 bytes of an IPv4 or IPv6 address, or nil for a host name.
    static func ipAddressBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    static func ipAddressText(_ bytes: [UInt8]) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bytes.count == 4 ? AF_INET : bytes.count == 16 ? AF_INET6 : -1
        guard family != -1 else { return nil }
        let ok = bytes.withUnsafeBytes { raw in inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil }
        return ok ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
    }

    static func makePrivateDirectory(_ path: String) throws {
        if mkdir(path, 0o700) != 0, errno != EEXIST {
            throw TLSMaterialError("cannot create the TLS folder \(path): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw TLSMaterialError("the TLS folder \(path) is not a directory")
        }
        if info.st_mode & 0o077 != 0, chmod(path, 0o700) != 0 {
            throw TLSMaterialError("cannot make the TLS folder \(path) private (mode 0700): \(String(cString: strerror(errno)))")
        }
    }

    /// Writes `text` to `path` through a new file created with `mode` (never through an existing symlink), then
    /// renames it into place.
    static func writePrivate(_ text: String, to path: String, mode: mode_t = 0o600) throws {
        let temporary = path + ".tmp-\(getpid())"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw TLSMaterialError("cannot create \(temporary): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        fchmod(fd, mode)
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw TLSMaterialError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}
