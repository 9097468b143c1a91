public import Foundation
package import Crypto
import _CryptoExtras
import X509
import SwiftASN1

/// Why key material could not be loaded. `description` names the file (when there is one)
/// and the problem, never the key material.
public struct KeyLoadError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file the key came from, or nil for in-memory PEM/DER.
    public var file: String?
    public var problem: String

    public init(file: String?, problem: String) {
        self.file = file
        self.problem = problem
    }

    public var description: String {
        if let file { return "\(file): \(problem)" }
        return problem
    }

    package func naming(_ file: String) -> KeyLoadError { KeyLoadError(file: file, problem: problem) }
}

/// An RSA public key (2048 bits or more) for verifying PKCS#1 v1.5 signatures.
public struct RSAPublicKey: Sendable {
    let key: _RSA.Signing.PublicKey

    init(_ key: _RSA.Signing.PublicKey) { self.key = key }

    /// PEM: `PUBLIC KEY` (X.509 SubjectPublicKeyInfo) or `RSA PUBLIC KEY` (PKCS#1); or the
    /// bare base64 DER of either, as Alipay's console shows keys.
    public init(pemRepresentation text: String) throws(KeyLoadError) {
        if text.contains("-----BEGIN") {
            if text.contains("CERTIFICATE-----") {
                throw KeyLoadError(file: nil, problem: "is a certificate, not a public key")
            }
            do {
                self.init(try _RSA.Signing.PublicKey(pemRepresentation: text))
            } catch {
                throw KeyLoadError(file: nil, problem: "not an RSA public key of 2048 bits or more (SPKI or PKCS#1 PEM)")
            }
        } else {
            guard let der = Data(base64Encoded: text.filter { !$0.isWhitespace }) else {
                throw KeyLoadError(file: nil, problem: "neither PEM nor base64 DER")
            }
            try self.init(derRepresentation: der)
        }
    }

    /// DER: SubjectPublicKeyInfo or PKCS#1 RSAPublicKey.
    public init(derRepresentation der: some DataProtocol) throws(KeyLoadError) {
        do {
            self.init(try _RSA.Signing.PublicKey(derRepresentation: der))
        } catch {
            throw KeyLoadError(file: nil, problem: "not an RSA public key of 2048 bits or more (SPKI or PKCS#1 DER)")
        }
    }

    public var keySizeInBits: Int { key.keySizeInBits }

    /// SPKI PEM of this key.
    public var pemRepresentation: String { key.pemRepresentation }

    /// RSASSA-PKCS1-v1_5 with SHA-256 (Alipay RSA2, WeChat Pay).
    package func isValidSHA256Signature(_ signature: [UInt8], for message: some DataProtocol) -> Bool {
        key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5)
    }

    /// RSASSA-PKCS1-v1_5 with SHA-1 (Alipay `sign_type=RSA`, only where configured).
    func isValidSHA1Signature(_ signature: [UInt8], for message: some DataProtocol) -> Bool {
        key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: Insecure.SHA1.hash(data: message), padding: .insecurePKCS1v1_5)
    }
}

/// An RSA private key (2048 bits or more) for PKCS#1 v1.5 signatures.
public struct RSAPrivateKey: Sendable {
    let key: _RSA.Signing.PrivateKey
    /// The same key in libcrypto, which signs (see `LibCryptoSigner`).
    private let signer: LibCryptoSigner

    /// PEM: `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1); or bare base64 DER of either.
    public init(pemRepresentation text: String) throws(KeyLoadError) {
        let key: _RSA.Signing.PrivateKey
        if text.contains("-----BEGIN") {
            if text.contains("ENCRYPTED") {
                throw KeyLoadError(file: nil, problem: "encrypted private keys are not supported")
            }
            do {
                key = try _RSA.Signing.PrivateKey(pemRepresentation: text)
            } catch {
                throw KeyLoadError(file: nil, problem: "not an RSA private key of 2048 bits or more (PKCS#8 or PKCS#1 PEM)")
            }
        } else {
            guard let der = Data(base64Encoded: text.filter { !$0.isWhitespace }) else {
                throw KeyLoadError(file: nil, problem: "neither PEM nor base64 DER")
            }
            do {
                key = try _RSA.Signing.PrivateKey(derRepresentation: der)
            } catch {
                throw KeyLoadError(file: nil, problem: "not an RSA private key of 2048 bits or more (PKCS#8 or PKCS#1 DER)")
            }
        }
        guard let loaded = RSAPrivateKey(key: key) else {
            throw KeyLoadError(file: nil, problem: "OpenSSL's libcrypto could not load the key")
        }
        self = loaded
    }

