public import Channels
import PayhookCore
import Foundation

extension ChannelConfiguration {
    /// Reads this channel's key files and builds the adapter's configuration. Errors name
    /// the channel's key (`channels[1].app_private_key_file`) and the file, never key bytes.
    public func load() throws(ConfigError) -> Channels.ChannelConfiguration {
        func optionalInt(_ key: String) -> Int? { integer(key) }
        do {
            switch type {
            case .alipay:
                return .alipay(try AlipayConfiguration.load(
                    channelID: id, appID: required("app_id"), sellerID: settings["seller_id"],
                    alipayPublicKeyFile: required("alipay_public_key_file"),
                    appPrivateKeyFile: required("app_private_key_file"), gatewayURL: required("gateway_url"),
                    allowedIPs: allowedIPs, queryTimeoutMs: optionalInt("query_timeout_ms"),
                    allowSHA1SignType: settings["allow_sign_type_rsa"] == "true"))
            case .wechatpayV3:
                return .wechatPay(try WeChatPayConfiguration.load(
                    channelID: id, mchID: required("mchid"), appID: required("appid"),
                    apiV3KeyFile: required("apiv3_key_file"),
                    platformPublicKeyFiles: maps["platform_public_key_files"] ?? [:],
                    merchantPrivateKeyFile: required("merchant_private_key_file"),
                    merchantSerialNo: required("merchant_serial_no"), apiBaseURL: required("api_base_url"),
                    allowedIPs: allowedIPs, maxClockSkewSeconds: optionalInt("max_clock_skew_seconds"),
                    queryTimeoutMs: optionalInt("query_timeout_ms")))
            case .points:
                return .points(try PointsConfiguration.load(
                    channelID: id, partnerID: required("partner_id"), hmacSecretFile: required("hmac_secret_file"),
                    apiBaseURL: required("api_base_url"), allowedIPs: allowedIPs,
                    maxClockSkewSeconds: optionalInt("max_clock_skew_seconds"),
                    queryTimeoutMs: optionalInt("query_timeout_ms")))
            }
        } catch {
            // The adapters name keys as channels[<id>].key; the file names them by position.
            let key = error.key.replacingOccurrences(of: "channels[\(id)]", with: keyPath)
            throw ConfigError(key: key, problem: error.problem)
        }
    }
}

extension PayhookConfiguration {
    /// Every configured channel with its keys loaded.
    public func loadChannels() throws(ConfigError) -> [Channels.ChannelConfiguration] {
        var loaded: [Channels.ChannelConfiguration] = []
        for channel in channels { loaded.append(try channel.load()) }
        return loaded
    }
}
