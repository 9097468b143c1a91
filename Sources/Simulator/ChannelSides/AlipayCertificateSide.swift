public import Channels
import Crypto
public import Foundation
import PayhookCore
import SwiftASN1
import Synchronization
import X509

/// Alipay's certificate mode as the simulator plays it: a root CA of its own (RSA,
/// sha256WithRSA), the app's and Alipay's certificates issued from it, a root bundle that
/// also holds a certificate this library cannot parse (as Alipay's holds an SM2 root), and
/// the Alipay certificate answers are signed under now, which can be rotated. Every
/// certificate Alipay has issued is served by `alipay.open.app.alipaycert.download`.
public final class SimulatedAlipayCertificates: Sendable {
    /// `app_cert_file`: the app's key (``SimulatedChannels/alipayAppKey``) certified by the root.
    public let appCertificatePEM: String
    /// `alipay_cert_file`: the first Alipay certificate (before any rotation).
    public let alipayCertificatePEM: String
    /// `alipay_root_cert_file`: the unparsable certificate, then the root.
    public let rootBundlePEM: String
    public let appCertSN: String
    public let rootCertSN: String
    private let rootKey: RSAPrivateKey
    private let rootName: DistinguishedName
    private let state: Mutex<State>

    struct State {
        var current: (sn: String, key: RSAPrivateKey)
        var issued: [String: String]
        var downloads = 0
    }

    /// A new root, an app certificate for `appKey` and an Alipay certificate for `alipayKey`,
    /// valid from an hour ago for a year.
    public init(appKey: RSAPrivateKey, alipayKey: RSAPrivateKey) throws {
        let rootKey = RSAPrivateKey.generate()
        let rootName = try DistinguishedName {
            CountryName("CN")
            OrganizationName("Payhook Simulated Alipay")
            OrganizationalUnitName("Certification Authority")
            CommonName("Simulated Alipay Root CA \(UUID().uuidString.prefix(8))")
        }
        let now = Date()
        let root = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: rootKey.publicKey.certificatePublicKey,
            notValidBefore: now.addingTimeInterval(-86_400), notValidAfter: now.addingTimeInterval(20 * 365 * 86_400),
            issuer: rootName, subject: rootName, signatureAlgorithm: .sha256WithRSAEncryption,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 1))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: rootKey.certificatePrivateKey)
        self.rootKey = rootKey
        self.rootName = rootName
        rootBundlePEM = try Self.unparsableCertificatePEM() + "\n" + root.serializeAsPEM().pemString + "\n"
        rootCertSN = AlipayCertificateSN.sn(of: root)
        let app = try Self.issue(key: appKey, commonName: "2088000000000001", issuerKey: rootKey, issuer: rootName,
                                 validity: now.addingTimeInterval(-3600)...now.addingTimeInterval(365 * 86_400))
        appCertificatePEM = app.pem
        appCertSN = app.sn
        let alipay = try Self.issue(key: alipayKey, commonName: "Simulated Alipay 1", issuerKey: rootKey, issuer: rootName,
                                    validity: now.addingTimeInterval(-3600)...now.addingTimeInterval(365 * 86_400))
        alipayCertificatePEM = alipay.pem
        state = Mutex(State(current: (alipay.sn, alipayKey), issued: [alipay.sn: alipay.pem]))
    }

    /// The SN answers name now, and the key they are signed with.
    public var current: (sn: String, key: RSAPrivateKey) { state.withLock { $0.current } }

    /// Every SN issued so far.
    public var issuedSNs: [String] { state.withLock { $0.issued.keys.sorted() } }

    /// The PEM `alipay.open.app.alipaycert.download` answers for `sn`, if Alipay issued it.
    public func certificatePEM(sn: String) -> String? { state.withLock { $0.issued[sn] } }

    /// Download calls answered so far (any SN).
    public var downloadCount: Int { state.withLock { $0.downloads } }

    func countDownload() { state.withLock { $0.downloads += 1 } }

    /// Issues a new Alipay certificate from the root for `key` (Alipay keeps the key when it
    /// reissues, so by default the current one) and signs answers under it from now on.
    /// `validity` default: from an hour ago for a year. Returns its SN.
    @discardableResult
    public func rotate(key: RSAPrivateKey? = nil, validity: ClosedRange<Date>? = nil) throws -> String {
        let now = Date()
        let key = key ?? current.key
        let number = state.withLock { $0.issued.count + 1 }
        let issued = try Self.issue(key: key, commonName: "Simulated Alipay \(number)", issuerKey: rootKey, issuer: rootName,
                                    validity: validity ?? now.addingTimeInterval(-3600)...now.addingTimeInterval(365 * 86_400))
        install(sn: issued.sn, pem: issued.pem, key: key)
        return issued.sn
    }

    /// Signs answers under a certificate issued elsewhere (by another CA: one that must be
    /// refused), which the download call then serves. Returns its SN.
    @discardableResult
    public func rotate(toForeignCertificate pem: String, key: RSAPrivateKey) throws -> String {
        let sn = AlipayCertificateSN.sn(of: try Certificate(pemEncoded: pem))
        install(sn: sn, pem: pem, key: key)
        return sn
    }

    private func install(sn: String, pem: String, key: RSAPrivateKey) {
        state.withLock { state in
            state.issued[sn] = pem
            state.current = (sn, key)
        }
    }

    /// A certificate from a fresh root of its own, chaining to nothing Payhook trusts.
    public static func foreignCertificatePEM(key: RSAPrivateKey) throws -> String {
        let otherKey = RSAPrivateKey.generate()
        let name = try DistinguishedName { CountryName("CN"); CommonName("Not Alipay Root") }
        let now = Date()
        return try issue(key: key, commonName: "Not Alipay", issuerKey: otherKey, issuer: name,
                         validity: now.addingTimeInterval(-3600)...now.addingTimeInterval(365 * 86_400)).pem
    }

    private static func issue(key: RSAPrivateKey, commonName: String, issuerKey: RSAPrivateKey, issuer: DistinguishedName,
                              validity: ClosedRange<Date>) throws -> (sn: String, pem: String) {
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key.publicKey.certificatePublicKey,
            notValidBefore: validity.lowerBound, notValidAfter: validity.upperBound, issuer: issuer,
            subject: try DistinguishedName {
                CountryName("CN")
                OrganizationName("Payhook Simulated Alipay")
                OrganizationalUnitName("Alipay")
                CommonName(commonName)
            },
            signatureAlgorithm: .sha256WithRSAEncryption,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, nonRepudiation: true, keyEncipherment: true))
            },
            issuerPrivateKey: issuerKey.certificatePrivateKey)
        return (AlipayCertificateSN.sn(of: certificate), try certificate.serializeAsPEM().pemString)
    }

    /// A self-signed root like Alipay's SM2 one: well-formed DER whose key is on a curve
    /// swift-certificates does not know. Made from a P-256 certificate with the curve's OID
    /// (1.2.840.10045.3.1.7) replaced by SM2's (1.2.156.10197.1.301), both 8 bytes long.
    public static func unparsableCertificatePEM() throws -> String {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CountryName("CN"); OrganizationName("NRCAC"); CommonName("ROOTCA") }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-86_400), notValidAfter: now.addingTimeInterval(20 * 365 * 86_400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions { Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil)) },
            issuerPrivateKey: Certificate.PrivateKey(key))
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        var der = serializer.serializedBytes
        let p256: [UInt8] = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]
        let sm2: [UInt8] = [0x06, 0x08, 0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x82, 0x2D]
        guard let start = (0...(der.count - p256.count)).first(where: { der[$0..<($0 + p256.count)].elementsEqual(p256) }) else {
            throw KeyLoadError(file: nil, problem: "no P-256 OID in the generated certificate")
        }
        der.replaceSubrange(start..<(start + sm2.count), with: sm2)
        return PEMDocument(type: "CERTIFICATE", derBytes: der).pemString
    }
}

