public import AsyncHTTPClient
import ChannelClients
import Crypto
public import Foundation
public import NIOSSL
import PayhookConfig
import SwiftASN1
import X509

/// The simulator's private CA and the server certificate it issues, so the simulated
/// channels serve HTTPS (`payhook sim channels --tls`) and Payhook reaches them as it
/// reaches a real channel: TLS verified against a CA it is given (`ca_file`). Tests make
/// certificates that must be refused the same way (expired, for another name, another CA).
public struct SimulatorTLS: Sendable {
    /// The CA certificate, PEM: what `ca_file` names.
    public let caCertificatePEM: String
    /// The CA's private key, PEM (kept in the simulator's folder, mode 0600, to issue again).
    public let caPrivateKeyPEM: String
    /// The server's certificate (issued by the CA) and private key, PEM.
    public let serverCertificatePEM: String
    public let serverPrivateKeyPEM: String

    /// The names a server certificate is for by default: this machine's loopback.
    public static let loopbackNames: [String] = ["127.0.0.1", "::1", "localhost"]

    /// A new CA and a server certificate from it for `names` (IP addresses or DNS names),
    /// valid over `validity` (default: from an hour ago for a year).
    public static func generate(names: [String] = loopbackNames,
                                validity: ClosedRange<Date>? = nil) throws -> SimulatorTLS {
        let caKey = P256.Signing.PrivateKey()
        return try issue(caKey: caKey, caCertificate: try makeCA(key: caKey), names: names, validity: validity)
    }

    /// A server certificate for `names` from the CA whose PEM files are given (a folder's kept CA).
    public static func issue(caCertificatePEM: String, caPrivateKeyPEM: String, names: [String] = loopbackNames,
                             validity: ClosedRange<Date>? = nil) throws -> SimulatorTLS {
        try issue(caKey: try P256.Signing.PrivateKey(pemRepresentation: caPrivateKeyPEM),
                  caCertificate: try Certificate(pemEncoded: caCertificatePEM), names: names, validity: validity)
    }

    /// The server side: this certificate and key, TLS 1.2 or newer.
    public func serverConfiguration() throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(serverCertificatePEM.utf8)).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(serverPrivateKeyPEM.utf8), format: .pem)))
        configuration.minimumTLSVersion = .tlsv12
        return configuration
    }

    private static func makeCA(key: P256.Signing.PrivateKey) throws -> Certificate {
        let name = try DistinguishedName {
            OrganizationName("Payhook channel simulator")
            CommonName("Payhook simulator CA \(UUID().uuidString.prefix(8))")
        }
        let now = Date()
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(10 * 365 * 86_400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: Certificate.PrivateKey(key))
    }

    private static func issue(caKey: P256.Signing.PrivateKey, caCertificate: Certificate, names: [String],
                              validity: ClosedRange<Date>?) throws -> SimulatorTLS {
        let key = P256.Signing.PrivateKey()
        let now = Date()
        let validity = validity ?? now.addingTimeInterval(-3600)...now.addingTimeInterval(365 * 86_400)
        let alternativeNames = names.map { name -> GeneralName in
            if let bytes = ipAddressBytes(name) { return .ipAddress(ASN1OctetString(contentBytes: bytes[...])) }
            return .dnsName(name)
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: validity.lowerBound, notValidAfter: validity.upperBound,
            issuer: caCertificate.subject,
            subject: try DistinguishedName { CommonName(names.first ?? "localhost") },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(alternativeNames)
            },
            issuerPrivateKey: Certificate.PrivateKey(caKey))
        return SimulatorTLS(
            caCertificatePEM: try caCertificate.serializeAsPEM().pemString,
            caPrivateKeyPEM: caKey.pemRepresentation,
            serverCertificatePEM: try certificate.serializeAsPEM().pemString,
            serverPrivateKeyPEM: key.pemRepresentation)
    }

    /// The 4 or 16 bytes of an IPv4 or IPv6 address, nil for a DNS name.
    private static func ipAddressBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}

extension SimulatorTLS {
    /// A client for the simulator's own URLs (control calls, buyer pages): one that trusts
    /// only the CA in `caFile` when given (the simulator serves HTTPS), else `HTTPClient.shared`.
    public static func client(trusting caFile: String?) throws -> HTTPClient {
        guard let caFile else { return .shared }
        return try HTTPClientTransport.client(trustingPEM: Array(try KeyFiles.readText(caFile).utf8))
    }
}
