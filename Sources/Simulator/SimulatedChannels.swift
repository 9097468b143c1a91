public import PayhookCore
public import Channels
import Foundation

/// The simulator's three channels and their throwaway keys: `alipay` (type `alipay`),
/// `wechatpay` (type `wechatpay_v3`) and `points` (type `points`).
///
/// One value holds both halves of every key pair, so it builds the channel sides (which sign
/// notifies and query answers) and the matching ``Channels/ChannelConfiguration`` values
/// (which verify them), and writes the key files and a ready `payhook.yaml`.
public struct SimulatedChannels: Sendable {
    public static let alipayID = "alipay"
    public static let wechatPayID = "wechatpay"
    public static let pointsID = "points"
    /// Every channel id, in the order `payhook.yaml` lists them.
    public static let channelIDs = [alipayID, wechatPayID, pointsID]

    /// Alipay's own key pair: it signs notifies and answers; its public half is the
    /// merchant's `alipay_public_key_file`.
    public var alipayKey: RSAPrivateKey
    /// The merchant app's key pair: it signs `alipay.trade.query` requests.
    public var alipayAppKey: RSAPrivateKey
    public var alipayAppID = "2021000000000001"
    public var alipaySellerID = "2088000000000001"

    /// WeChat Pay's platform key pair, named by ``wechatPlatformSerial``.
    public var wechatPlatformKey: RSAPrivateKey
    public var wechatPlatformSerial = "PUB_KEY_ID_0001"
    /// The merchant's API key pair: it signs query requests.
    public var wechatMerchantKey: RSAPrivateKey
    public var wechatMerchantSerialNo = "0000000000000000000000000000000000000001"
    /// The APIv3 key: 32 ASCII characters.
    public var wechatAPIv3Key: String
    public var wechatMchID = "1900000001"
    public var wechatAppID = "wx0000000000000001"

    /// Alipay in certificate mode (its certificates made from ``alipayKey`` and
    /// ``alipayAppKey``); nil: public-key mode. Default nil.
    public var alipayCertificates: SimulatedAlipayCertificates?

    public var pointsPartnerID = "site-001"
    /// The points partner's HMAC secret (ASCII).
    public var pointsSecret: String

    /// Fresh random keys (three RSA-2048 key pairs take a fraction of a second each).
    public static func generate() -> SimulatedChannels {
        SimulatedChannels(
            alipayKey: .generate(), alipayAppKey: .generate(), wechatPlatformKey: .generate(),
            wechatMerchantKey: .generate(), wechatAPIv3Key: Nonce.random(32), pointsSecret: Nonce.random(48))
    }

    public init(
        alipayKey: RSAPrivateKey, alipayAppKey: RSAPrivateKey, wechatPlatformKey: RSAPrivateKey,
        wechatMerchantKey: RSAPrivateKey, wechatAPIv3Key: String, pointsSecret: String
    ) {
        self.alipayKey = alipayKey
        self.alipayAppKey = alipayAppKey
        self.wechatPlatformKey = wechatPlatformKey
        self.wechatMerchantKey = wechatMerchantKey
        self.wechatAPIv3Key = wechatAPIv3Key
        self.pointsSecret = pointsSecret
    }

    // MARK: Channel sides

    /// Alipay's side; it checks query requests with the app's public key.
    public var alipaySide: AlipayChannelSide {
        AlipayChannelSide(alipayPrivateKey: alipayKey, appPublicKey: alipayAppKey.publicKey, appID: alipayAppID, sellerID: alipaySellerID,
                          certificates: alipayCertificates)
    }

    /// WeChat Pay's side; it checks query requests' `Authorization` with the merchant's public key.
    public var wechatPaySide: WeChatPayChannelSide {
        WeChatPayChannelSide(
            signingKey: wechatPlatformKey, signingSerial: wechatPlatformSerial, apiV3Key: SharedSecret(text: wechatAPIv3Key),
            merchantPublicKey: wechatMerchantKey.publicKey, mchID: wechatMchID, appID: wechatAppID)
    }

    public var pointsSide: PointsChannelSide {
        PointsChannelSide(partnerID: pointsPartnerID, hmacSecret: SharedSecret(text: pointsSecret))
    }

    // MARK: Payhook's configuration of the channels

    /// Where each channel's API sits under the simulator's base URL (`http://host:port`).
    public static func alipayGatewayURL(baseURL: String) -> String { trimmed(baseURL) + "/alipay/gateway.do" }
    public static func wechatPayAPIBaseURL(baseURL: String) -> String { trimmed(baseURL) + "/wechatpay" }
    public static func pointsAPIBaseURL(baseURL: String) -> String { trimmed(baseURL) + "/points/api" }

    /// The three channels as Payhook configures them, with query URLs under `baseURL`
    /// (the started simulator's `http://127.0.0.1:PORT`) and `allowed_ips` loopback.
    public func configurations(baseURL: String, queryTimeout: Duration = .milliseconds(3000)) -> [ChannelConfiguration] {
        let loopback = [CIDR.parse("127.0.0.1/32")!, CIDR.parse("::1/128")!]
        // The simulator's own certificates, made by it: they parse.
        let certificateMode = alipayCertificates.map { certificates in
            AlipayCertificateMode(
                appCertificate: try! AlipayCertificateFile(pemRepresentation: certificates.appCertificatePEM),
                alipayCertificate: try! AlipayCertificateFile(pemRepresentation: certificates.alipayCertificatePEM),
                rootBundle: try! AlipayRootBundle(pemRepresentation: certificates.rootBundlePEM))
        }
        return [
            .alipay(AlipayConfiguration(
                channelID: Self.alipayID, appID: alipayAppID, sellerID: alipaySellerID, alipayPublicKey: alipayKey.publicKey,
                appPrivateKey: alipayAppKey, gatewayURL: Self.alipayGatewayURL(baseURL: baseURL), allowedIPs: loopback,
                queryTimeout: queryTimeout, certificateMode: certificateMode)),
            .wechatPay(WeChatPayConfiguration(
                channelID: Self.wechatPayID, mchID: wechatMchID, appID: wechatAppID, apiV3Key: SharedSecret(text: wechatAPIv3Key),
                platformKeys: [wechatPlatformSerial: wechatPlatformKey.publicKey], merchantPrivateKey: wechatMerchantKey,
                merchantSerialNo: wechatMerchantSerialNo, apiBaseURL: Self.wechatPayAPIBaseURL(baseURL: baseURL),
                allowedIPs: loopback, queryTimeout: queryTimeout)),
            .points(PointsConfiguration(
                channelID: Self.pointsID, partnerID: pointsPartnerID, hmacSecret: SharedSecret(text: pointsSecret),
                apiBaseURL: Self.pointsAPIBaseURL(baseURL: baseURL), allowedIPs: loopback, queryTimeout: queryTimeout)),
        ]
    }

    /// One channel's configuration by id (``alipayID``, ``wechatPayID``, ``pointsID``).
    public func configuration(_ channelID: String, baseURL: String, queryTimeout: Duration = .milliseconds(3000)) -> ChannelConfiguration? {
        configurations(baseURL: baseURL, queryTimeout: queryTimeout).first { $0.channelID == channelID }
    }

    /// The channel type of a simulated channel id.
    public static func channelType(_ channelID: String) -> ChannelType? {
        switch channelID {
        case alipayID: .alipay
        case wechatPayID: .wechatpayV3
        case pointsID: .points
        default: nil
        }
    }

    static func trimmed(_ url: String) -> String {
        var url = url
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }
}
