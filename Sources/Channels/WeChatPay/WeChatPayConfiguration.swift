/// One `type: wechatpay_v3` channel, keys loaded.
public struct WeChatPayConfiguration: Sendable {
    public var channelID: String
    /// `mchid`: must equal every notify's and answer's `mchid`.
    public var mchID: String
    /// `appid`: must equal every notify's and answer's `appid`.
    public var appID: String
    /// From `apiv3_key_file`: 32 ASCII bytes, decrypts notify resources.
    public var apiV3Key: SharedSecret
    /// From `platform_public_key_files`: WeChat Pay's verifying keys by the name
    /// `Wechatpay-Serial` carries: a platform certificate's serial (upper-case hex, read
    /// from the certificate) or a `PUB_KEY_ID_…`. Several at once, for rotation.
    public var platformKeys: [String: RSAPublicKey]
    /// From `merchant_private_key_file`: signs query requests. Optional for verify-only use.
    public var merchantPrivateKey: RSAPrivateKey?
    /// `merchant_serial_no`: the serial of the merchant API certificate, sent as `serial_no`.
    public var merchantSerialNo: String
    /// `api_base_url`. Default `https://api.mch.weixin.qq.com`.
    public var apiBaseURL: String
    /// `allowed_ips`. Default empty (the signature alone decides).
    public var allowedIPs: [CIDR]
    /// `max_clock_skew_seconds`: largest distance between `Wechatpay-Timestamp` and the
    /// receive time (or, for answers, now). Default 300.
    public var maxClockSkewSeconds: Int
    /// `query_timeout_ms`. Default 3000 ms.
    public var queryTimeout: Duration

    public static let defaultAPIBaseURL = "https://api.mch.weixin.qq.com"

    public init(
        channelID: String, mchID: String, appID: String, apiV3Key: SharedSecret, platformKeys: [String: RSAPublicKey],
        merchantPrivateKey: RSAPrivateKey?, merchantSerialNo: String, apiBaseURL: String = WeChatPayConfiguration.defaultAPIBaseURL,
        allowedIPs: [CIDR] = [], maxClockSkewSeconds: Int = 300, queryTimeout: Duration = .milliseconds(3000)
    ) {
        self.channelID = channelID
        self.mchID = mchID
        self.appID = appID
        self.apiV3Key = apiV3Key
        self.platformKeys = Dictionary(platformKeys.map { (WeChatPayConfiguration.normalizeSerial($0.key), $0.value) }, uniquingKeysWith: { a, _ in a })
        self.merchantPrivateKey = merchantPrivateKey
        self.merchantSerialNo = merchantSerialNo
        self.apiBaseURL = apiBaseURL
        self.allowedIPs = allowedIPs
        self.maxClockSkewSeconds = maxClockSkewSeconds
        self.queryTimeout = queryTimeout
    }

    /// Certificate serials compare case-insensitively (upper-cased); `PUB_KEY_ID_…` names as written.
    package static func normalizeSerial(_ name: String) -> String {
        name.hasPrefix("PUB_KEY_ID_") ? name : name.uppercased()
    }
}
