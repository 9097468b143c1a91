public import Foundation

/// A refund's state as the channel states it, normalized.
public enum RefundStatus: String, Sendable, Hashable, CaseIterable {
    /// The money is back with the payer (Alipay `REFUND_SUCCESS`, WeChat Pay `SUCCESS`,
    /// points `REVERSED`): the only status that counts against the paid amount.
    case succeeded
    /// Accepted, not finished (or its answer was lost): ask again.
    case processing
    /// WeChat Pay `ABNORMAL`: the refund could not reach the payer's account; the merchant
    /// must act at the channel.
    case abnormal
    /// WeChat Pay `CLOSED`: the refund was closed without money moving.
    case closed
    /// The channel refused the refund for good (points `FAILED`, an Alipay business error).
    case failed

    /// Whether the refund can still change at the channel.
    public var isFinal: Bool { self != .processing }
}

/// What a proven source says about one refund of an order: a verified refund notify, the
/// channel's signed refund-query answer, or the answer to the refund call itself.
public struct RefundEvidence: Sendable, Hashable {
    public var channel: String
    public var outTradeNo: String
    public var channelTradeNo: String?
    /// The site's number for this refund: WeChat Pay `out_refund_no`, Alipay `out_request_no`
    /// (`out_biz_no` in the notify), points `reverse_no`. With the order, the refund's key.
    public var refundNo: String
    /// The channel's own id of the refund (WeChat Pay `refund_id`), when it has one.
    public var channelRefundID: String?
    public var status: RefundStatus
    /// This refund's amount in minor units; nil when the source names only the total
    /// (an Alipay notify: the refund query names this refund's amount).
    public var amountMinor: Int64?
    /// What the channel says is refunded on the order in all (Alipay `refund_fee`), if it says.
    public var totalRefundedMinor: Int64?
    public var currency: String
    public var refundedAt: Date?

    public init(channel: String, outTradeNo: String, channelTradeNo: String?, refundNo: String,
                channelRefundID: String?, status: RefundStatus, amountMinor: Int64?, totalRefundedMinor: Int64? = nil,
                currency: String = "CNY", refundedAt: Date?) {
        self.channel = channel
        self.outTradeNo = outTradeNo
        self.channelTradeNo = channelTradeNo
        self.refundNo = refundNo
        self.channelRefundID = channelRefundID
        self.status = status
        self.amountMinor = amountMinor
        self.totalRefundedMinor = totalRefundedMinor
        self.currency = currency
        self.refundedAt = refundedAt
    }
}

/// What a channel's refund-query API answered (signature verified).
public enum RefundQueryResult: Sendable, Hashable {
    case found(RefundEvidence)
    /// The channel has no such refund (yet).
    case notFound
}
