import Crypto
import Foundation

/// The admin bearer token, compared in constant time (SHA-256 digests compared with
/// a comparison that always reads every byte), so response timing says nothing about it.
public struct AdminAccess: Sendable {
    private let tokenDigest: [UInt8]?

    /// Reads the token from `tokenFile`; a missing or empty file disables admin routes.
    public init(tokenFile: String) {
        let token = FileManager.default.contents(atPath: tokenFile)
            .map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
        self.init(token: token)
    }

    public init(token: String?) {
        tokenDigest = token.flatMap { $0.isEmpty ? nil : Array(SHA256.hash(data: Data($0.utf8))) }
    }

    public var isEnabled: Bool { tokenDigest != nil }

    /// Whether an `Authorization` header value carries the token.
    public func allows(authorization: String?) -> Bool {
        guard let tokenDigest, let authorization, authorization.hasPrefix("Bearer ") else { return false }
        let presented = Array(SHA256.hash(data: Data(authorization.dropFirst("Bearer ".count).utf8)))
        return zip(presented, tokenDigest).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
