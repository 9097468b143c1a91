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
        /// A request must arrive whole within this. Default 10 s.
        public var readTimeout: Duration = .seconds(10)
        /// The configured channels, by id (the `{channel}` in `/notify/{channel}`): each
        /// answered in its type's format. Default none.
        public var channels: [String: ChannelType] = [:]

        public init() {}
    }
}
