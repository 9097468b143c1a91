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
}

/// A proven-genuine payment notification, normalized across channel types.
public struct PaymentNotification: Sendable, Hashable {
    /// The configured channel id (the `{channel}` in the URL).
    public var channelID: String
    public var channelType: ChannelType
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
    public var merchant: MerchantIdentity
    /// The channel's id of this event (Alipay `notify_id`, WeChat `id`, points `event_id`).
    public var eventID: String?
    /// When the channel says the payment happened, if it says so.
    public var paidAt: Date?
    /// Points spent (points channel only).
    public var points: Int64?
    /// Order subject text where the channel sends one (Alipay `subject`, decoded from its charset).
    public var subject: String?

    public init(
        channelID: String, channelType: ChannelType, outTradeNo: String, channelTradeNo: String?,
        status: PaymentStatus, amountMinor: Int64, currency: String, merchant: MerchantIdentity,
        eventID: String?, paidAt: Date?, points: Int64? = nil, subject: String? = nil
    ) {
        self.channelID = channelID
        self.channelType = channelType
        self.outTradeNo = outTradeNo
        self.channelTradeNo = channelTradeNo
        self.status = status
        self.amountMinor = amountMinor
        self.currency = currency
        self.merchant = merchant
        self.eventID = eventID
        self.paidAt = paidAt
        self.points = points
        self.subject = subject
    }
}

/// An order as the channel's query API reports it (signature verified).
public struct QueriedOrder: Sendable, Hashable {
    public var outTradeNo: String
    public var channelTradeNo: String?
    public var status: PaymentStatus
    public var amountMinor: Int64
    public var currency: String
    public var merchant: MerchantIdentity
    public var paidAt: Date?

    public init(
        outTradeNo: String, channelTradeNo: String?, status: PaymentStatus, amountMinor: Int64,
        currency: String, merchant: MerchantIdentity, paidAt: Date?
    ) {
        self.outTradeNo = outTradeNo
        self.channelTradeNo = channelTradeNo
        self.status = status
        self.amountMinor = amountMinor
        self.currency = currency
        self.merchant = merchant
        self.paidAt = paidAt
    }
}

/// What a channel's order-query API answered.
public enum OrderQueryResult: Sendable, Hashable {
    case found(QueriedOrder)
    /// The channel says it has no such order (Alipay `ACQ.TRADE_NOT_EXIST`, WeChat
    /// `ORDER_NOT_EXIST`, points `ORDER_NOT_FOUND`).
    case notFound(outTradeNo: String)
}
