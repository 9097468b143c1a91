import Foundation
public import NIOSSL

/// `receiver.tls` or `api.tls`: the listener terminates TLS itself with this certificate
/// chain and private key (PEM files). Without it the listener speaks plain HTTP, for TLS
/// terminated in front of Payhook.
public struct ListenerTLS: Sendable, Equatable {
    public var certFile: String
    public var keyFile: String
    /// Where it is in payhook.yaml (`receiver.tls`), for errors.
    public var keyPath: String

    init(_ node: ConfigNode, path: String) throws(ConfigError) {
        var section = try ConfigReader(node, path: path)
        certFile = try section.requiredString("cert_file")
        keyFile = try section.requiredString("key_file")
        keyPath = path
        try section.rejectUnknownKeys()
    }

    /// The server side, TLS 1.2 or newer, its files read and checked now: a key file that
    /// another user can read, a file that is not PEM, or a key that is not the
    /// certificate's is a configuration error naming the key.
    public func serverConfiguration() throws(ConfigError) -> TLSConfiguration {
        try Self.requireOwnerOnly(keyFile, key: "\(keyPath).key_file")
        let chain: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMFile(certFile) } catch {
            throw ConfigError(key: "\(keyPath).cert_file", problem: "\(certFile) cannot be read as PEM certificates")
        }
        guard !chain.isEmpty else {
            throw ConfigError(key: "\(keyPath).cert_file", problem: "\(certFile) holds no certificate")
        }
        let key: NIOSSLPrivateKey
        do { key = try NIOSSLPrivateKey(file: keyFile, format: .pem) } catch {
            throw ConfigError(key: "\(keyPath).key_file", problem: "\(keyFile) cannot be read as a PEM private key")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        // BoringSSL checks here that the key belongs to the leaf certificate.
        do { _ = try NIOSSLContext(configuration: configuration) } catch {
            throw ConfigError(key: "\(keyPath).key_file", problem: "\(keyFile) is not the private key of \(certFile)'s certificate")
        }
        return configuration
    }

    /// PostgreSQL's rule for its server key: no access for others; group read only when
    /// root owns the file (a Kubernetes Secret with `fsGroup`, mode 0440 or 0640); owned by
    /// anyone else, the owner alone.
    static func requireOwnerOnly(_ path: String, key: String) throws(ConfigError) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw ConfigError(key: key, problem: "\(path) cannot be read (missing or no permission)")
        }
        let mode = info.st_mode & 0o777
        let allowed: mode_t = info.st_uid == 0 ? 0o740 : 0o700
        guard mode & ~allowed == 0 else {
            throw ConfigError(key: key, problem: "\(path) is open to other users (mode 0\(String(mode, radix: 8))); "
                + "make it 0600 (or 0640 owned by root)")
        }
    }
}
