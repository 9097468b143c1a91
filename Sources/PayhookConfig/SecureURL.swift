import Foundation

/// A URL that carries payment data: `https://`, or plain `http://` only to this machine.
enum SecureURL {
    /// The URL, checked; a `ConfigError` naming `key` otherwise.
    static func check(_ text: String, key: String) throws(ConfigError) -> URL {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty else {
            throw ConfigError(key: key, problem: "must be an http(s) URL with a host")
        }
        switch scheme {
        case "https": return url
        case "http":
            // Signed, but readable on the way: plain HTTP only to this machine.
            guard ["localhost", "127.0.0.1", "::1", "[::1]"].contains(host.lowercased()) || host.hasPrefix("127.") else {
                throw ConfigError(key: key, problem: "must be https:// (plain http only to a loopback address)")
            }
            return url
        default:
            throw ConfigError(key: key, problem: "must be http:// or https://, not \(scheme)://")
        }
    }
}
