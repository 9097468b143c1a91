import Foundation

/// One `type: alipay` channel, keys loaded: public-key mode, or certificate mode when
/// ``certificateMode`` is set.
public struct AlipayConfiguration: Sendable {
    /// The channel id (`id:`).
    public var channelID: String
    /// `app_id`: must equal every notify's `app_id`.
    public var appID: String
    /// `seller_id`: when set, must equal every notify's `seller_id`. Default nil (not checked).
    public var sellerID: String?
    /// From `alipay_public_key_file` (or, in certificate mode, `alipay_cert_file`): verifies
    /// notifies and answers.
    public var alipayPublicKey: RSAPublicKey
    /// From `app_private_key_file`: signs query requests. Optional for verify-only use.
    public var appPrivateKey: RSAPrivateKey?
    /// `gateway_url`. Default `https://openapi.alipay.com/gateway.do`.
    public var gatewayURL: String
    /// `allowed_ips`. Default empty (the signature alone decides).
    public var allowedIPs: [CIDR]
    /// `query_timeout_ms`. Default 3000 ms.
    public var queryTimeout: Duration
    /// `allow_sign_type_rsa`: accept legacy `sign_type=RSA` (SHA-1). Default false: such
    /// notifies are rejected as `unsupported_sign_type`.
    public var allowSHA1SignType: Bool
    /// `alipay_cert_mode: true`: requests name `app_cert_sn` and `alipay_root_cert_sn`; answers
    /// are verified with the certificate their `alipay_cert_sn` names. Default nil (public-key mode).
    public var certificateMode: AlipayCertificateMode?

    public static let defaultGatewayURL = "https://openapi.alipay.com/gateway.do"

    public init(
        channelID: String, appID: String, sellerID: String? = nil, alipayPublicKey: RSAPublicKey,
        appPrivateKey: RSAPrivateKey?, gatewayURL: String = AlipayConfiguration.defaultGatewayURL,
        allowedIPs: [CIDR] = [], queryTimeout: Duration = .milliseconds(3000), allowSHA1SignType: Bool = false,
        certificateMode: AlipayCertificateMode? = nil
    ) {
        self.channelID = channelID
        self.appID = appID
        self.sellerID = sellerID
        self.alipayPublicKey = alipayPublicKey
        self.appPrivateKey = appPrivateKey
        self.gatewayURL = gatewayURL
        self.allowedIPs = allowedIPs
        self.queryTimeout = queryTimeout
        self.allowSHA1SignType = allowSHA1SignType
        self.certificateMode = certificateMode
    }
}