    /// A new random 2048-bit key (tests and the simulator's throwaway keys).
    public static func generate() -> RSAPrivateKey {
        // Generation only fails on a broken RNG; crash loudly rather than sign with nothing.
        RSAPrivateKey(key: try! _RSA.Signing.PrivateKey(keySize: .bits2048))!
    }

    private init?(key: _RSA.Signing.PrivateKey) {
        guard let signer = LibCryptoSigner(privateKeyDER: Array(key.derRepresentation)) else { return nil }
        self.key = key
        self.signer = signer
    }

    public var publicKey: RSAPublicKey { RSAPublicKey(key.publicKey) }

    /// PKCS#8 PEM (for writing the simulator's generated keys to files).
    public var pkcs8PEMRepresentation: String { key.pkcs8PEMRepresentation }

    /// RSASSA-PKCS1-v1_5 with SHA-256 (RSA2, WeChat Pay), through libcrypto.
    package func signSHA256(_ message: some DataProtocol) -> [UInt8] {
        sign(message, .sha256)
    }

    /// RSASSA-PKCS1-v1_5 with SHA-1 (Alipay `sign_type=RSA`).
    package func signSHA1(_ message: some DataProtocol) -> [UInt8] {
        sign(message, .sha1)
    }

    private func sign(_ message: some DataProtocol, _ digest: LibCryptoSigner.Digest) -> [UInt8] {
        let signature = message.withContiguousStorageIfAvailable { signer.sign(UnsafeRawBufferPointer($0), digest: digest) }
            ?? Array(message).withUnsafeBytes { signer.sign($0, digest: digest) }
        // libcrypto does not fail to sign with a key it loaded; if it did, that is a bug to see.
        guard let signature else { preconditionFailure("libcrypto could not sign with a loaded RSA key") }
        return signature
    }

    /// The same signature made by swift-crypto (BoringSSL): for the tests that show both
    /// libraries sign byte for byte alike, and for the benchmark that compares them.
    package func swiftCryptoSignSHA256(_ message: some DataProtocol) -> [UInt8] {
        Array(try! key.signature(for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5).rawRepresentation)
    }
}

/// A shared secret (HMAC key, WeChat APIv3 key). Its description never shows the bytes.
public struct SharedSecret: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    // swift-crypto 3 does not declare SymmetricKey Sendable, but it is an immutable value
    // (copy-on-write storage that is only read), so sharing it across threads is safe.
    // Made once: building it per callback cost each WeChat Pay decrypt about 0.3 µs.
    nonisolated(unsafe) package let key: SymmetricKey

    public init(bytes: [UInt8]) { key = SymmetricKey(data: bytes) }

    /// The text's UTF-8 bytes.
    public init(text: String) { self.init(bytes: Array(text.utf8)) }

    public var byteCount: Int { key.bitCount / 8 }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R { key.withUnsafeBytes(body) }
    public var description: String { "SharedSecret(\(byteCount) bytes)" }
    public var debugDescription: String { description }
}

/// An X.509 certificate's RSA key with its serial number as WeChat Pay names it.
public struct CertificateKey: Sendable {
    /// Upper-case hex serial, no separators, no sign byte (as `openssl x509 -serial` prints).
    public var serial: String
    public var publicKey: RSAPublicKey
    public var notValidAfter: Date

    public init(pemRepresentation text: String) throws(KeyLoadError) {
        let certificate: Certificate
        do {
            certificate = try Certificate(pemEncoded: text)
        } catch {
            throw KeyLoadError(file: nil, problem: "not a PEM X.509 certificate")
        }
        guard let rsa = _RSA.Signing.PublicKey(certificate.publicKey), rsa.keySizeInBits >= 2048 else {
            throw KeyLoadError(file: nil, problem: "certificate key is not RSA of 2048 bits or more")
        }
        var serialBytes = certificate.serialNumber.bytes
        while serialBytes.count > 1, serialBytes.first == 0 { serialBytes = serialBytes.dropFirst() }
        serial = Bytes.hexUpper(serialBytes)
        publicKey = RSAPublicKey(rsa)
        notValidAfter = certificate.notValidAfter
    }
}
