public import Channels
import Foundation

/// Reads key files, naming the file in every error (never the key material).
public enum KeyFiles {
    public static func readText(_ path: String) throws(KeyLoadError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KeyLoadError(file: path, problem: "cannot be read (missing or no permission)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw KeyLoadError(file: path, problem: "is not UTF-8 text")
        }
        return text
    }

    public static func publicKey(_ path: String) throws(KeyLoadError) -> RSAPublicKey {
        let text = try readText(path)
        do { return try RSAPublicKey(pemRepresentation: text) } catch { throw error.naming(path) }
    }

    public static func privateKey(_ path: String) throws(KeyLoadError) -> RSAPrivateKey {
        let text = try readText(path)
        do { return try RSAPrivateKey(pemRepresentation: text) } catch { throw error.naming(path) }
    }

    public static func certificate(_ path: String) throws(KeyLoadError) -> CertificateKey {
        let text = try readText(path)
        do { return try CertificateKey(pemRepresentation: text) } catch { throw error.naming(path) }
    }

    /// A secret file: its content with surrounding whitespace (a trailing newline) removed.
    public static func secret(_ path: String, requiredLength: Int? = nil) throws(KeyLoadError) -> SharedSecret {
        let text = try readText(path).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { throw KeyLoadError(file: path, problem: "is empty") }
        if let requiredLength, text.utf8.count != requiredLength {
            throw KeyLoadError(file: path, problem: "must hold exactly \(requiredLength) bytes of text, holds \(text.utf8.count)")
        }
        return SharedSecret(text: text)
    }
}
