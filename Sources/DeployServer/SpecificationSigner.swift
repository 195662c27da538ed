import Crypto
import Foundation
import Synchronization
@_spi(CMS) import X509

/// Signs deployment specifications as AWS's agent requires them (`PKCS7/JSON`): a PKCS#7 SignedData with the JSON
/// attached, the signer certificate embedded, PEM armour labelled `PKCS7`. The agent does not verify the signature
/// (ARCHITECTURE.md, "AWS's agent 1.8.1 on the wire"): it is a format requirement, not a security feature; TLS and
/// SigV4 authenticate the exchange. The key and its self-signed certificate live beside the TLS files.
final class SpecificationSigner: Sendable {
    let certificate: Certificate
    let key: Certificate.PrivateKey
    /// Envelopes already made, by their JSON (a deployment's spec is the same for all its instances).
    let envelopes = Mutex<[String: String]>([:])

    init(directory: String) throws {
        let keyPath = directory + "/spec-signing-key.pem"
        let certificatePath = directory + "/spec-signing.pem"
        if let keyText = try? String(contentsOfFile: keyPath, encoding: .utf8),
            let certificateText = try? String(contentsOfFile: certificatePath, encoding: .utf8)
        {
            do {
                key = try Certificate.PrivateKey(P256.Signing.PrivateKey(pemRepresentation: keyText))
                certificate = try Certificate(pemEncoded: certificateText)
                return
            } catch {
                throw TLSMaterialError("cannot read the specification signing key in \(directory): \(error)")
            }
        }
        try TLSMaterial.makePrivateDirectory(directory)
        let raw = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName("deployctl")
            CommonName("deployctl deployment specification signer")
        }
        let now = Date()
        let made = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(raw.publicKey), notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(10 * 365 * 86_400), issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions { Critical(KeyUsage(digitalSignature: true)) }, issuerPrivateKey: .init(raw))
        try TLSMaterial.writePrivate(raw.pemRepresentation, to: keyPath)
        try TLSMaterial.writePrivate(made.serializeAsPEM().pemString, to: certificatePath, mode: 0o644)
        key = Certificate.PrivateKey(raw)
        certificate = made
    }

    /// The PEM envelope of `json`.
    func envelope(_ json: String) throws -> String {
        if let known = envelopes.withLock({ $0[json] }) { return known }
        let der = try CMS.sign(Array(json.utf8), certificate: certificate, privateKey: key, detached: false)
        var pem = "-----BEGIN PKCS7-----\n"
        let base64 = Data(der).base64EncodedString()
        var index = base64.startIndex
        while index < base64.endIndex {
            let end = base64.index(index, offsetBy: 64, limitedBy: base64.endIndex) ?? base64.endIndex
            pem += base64[index..<end] + "\n"
            index = end
        }
        pem += "-----END PKCS7-----\n"
        envelopes.withLock { cache in
            if cache.count > 1000 { cache.removeAll() }
            cache[json] = pem
        }
        return pem
    }
}
