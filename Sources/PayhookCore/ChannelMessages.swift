import Foundation

/// An HTTP request to a channel's API, fully built and signed.
public struct ChannelRequest: Sendable {
    public var method: String
    /// The full URL, e.g. `https://api.mch.weixin.qq.com/v3/pay/transactions/out-trade-no/X?mchid=1`.
    public var url: String
    public var headers: [HeaderField]
    public var body: [UInt8]

    public init(method: String, url: String, headers: [HeaderField], body: [UInt8]) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }

    /// The request target as the server sees it: path and, if any, `?query` (percent-encoded as sent).
    public var target: String {
        guard let components = URLComponents(string: url) else { return url }
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        if let query = components.percentEncodedQuery { return path + "?" + query }
        return path
    }
}

/// An HTTP response between Payhook and a channel, either way: a channel API's answer, or
/// the acknowledgement Payhook gives a channel's callback.
public struct ChannelResponse: Sendable, Hashable {
    public var status: Int
    public var headers: [HeaderField]
    public var body: [UInt8]

    public init(status: Int, headers: [HeaderField], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? { headers.first(named: name) }
}