extension AlipayChannelSide {
    /// `alipay.open.app.alipaycert.download`: the PEM of the certificate `alipay_cert_sn`
    /// names, base64, as `alipay_cert_content`; an SN never issued is a business failure.
    func certificateDownload(_ read: AlipayGatewayRequest) -> ChannelResponse {
        guard let certificates else { return error("40002", "isv.invalid-method", node: read.node).response }
        certificates.countDownload()
        guard let sn = read.biz["alipay_cert_sn"]?.stringValue, let pem = certificates.certificatePEM(sn: sn) else {
            return businessFailure(node: read.node, subCode: "isv.cert-not-exist", subMsg: "证书不存在")
        }
        return answer(node: read.node, [
            .init(key: "code", value: .string("10000")), .init(key: "msg", value: .string("Success")),
            .init(key: "alipay_cert_content", value: .string(Data(pem.utf8).base64EncodedString())),
        ])
    }

    /// In certificate mode a request must name the app's and the root's SNs (signed with
    /// the rest); nil when it does, or in public-key mode.
    func certificateRefusal(_ fields: AlipayAdapter.Fields, node: String) -> ChannelResponseError? {
        guard let certificates else { return nil }
        guard fields.ascii("app_cert_sn") == certificates.appCertSN else {
            return error("40002", "isv.app-cert-sn-not-match", node: node, subMsg: "app_cert_sn")
        }
        guard fields.ascii("alipay_root_cert_sn") == certificates.rootCertSN else {
            return error("40002", "isv.alipay-root-cert-sn-not-match", node: node, subMsg: "alipay_root_cert_sn")
        }
        return nil
    }
}

extension ChannelSimulator {
    /// Alipay reissues its certificate (see ``SimulatedAlipayCertificates/rotate(key:validity:)``):
    /// answers are signed under the new one from now on, cached answers dropped. Returns its SN.
    @discardableResult
    public func rotateAlipayCertificate(key: RSAPrivateKey? = nil, validity: ClosedRange<Date>? = nil) throws -> String {
        guard let certificates = channels.alipayCertificates else { throw KeyLoadError(file: nil, problem: "Alipay is not in certificate mode") }
        let sn = try certificates.rotate(key: key, validity: validity)
        dropCachedAnswers(channel: SimulatedChannels.alipayID)
        return sn
    }

    /// Answers signed under a certificate of another CA, which Payhook must refuse. Returns its SN.
    @discardableResult
    public func rotateAlipayCertificate(toForeignCertificate pem: String, key: RSAPrivateKey) throws -> String {
        guard let certificates = channels.alipayCertificates else { throw KeyLoadError(file: nil, problem: "Alipay is not in certificate mode") }
        let sn = try certificates.rotate(toForeignCertificate: pem, key: key)
        dropCachedAnswers(channel: SimulatedChannels.alipayID)
        return sn
    }

    func dropCachedAnswers(channel: String) {
        state.withLock { state in state.answers = state.answers.filter { $0.key.channel != channel } }
    }
}
