public import Foundation
// The SPI validates the chain's dates at the caller's `now` (tests), not at the clock's.
@_spi(FixedExpiryValidationTime) package import X509
import Crypto
import _CryptoExtras
import SwiftASN1
import Synchronization

/// Alipay's public-key certificate mode (公钥证书模式): the SNs a request names, and the
/// Alipay certificates an answer may name, keyed by SN. One value per channel, shared by
/// every copy of its configuration, so a certificate downloaded once serves every worker.
public final class AlipayCertificateMode: Sendable {
    /// `app_cert_sn`: the SN of `app_cert_file`, sent and signed in every request.
    public let appCertSN: String
    /// `alipay_root_cert_sn`: the SNs of the RSA-signed certificates of `alipay_root_cert_file`, joined with `_`.
    public let rootCertSN: String
    /// The SN of `alipay_cert_file` (its first certificate).
    public let configuredSN: String
    /// `alipay_cert_file`'s key: it verifies notifies and answers that name no other SN.
    public let configuredKey: RSAPublicKey
    /// The root bundle's certificates this library reads (the SM2 root is not among them):
    /// a downloaded certificate must chain to one of them.
    let roots: [Certificate]
    private let state: Mutex<State>

    /// How long a refused download is remembered: queries naming that SN fail at once,
    /// without asking Alipay again, until then.
    public static let refusalMemory: TimeInterval = 300

    struct State {
        var keys: [String: RSAPublicKey]
        var refusals: [String: (until: Date, error: QueryError)] = [:]
    }

    public init(appCertificate: AlipayCertificateFile, alipayCertificate: AlipayCertificateFile, rootBundle: AlipayRootBundle) {
        appCertSN = appCertificate.sn
        configuredSN = alipayCertificate.sn
        configuredKey = alipayCertificate.publicKey
        rootCertSN = rootBundle.sn
        roots = rootBundle.certificates
        state = Mutex(State(keys: [alipayCertificate.sn: alipayCertificate.publicKey]))
    }

    /// The key of the certificate with this SN, if it is known (configured or downloaded and trusted).
    public func publicKey(sn: String) -> RSAPublicKey? { state.withLock { $0.keys[sn] } }

    /// Every SN with a trusted key, sorted.
    public var knownSNs: [String] { state.withLock { $0.keys.keys.sorted() } }

    func remember(sn: String, key: RSAPublicKey) {
        state.withLock { state in
            state.keys[sn] = key
            state.refusals[sn] = nil
        }
    }

    func refused(sn: String, now: Date) -> QueryError? {
        state.withLock { state in
            guard let refusal = state.refusals[sn] else { return nil }
            if refusal.until > now { return refusal.error }
            state.refusals[sn] = nil
            return nil
        }
    }

    func rememberRefusal(sn: String, error: QueryError, now: Date) {
        state.withLock { $0.refusals[sn] = (now.addingTimeInterval(Self.refusalMemory), error) }
    }

    /// Checks a downloaded certificate (PEM: the certificate first, then any intermediates)
    /// before anything is verified with it: its SN must be the one asked for, its key RSA, it
    /// must be within its validity dates at `now`, and it must chain to the root bundle.
    /// Each failure is transient (the query is retried later) with its own code and reason.
    /// Nothing is remembered here: the caller adds the key once the answer checks out.
    package func trust(downloadedPEM pem: String, sn: String, now: Date) async throws(QueryError) -> RSAPublicKey {
        let blocks = AlipayCertificateSN.pemBlocks(pem)
        var chain: [Certificate] = []
        for block in blocks {
            guard let certificate = try? AlipayCertificateSN.certificate(pemBlock: block) else {
                throw .transient(.certificateUntrusted, "the downloaded certificate does not parse")
            }
            chain.append(certificate)
        }
        guard let leaf = chain.first else { throw .transient(.certificateUntrusted, "the download holds no certificate") }
        let leafSN = AlipayCertificateSN.sn(of: leaf)
        guard leafSN == sn else {
            throw .transient(.certificateUntrusted, "the downloaded certificate's SN is \(leafSN), not \(Rejection.quoted(sn))")
        }
        guard now >= leaf.notValidBefore, now <= leaf.notValidAfter else {
            let format = ISO8601DateFormatter()
            throw .transient(.certificateExpired, "alipay_cert_sn \(sn) is valid from \(format.string(from: leaf.notValidBefore)) "
                + "to \(format.string(from: leaf.notValidAfter)), not now")
        }
        guard let rsa = _RSA.Signing.PublicKey(leaf.publicKey), rsa.keySizeInBits >= 2048 else {
            throw .transient(.certificateUntrusted, "alipay_cert_sn \(sn) does not hold an RSA key of 2048 bits or more")
        }
        var verifier = Verifier(rootCertificates: CertificateStore(roots)) { RFC5280Policy(fixedExpiryValidationTime: now) }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(chain.dropFirst()))
        guard case .validCertificate = result else {
            throw .transient(.certificateUntrusted, "alipay_cert_sn \(sn) does not chain to alipay_root_cert_file")
        }
        return RSAPublicKey(rsa)
    }
}

