public import Foundation
public import PayhookCore

/// A refund as the channel builders take it.
public struct ChannelRefundRequest: Sendable, Hashable {
    public var outTradeNo: String
    /// The site's refund number: WeChat Pay `out_refund_no`, Alipay `out_request_no`,
    /// points `reverse_no`; the channel's idempotency key for this refund.
    public var refundNo: String
    public var amountMinor: Int64
    /// The order's amount (WeChat Pay states it with every refund).
    public var orderAmountMinor: Int64
    public var currency: String
    public var reason: String?
    /// Where WeChat Pay sends the refund notify (Alipay notifies the payment's `notify_url`).
    public var notifyURL: String?

    public init(outTradeNo: String, refundNo: String, amountMinor: Int64, orderAmountMinor: Int64,
                currency: String = "CNY", reason: String? = nil, notifyURL: String? = nil) {
        self.outTradeNo = outTradeNo
        self.refundNo = refundNo
        self.amountMinor = amountMinor
        self.orderAmountMinor = orderAmountMinor
        self.currency = currency
        self.reason = reason
        self.notifyURL = notifyURL
    }
}

extension AnyChannelAdapter {
    /// The signed refund call (`alipay.trade.refund`, `POST /v3/refund/domestic/refunds`,
    /// the points reverse).
    public func refundRequest(_ refund: ChannelRefundRequest, now: Date) throws(QueryError) -> ChannelRequest {
        switch self {
        case .alipay(let a): try AlipayRefund.refundRequest(refund, configuration: a.configuration, now: now)
        case .wechatPay(let a):
            try WeChatPayRefund.refundRequest(refund, configuration: a.configuration, now: now, nonce: Nonce.random(32))
        case .points(let a):
            try PointsOrderCreation.reverseRequest(outTradeNo: refund.outTradeNo, reverseNo: refund.refundNo,
                                                   amountMinor: refund.amountMinor, configuration: a.configuration,
                                                   now: now, nonce: Nonce.random(32))
        }
    }

    /// The channel's answer to the refund call, verified.
    public func refundResult(_ response: ChannelResponse, refund: ChannelRefundRequest, now: Date) throws(QueryError) -> RefundEvidence {
        switch self {
        case .alipay(let a): try AlipayRefund.refundResult(response, refund: refund, configuration: a.configuration)
        case .wechatPay(let a): try WeChatPayRefund.refundResult(response, refund: refund, configuration: a.configuration, now: now)
        case .points(let a):
            try PointsRefund.evidence(
                PointsOrderCreation.reverseResult(response, outTradeNo: refund.outTradeNo, reverseNo: refund.refundNo,
                                                  configuration: a.configuration, now: now),
                channel: a.channelID, currency: refund.currency)
        }
    }

    /// The signed refund query. Points has none: the identical reverse call is its query
    /// (`Points/PROTOCOL.md`), so `refund` must be the one first sent.
    public func refundQueryRequest(_ refund: ChannelRefundRequest, now: Date) throws(QueryError) -> ChannelRequest {
        switch self {
        case .alipay(let a):
            try AlipayRefund.queryRequest(outTradeNo: refund.outTradeNo, refundNo: refund.refundNo,
                                          configuration: a.configuration, now: now)
        case .wechatPay(let a):
            try WeChatPayRefund.queryRequest(refundNo: refund.refundNo, configuration: a.configuration, now: now,
                                             nonce: Nonce.random(32))
        case .points: try refundRequest(refund, now: now)
        }
    }

    /// The refund query's answer, verified.
    public func refundQueryResult(_ response: ChannelResponse, refund: ChannelRefundRequest, now: Date) throws(QueryError) -> RefundQueryResult {
        switch self {
        case .alipay(let a):
            try AlipayRefund.queryResult(response, outTradeNo: refund.outTradeNo, refundNo: refund.refundNo,
                                         configuration: a.configuration)
        case .wechatPay(let a):
            try WeChatPayRefund.queryResult(response, outTradeNo: refund.outTradeNo, refundNo: refund.refundNo,
                                            configuration: a.configuration, now: now)
        case .points: .found(try refundResult(response, refund: refund, now: now))
        }
    }
}

/// The points reverse answer as refund evidence.
enum PointsRefund {
    static func evidence(_ reversal: PointsReversal, channel: String, currency: String) -> RefundEvidence {
        let status: RefundStatus = switch reversal.status {
        case .reversed: .succeeded
        case .failed: .failed
        case .processing: .processing
        }
        return RefundEvidence(channel: channel, outTradeNo: reversal.outTradeNo, channelTradeNo: nil,
                              refundNo: reversal.reverseNo, channelRefundID: nil, status: status,
                              amountMinor: reversal.amountMinor, currency: currency, refundedAt: nil)
    }
}
