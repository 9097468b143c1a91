public import Foundation

/// One HTTP header as it arrived: name and value verbatim, in arrival order.
public struct HeaderField: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// The raw, stored form of one request a channel sent: exactly what the receiver captured.
///
/// Nothing here is parsed or trusted; the channel adapters turn it into a
/// ``PaymentNotification`` or a ``Rejection``.
public struct RawCallback: Sendable {
    public enum Kind: String, Sendable, Hashable {
        /// The asynchronous server-to-server notification (`POST /notify/{channel}`).
        case notify
        /// The synchronous browser return (`GET /return/{channel}`).
        case `return`
    }

    public var kind: Kind
    /// HTTP method, e.g. `POST`.
    public var method: String
    /// Request path, e.g. `/notify/alipay`.
    public var path: String
    /// The raw query string, without the leading `?` (empty when there was none).
    public var query: String
    /// Headers in arrival order, names and values verbatim.
    public var headers: [HeaderField]
    /// The body bytes, verbatim.
    public var body: [UInt8]
    /// The resolved client address (through trusted proxies), IPv4 or IPv6 text.
    public var sourceIP: String
    public var receivedAt: Date

    public init(
        kind: Kind = .notify,
        method: String = "POST",
        path: String = "/",
        query: String = "",
        headers: [HeaderField] = [],
        body: [UInt8] = [],
        sourceIP: String = "127.0.0.1",
        receivedAt: Date = Date()
    ) {
        self.kind = kind
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.sourceIP = sourceIP
        self.receivedAt = receivedAt
    }

    /// The first header with this name, compared case-insensitively (ASCII).
    public func header(_ name: String) -> String? {
        headers.first(named: name)
    }
}

extension Array where Element == HeaderField {
    /// The first header with this name, compared case-insensitively (ASCII).
    public func first(named name: String) -> String? {
        for field in self where asciiCaseInsensitiveEquals(field.name, name) {
            return field.value
        }
        return nil
    }
}

@inline(__always)
func asciiCaseInsensitiveEquals(_ a: String, _ b: String) -> Bool {
    guard a.utf8.count == b.utf8.count else { return false }
    if a == b { return true }  // names usually arrive in their documented case
    var a = a
    var b = b
    return a.withUTF8 { ua in
        b.withUTF8 { ub in
            guard ua.count == ub.count else { return false }
            for i in 0..<ua.count {
                var x = ua[i]
                var y = ub[i]
                if x >= 0x41 && x <= 0x5A { x |= 0x20 }
                if y >= 0x41 && y <= 0x5A { y |= 0x20 }
                if x != y { return false }
            }
            return true
        }
    }
}
