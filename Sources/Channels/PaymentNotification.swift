import Foundation
public import PayhookCore

/// A proven-genuine payment notification, normalized across channel types: the evidence
/// it gives about the order, and what else the channel said.
@dynamicMemberLookup
public struct PaymentNotification: Sendable, Hashable {
    public var evidence: OrderEvidence
    public var channelType: ChannelType
    /// The channel's id of this event (Alipay `notify_id`, WeChat `id`, points `event_id`).
    public var eventID: String?
    /// Points spent (points channel only).
    public var points: Int64?
    /// Order subject text where the channel sends one (Alipay `subject`, decoded from its charset).
    public var subject: String?
    /// Set when the notify reports a refund (Alipay `refund_fee`/`gmt_refund`, WeChat Pay
    /// `REFUND.*`): then `evidence.status` is `.other("REFUND")`, never a payment.
    public var refund: RefundEvidence?

    public init(evidence: OrderEvidence, channelType: ChannelType, eventID: String?, points: Int64? = nil,
                subject: String? = nil, refund: RefundEvidence? = nil) {
        self.evidence = evidence
        self.channelType = channelType
        self.eventID = eventID
        self.points = points
        self.subject = subject
        self.refund = refund
    }

    /// The evidence's fields read through the notification (`notification.outTradeNo`).
    public subscript<Value>(dynamicMember keyPath: WritableKeyPath<OrderEvidence, Value>) -> Value {
        get { evidence[keyPath: keyPath] }
        set { evidence[keyPath: keyPath] = newValue }
    }
}

/// What a channel's order-query API answered (signature verified).
public enum OrderQueryResult: Sendable, Hashable {
    case found(OrderEvidence)
    /// The channel says it has no such order (Alipay `ACQ.TRADE_NOT_EXIST`, WeChat
    /// `ORDER_NOT_EXIST`, points `ORDER_NOT_FOUND`).
    case notFound(outTradeNo: String)
}
