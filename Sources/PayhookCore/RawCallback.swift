public import Foundation

/// One request a channel sent, exactly as the receiver captured it: what the queue stores
/// and what the channel adapters read. Nothing here is parsed or trusted.
public struct RawCallback: Sendable, Equatable {
    public enum Kind: String, Sendable, Hashable {
        /// The asynchronous server-to-server notification (`POST /notify/{channel}`).
        case notify
        /// The synchronous browser return (`GET /return/{channel}`).
        case `return`
    }

    /// The configured channel id (the `{channel}` in the URL).
    public var channel: String
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
    /// The client address resolved through trusted proxies, IPv4 or IPv6 text.
    public var sourceIP: String?
    /// The address of the TCP peer.
    public var peerIP: String?
    public var receivedAt: Date

    public init(
        channel: String = "",
        kind: Kind = .notify,
        method: String = "POST",
        path: String = "/",
        query: String = "",
        headers: [HeaderField] = [],
        body: [UInt8] = [],
        sourceIP: String? = nil,
        peerIP: String? = nil,
        receivedAt: Date = Date()
    ) {
        self.channel = channel
        self.kind = kind
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.sourceIP = sourceIP
        self.peerIP = peerIP
        self.receivedAt = receivedAt
    }

    /// The address an allowlist is checked against: the resolved client, else the peer.
    public var clientAddress: String { sourceIP ?? peerIP ?? "" }

    /// The first header with this name, compared case-insensitively (ASCII).
    public func header(_ name: String) -> String? {
        headers.first(named: name)
    }
}