extension QueryError.Code {
    /// A certificate Alipay handed out (`alipay.open.app.alipaycert.download`) was refused:
    /// it does not chain to the root bundle, names another SN, or holds no usable key.
    public static let certificateUntrusted = QueryError.Code(rawValue: "certificate_untrusted")
    /// A downloaded Alipay certificate is outside its validity dates.
    public static let certificateExpired = QueryError.Code(rawValue: "certificate_expired")
}

/// `app_cert_file` or `alipay_cert_file`: the first certificate of the file, its SN and key.
public struct AlipayCertificateFile: Sendable {
    public let sn: String
    public let publicKey: RSAPublicKey
    public let notValidAfter: Date

    public init(pemRepresentation text: String) throws(KeyLoadError) {
        guard let first = AlipayCertificateSN.pemBlocks(text).first else {
            throw KeyLoadError(file: nil, problem: "holds no PEM certificate")
        }
        let certificate: Certificate
        do { certificate = try AlipayCertificateSN.certificate(pemBlock: first) } catch {
            throw KeyLoadError(file: nil, problem: "not a PEM X.509 certificate")
        }
        guard let rsa = _RSA.Signing.PublicKey(certificate.publicKey), rsa.keySizeInBits >= 2048 else {
            throw KeyLoadError(file: nil, problem: "certificate key is not RSA of 2048 bits or more")
        }
        sn = AlipayCertificateSN.sn(of: certificate)
        publicKey = RSAPublicKey(rsa)
        notValidAfter = certificate.notValidAfter
    }
}

/// `alipay_root_cert_file`: Alipay's root bundle. Its SN is computed over the RSA-signed
/// certificates, in file order; certificates this library cannot parse (the SM2 root)
/// are skipped, as Alipay's SDKs skip them.
public struct AlipayRootBundle: Sendable {
    public let sn: String
    let certificates: [Certificate]
    /// PEM blocks skipped because they do not parse here.
    public let skipped: Int

    public init(pemRepresentation text: String) throws(KeyLoadError) {
        let blocks = AlipayCertificateSN.pemBlocks(text)
        guard !blocks.isEmpty else { throw KeyLoadError(file: nil, problem: "holds no PEM certificate") }
        var certificates: [Certificate] = []
        var sns: [String] = []
        var skipped = 0
        for block in blocks {
            // A block that is not even base64 is a broken file, not an unsupported algorithm.
            guard AlipayCertificateSN.der(pemBlock: block) != nil else {
                throw KeyLoadError(file: nil, problem: "holds a PEM block that is not base64 DER")
            }
            guard let certificate = try? AlipayCertificateSN.certificate(pemBlock: block) else {
                skipped += 1
                continue
            }
            certificates.append(certificate)
            if AlipayCertificateSN.rsaSignatureAlgorithms.contains(certificate.signatureAlgorithm) {
                sns.append(AlipayCertificateSN.sn(of: certificate))
            }
        }
        guard !sns.isEmpty else { throw KeyLoadError(file: nil, problem: "holds no RSA-signed certificate") }
        sn = sns.joined(separator: "_")
        self.certificates = certificates
        self.skipped = skipped
    }
}

