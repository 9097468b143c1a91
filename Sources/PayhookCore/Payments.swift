public import Foundation

/// The channel types Payhook speaks; the `type:` key of a channel in `payhook.yaml`.
public enum ChannelType: String, Sendable, Hashable, CaseIterable {
    case alipay
    case wechatpayV3 = "wechatpay_v3"
    case points
}

/// A payment's state as the channel states it, normalized.
public enum PaymentStatus: Sendable, Hashable, CustomStringConvertible {
    case paid
    case closed
    case pending
    /// A state this adapter does not map, verbatim (e.g. Alipay `TRADE_REFUND`, WeChat `REFUND`).
    case other(String)

    public var description: String {
        switch self {
        case .paid: "paid"
        case .closed: "closed"
        case .pending: "pending"
        case .other(let raw): "other(\(raw))"
        }
    }

    /// Whether the status ends a payment (`paid` or `closed`): only such evidence moves an order.
    public var isFinal: Bool { self == .paid || self == .closed }
}

/// The merchant identity a notification or query answer names; checked against config.
public struct MerchantIdentity: Sendable, Hashable {
    /// Alipay `app_id`, WeChat `appid`; nil for points.
    public var appID: String?
    /// Alipay `seller_id`, WeChat `mchid`, points `partner_id`.
    public var merchantID: String?

    public init(appID: String?, merchantID: String?) {
        self.appID = appID
        self.merchantID = merchantID
    }

    public static let unnamed = MerchantIdentity(appID: nil, merchantID: nil)
}

/// What a proven source says about an order: a verified notification, the channel's
/// signed query answer, or both combined.
public struct OrderEvidence: Sendable, Hashable {
    /// The configured channel id the evidence came through.
    public var channel: String
    /// The site's order number.
    public var outTradeNo: String
    /// The channel's own trade number (Alipay `trade_no`, WeChat `transaction_id`,
    /// points `points_trade_no`); nil when the channel did not send one.
    public var channelTradeNo: String?
    public var status: PaymentStatus
    /// Amount in minor units (fen for CNY).
    public var amountMinor: Int64
    /// ISO 4217 code, e.g. `CNY`.
    public var currency: String
    /// The app and merchant the channel names (none for Alipay query answers).
    public var merchant: MerchantIdentity
    /// When the channel says the payment happened, if it says so.
    public var paidAt: Date?
    /// The payer as the channel names them (Alipay `buyer_id`, WeChat Pay `payer.openid`,
    /// the points partner's `user_id`), when it names them.
    public var payer: String?

    public init(channel: String, outTradeNo: String, channelTradeNo: String?, status: PaymentStatus,
                amountMinor: Int64, currency: String, merchant: MerchantIdentity = .unnamed, paidAt: Date?,
                payer: String? = nil) {
        self.channel = channel
        self.outTradeNo = outTradeNo
        self.channelTradeNo = channelTradeNo
        self.status = status
        self.amountMinor = amountMinor
        self.currency = currency
        self.merchant = merchant
        self.paidAt = paidAt
        self.payer = payer
    }
}
