public import Foundation
import Orders
public import Webhooks

/// One `webhooks:` entry as the file gives it; `load()` reads its secret (and checks its
/// CA file) and makes the endpoint. Errors name the key (`webhooks[0].secret_file`).
public struct WebhookSettings: Sendable, Equatable {
    public let id: String
    public let url: URL
    public let secretFile: String
    public let kinds: [String]
    public let caFile: String?
    public let timeout: Duration
    public let keyPath: String

    public func load() throws(ConfigError) -> WebhookEndpoint {
        let text: String
        do {
            text = try KeyFiles.readText(secretFile)
        } catch {
            throw ConfigError(key: "\(keyPath).secret_file", problem: "\(error)")
        }
        let signer: WebhookSigner
        do {
            signer = try WebhookSigner(secretFile: text)
        } catch {
            throw ConfigError(key: "\(keyPath).secret_file", problem: "\(secretFile): \(error)")
        }
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            throw ConfigError(key: "\(keyPath).ca_file", problem: "\(caFile) cannot be read (missing or no permission)")
        }
        return WebhookEndpoint(id: id, url: url, signer: signer, kinds: kinds, caFile: caFile, timeout: timeout)
    }

    static func parse(_ node: ConfigNode, path: String) throws(ConfigError) -> WebhookSettings {
        var reader = try ConfigReader(node, path: path)
        let id = try reader.requiredString("id")
        guard !id.isEmpty, id.count <= 64, id.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            throw ConfigError(key: "\(path).id", problem: "must be letters, digits, - or _ (at most 64)")
        }
        let text = try reader.requiredString("url")
        let url = try SecureURL.check(text, key: "\(path).url")
        let secretFile = try reader.requiredString("secret_file")
        let known = OrderOutbox.Kind.allCases.map(\.rawValue)
        var kinds = try reader.stringList("events")
        for (index, kind) in kinds.enumerated() where !known.contains(kind) {
            throw ConfigError(key: "\(path).events[\(index)]", problem: "must be one of \(known.joined(separator: ", "))")
        }
        if kinds.isEmpty { kinds = known }
        let caFile = try reader.string("ca_file")
        let timeout = try reader.integer("timeout_ms", default: 15_000, range: 100...120_000)
        try reader.rejectUnknownKeys()
        return WebhookSettings(id: id, url: url, secretFile: secretFile, kinds: kinds, caFile: caFile,
                               timeout: .milliseconds(timeout), keyPath: path)
    }
}