/// The certificate SN as Alipay computes it: the lowercase hex MD5 of the issuer's name
/// (RFC 2253, as Java's `X500Principal.getName()` writes it) followed by the serial number
/// in decimal.
package enum AlipayCertificateSN {
    /// The PKCS#1 RSA signature family (Java's SDK takes every `1.2.840.113549.1.1.*`).
    static let rsaSignatureAlgorithms: [Certificate.SignatureAlgorithm] = [
        .sha1WithRSAEncryption, .sha256WithRSAEncryption, .sha384WithRSAEncryption, .sha512WithRSAEncryption,
    ]

    package static func sn(of certificate: Certificate) -> String {
        sn(issuer: issuerName(certificate.issuer), serialBytes: certificate.serialNumber.bytes)
    }

    package static func sn(issuer: String, serialBytes: some Collection<UInt8>) -> String {
        Bytes.hexLower(Insecure.MD5.hash(data: Array((issuer + decimal(serialBytes)).utf8)))
    }

    /// RFC 2253: most specific RDN first, `,` between RDNs and `+` inside one, no spaces.
    /// Java names CN, C, L, ST, O, OU, STREET, DC and UID; any other attribute is its OID
    /// and `#` with the value's DER in hex (so an e-mail address is not `E=`, as
    /// swift-certificates would write it).
    package static func issuerName(_ name: DistinguishedName) -> String {
        name.reversed().map { rdn in
            rdn.map { attribute -> String in
                if let keyword = javaKeywords[attribute.type] { return "\(keyword)=\(attribute.value)" }
                var serializer = DER.Serializer()
                let der = (try? serializer.serialize(ASN1Any(attribute.value))).map { serializer.serializedBytes } ?? []
                return "\(attribute.type)=#" + Bytes.hexLower(der)
            }.joined(separator: "+")
        }.joined(separator: ",")
    }

    static let javaKeywords: [ASN1ObjectIdentifier: String] = [
        .RDNAttributeType.commonName: "CN", .RDNAttributeType.countryName: "C", .RDNAttributeType.localityName: "L",
        .RDNAttributeType.stateOrProvinceName: "ST", .RDNAttributeType.organizationName: "O",
        .RDNAttributeType.organizationalUnitName: "OU", .RDNAttributeType.streetAddress: "STREET",
        .RDNAttributeType.domainComponent: "DC", [0, 9, 2342, 19_200_300, 100, 1, 1]: "UID",
    ]

    /// Big-endian unsigned bytes as a decimal number (serials run to 160 bits).
    package static func decimal(_ bytes: some Collection<UInt8>) -> String {
        var number = Array(bytes.drop { $0 == 0 })
        if number.isEmpty { return "0" }
        var digits: [UInt8] = []
        while !number.isEmpty {
            var remainder = 0
            var quotient: [UInt8] = []
            quotient.reserveCapacity(number.count)
            for byte in number {
                let value = remainder << 8 | Int(byte)
                let digit = value / 10
                remainder = value % 10
                if !quotient.isEmpty || digit != 0 { quotient.append(UInt8(digit)) }
            }
            digits.append(UInt8(remainder) + UInt8(ascii: "0"))
            number = quotient
        }
        return String(decoding: digits.reversed(), as: UTF8.self)
    }

    /// The DER inside a PEM block, whatever its line length: Alipay's Java-written files
    /// wrap at 76 characters, which swift-asn1's PEM reader (64 only) refuses.
    static func der(pemBlock block: String) -> [UInt8]? {
        let body = block.replacingOccurrences(of: "-----BEGIN CERTIFICATE-----", with: "")
            .replacingOccurrences(of: "-----END CERTIFICATE-----", with: "").filter { !$0.isWhitespace }
        guard let data = Data(base64Encoded: body), !data.isEmpty else { return nil }
        return Array(data)
    }

    static func certificate(pemBlock block: String) throws -> Certificate {
        guard let der = der(pemBlock: block) else { throw KeyLoadError(file: nil, problem: "not base64") }
        return try Certificate(derEncoded: der)
    }

    /// The `CERTIFICATE` PEM blocks of a file, in order.
    package static func pemBlocks(_ text: String) -> [String] {
        let begin = "-----BEGIN CERTIFICATE-----", end = "-----END CERTIFICATE-----"
        var blocks: [String] = []
        var rest = text[...]
        while let start = rest.range(of: begin), let stop = rest.range(of: end, range: start.upperBound..<rest.endIndex) {
            blocks.append(String(rest[start.lowerBound..<stop.upperBound]))
            rest = rest[stop.upperBound...]
        }
        return blocks
    }
}

extension RSAPrivateKey {
    /// This key as swift-certificates signs with it (the simulator's and tests' certificates).
    package var certificatePrivateKey: Certificate.PrivateKey { Certificate.PrivateKey(key) }
}

extension RSAPublicKey {
    package var certificatePublicKey: Certificate.PublicKey { Certificate.PublicKey(key) }
}
