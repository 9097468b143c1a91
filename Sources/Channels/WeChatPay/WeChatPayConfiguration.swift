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
    static func normalizeSerial(_ name: String) -> String {
        name.hasPrefix("PUB_KEY_ID_") ? name : name.uppercased()
    }

    /// Loads keys from the files the YAML names. A `platform_public_key_files` entry may be a
    /// certificate (its serial must equal the entry's name) or a public key.
    public static func load(
        channelID: String, mchID: String, appID: String, apiV3KeyFile: String, platformPublicKeyFiles: [String: String],
        merchantPrivateKeyFile: String?, merchantSerialNo: String, apiBaseURL: String? = nil, allowedIPs: [String] = [],
        maxClockSkewSeconds: Int? = nil, queryTimeoutMs: Int? = nil
    ) throws(ChannelConfigurationError) -> WeChatPayConfiguration {
        let prefix = "channels[\(channelID)]"
        guard !mchID.isEmpty else { throw ChannelConfigurationError(key: "\(prefix).mchid", problem: "is empty") }
        guard !appID.isEmpty else { throw ChannelConfigurationError(key: "\(prefix).appid", problem: "is empty") }
        let apiV3Key = try loadKey(channelID, "apiv3_key_file") { () throws(KeyLoadError) in try KeyFiles.secret(apiV3KeyFile, requiredLength: 32) }
        guard !platformPublicKeyFiles.isEmpty else {
            throw ChannelConfigurationError(key: "\(prefix).platform_public_key_files", problem: "names no key")
        }
        var keys: [String: RSAPublicKey] = [:]
        for (name, file) in platformPublicKeyFiles.sorted(by: { $0.key < $1.key }) {
            let key = "platform_public_key_files[\(name)]"
            let text = try loadKey(channelID, key) { () throws(KeyLoadError) in try KeyFiles.readText(file) }
            if text.contains("-----BEGIN CERTIFICATE-----") {
                let certificate = try loadKey(channelID, key) { () throws(KeyLoadError) in try KeyFiles.certificate(file) }
                guard certificate.serial == normalizeSerial(name) else {
                    throw ChannelConfigurationError(key: "\(prefix).\(key)", problem: "\(file): certificate serial is \(certificate.serial), not \(name)")
                }
                keys[certificate.serial] = certificate.publicKey
            } else {
                keys[normalizeSerial(name)] = try loadKey(channelID, key) { () throws(KeyLoadError) in try KeyFiles.publicKey(file) }
            }
        }
        var merchantKey: RSAPrivateKey? = nil
        if let merchantPrivateKeyFile {
            merchantKey = try loadKey(channelID, "merchant_private_key_file") { () throws(KeyLoadError) in try KeyFiles.privateKey(merchantPrivateKeyFile) }
        }
        if let skew = maxClockSkewSeconds, skew <= 0 {
            throw ChannelConfigurationError(key: "\(prefix).max_clock_skew_seconds", problem: "must be positive")
        }
        if let timeout = queryTimeoutMs, timeout <= 0 {
            throw ChannelConfigurationError(key: "\(prefix).query_timeout_ms", problem: "must be positive")
        }
        return WeChatPayConfiguration(
            channelID: channelID, mchID: mchID, appID: appID, apiV3Key: apiV3Key, platformKeys: keys,
            merchantPrivateKey: merchantKey, merchantSerialNo: merchantSerialNo,
            apiBaseURL: apiBaseURL ?? defaultAPIBaseURL, allowedIPs: try parseAllowedIPs(channelID, allowedIPs),
            maxClockSkewSeconds: maxClockSkewSeconds ?? 300, queryTimeout: .milliseconds(queryTimeoutMs ?? 3000)
        )
    }
}
