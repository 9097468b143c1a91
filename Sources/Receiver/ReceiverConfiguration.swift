public import Channels
public import PayhookCore

extension Receiver {
    /// How the receiver listens and what it accepts. Built from `payhook.yaml`'s `receiver:`
    /// and `channels:`.
    public struct Configuration: Sendable {
        /// Default `127.0.0.1`.
        public var host = "127.0.0.1"
        /// Default 8080.
        public var port = 8080
        /// Bodies above this are refused with 413 and not stored. Default 65536.
        public var maxBodyBytes = 65536
        /// Peers whose X-Forwarded-For is believed. Default none.
        public var trustedProxies: [CIDR] = []
        /// A request must arrive whole, head and body, within this; else its connection is
        /// cut and nothing is stored. Default 10 s.
        public var readTimeout: Duration = .seconds(10)
        /// Each channel's `allowed_ips`, by channel id. A channel without any takes every
        /// address as inside. Default none.
        public var allowedIPs: [String: [CIDR]] = [:]
        /// `receiver.enforce_allowed_ips`: notifies from outside a channel's non-empty
        /// `allowed_ips` are refused with 403 before anything is stored. Default false
        /// (they are stored within `ingestLimits`, and the workers reject them).
        public var enforceAllowedIPs = false
        /// Budgets per source address and per channel (429 past them). Defaults never limit
        /// an address inside `allowed_ips`, and the channel cap is off.
        public var ingestLimits = IngestLimits()
        /// The configured channels, by id (the `{channel}` in `/notify/{channel}`): each
        /// answered in its type's format. Default none.
        public var channels: [String: ChannelType] = [:]

        public init() {}
    }
}
