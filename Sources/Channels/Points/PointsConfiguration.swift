import Foundation

/// One `type: points` channel.
public struct PointsConfiguration: Sendable {
    public var channelID: String
    /// `partner_id`: must equal every message's `X-Points-Partner-Id` and body `partner_id`.
    public var partnerID: String
    /// From `hmac_secret_file`.
    public var hmacSecret: SharedSecret
    /// `api_base_url`, e.g. `https://points.partner.example/api`.
    public var apiBaseURL: String
    /// `allowed_ips`. Default empty (the signature alone decides).
    public var allowedIPs: [CIDR]
    /// `max_clock_skew_seconds`. Default 300.
    public var maxClockSkewSeconds: Int
    /// `query_timeout_ms`. Default 3000 ms.
    public var queryTimeout: Duration

    public init(
        channelID: String, partnerID: String, hmacSecret: SharedSecret, apiBaseURL: String, allowedIPs: [CIDR] = [],
        maxClockSkewSeconds: Int = 300, queryTimeout: Duration = .milliseconds(3000)
    ) {
        self.channelID = channelID
        self.partnerID = partnerID
        self.hmacSecret = hmacSecret
        self.apiBaseURL = apiBaseURL
        self.allowedIPs = allowedIPs
        self.maxClockSkewSeconds = maxClockSkewSeconds
        self.queryTimeout = queryTimeout
    }
}
