import Crypto
import Foundation

/// Signing per the Standard Webhooks specification (v1): `webhook-signature` is
/// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per secret during a rotation,
/// space-separated; the key is the base64-decoded part of a `whsec_` secret.
public struct WebhookSigner: Sendable, Equatable {
    /// The HMAC keys, in the order the secret file lists them.
    public let keys: [[UInt8]]

    public init(keys: [[UInt8]]) {
        self.keys = keys
    }

    public enum SecretError: Error, Equatable, CustomStringConvertible {
        case empty
        case notWhsec(line: Int)
        case badBase64(line: Int)
        case length(line: Int, bytes: Int)

        public var description: String {
            switch self {
            case .empty: "holds no secret"
            case .notWhsec(let line): "line \(line) does not start with whsec_"
            case .badBase64(let line): "line \(line) is not base64 after whsec_"
            case .length(let line, let bytes): "line \(line) decodes to \(bytes) bytes (24 to 64 expected)"
            }
        }
    }

    /// Reads a secret file's text: one `whsec_…` secret per line (several during a
    /// rotation, each signing); blank lines and `#` comments are skipped.
    public init(secretFile text: String) throws(SecretError) {
        var keys: [[UInt8]] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard line.hasPrefix("whsec_") else { throw .notWhsec(line: index + 1) }
            guard let key = Data(base64Encoded: String(line.dropFirst(6))) else { throw .badBase64(line: index + 1) }
            guard (24...64).contains(key.count) else { throw .length(line: index + 1, bytes: key.count) }
            keys.append(Array(key))
        }
        guard !keys.isEmpty else { throw .empty }
        self.keys = keys
    }

    /// The `webhook-signature` value for one message.
    public func signature(id: String, timestamp: Int64, body: [UInt8]) -> String {
        var content = Array("\(id).\(timestamp).".utf8)
        content += body
        return keys.map { key in
            let mac = HMAC<SHA256>.authenticationCode(for: content, using: SymmetricKey(data: key))
            return "v1," + Data(mac).base64EncodedString()
        }.joined(separator: " ")
    }

    /// The three headers of one delivery attempt.
    public func headers(id: String, timestamp: Int64, body: [UInt8]) -> [(name: String, value: String)] {
        [("webhook-id", id), ("webhook-timestamp", String(timestamp)),
         ("webhook-signature", signature(id: id, timestamp: timestamp, body: body))]
    }
}
