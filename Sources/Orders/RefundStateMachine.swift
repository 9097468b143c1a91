public import Foundation
public import PayhookCore

/// One row of `order_refunds`: a refund of an order, keyed by the order and the site's
/// refund number, as recorded.
public struct RefundRecord: Sendable, Equatable {
    public var outTradeNo: String
    public var refundNo: String
    public var channel: String
    public var channelRefundID: String?
    public var amountMinor: Int64
    public var currency: String
    public var status: RefundStatus
    public var reason: String?
    public var refundedAt: Date?

    public init(outTradeNo: String, refundNo: String, channel: String, channelRefundID: String?, amountMinor: Int64,
                currency: String, status: RefundStatus, reason: String? = nil, refundedAt: Date? = nil) {
        self.outTradeNo = outTradeNo
        self.refundNo = refundNo
        self.channel = channel
        self.channelRefundID = channelRefundID
        self.amountMinor = amountMinor
        self.currency = currency
        self.status = status
        self.reason = reason
        self.refundedAt = refundedAt
    }

    public struct Key: Sendable, Hashable {
        public var outTradeNo: String
        public var refundNo: String
        public init(outTradeNo: String, refundNo: String) {
            self.outTradeNo = outTradeNo
            self.refundNo = refundNo
        }
    }

    public var key: Key { Key(outTradeNo: outTradeNo, refundNo: refundNo) }
}

/// Refund evidence to apply, in the order it is applied (after a batch's payments).
public struct RefundItem: Sendable, Equatable {
    public var source: EvidenceSource
    public var callbackID: Int64?
    public var evidence: RefundEvidence
    public var note: String?

    public init(source: EvidenceSource, callbackID: Int64?, evidence: RefundEvidence, note: String? = nil) {
        self.source = source
        self.callbackID = callbackID
        self.evidence = evidence
        self.note = note
    }
}

/// What refund evidence does to an order and its refund.
public enum RefundDecision: Sendable, Equatable {
    /// Money went back: `refunded_minor` grows by `amountMinor`; `to` is `refunded` once
    /// all of the order is back, else the order's status.
    case refund(from: OrderStatus, to: OrderStatus, amountMinor: Int64)
    /// The refund's state changed without money moving (processing, abnormal, closed,
    /// failed): recorded on the refund, the order unchanged.
    case state(RefundStatus)
    /// Already recorded as it is: a no-op event.
    case duplicate(OrderStatus)
    /// Never applied; a flagged event.
    case conflict(ReasonCode, detail: String)
}

/// How refund evidence meets an order. Pure. A refund is never evidence of payment: an
/// order that is not paid stays as it is.
public enum RefundStateMachine {
    public static func decide(_ order: OrderSnapshot, known: RefundRecord?, _ evidence: RefundEvidence) -> RefundDecision {
        if order.channel != evidence.channel {
            return .conflict(.channelMismatch, detail: "order is for channel \(order.channel), refund came through \(evidence.channel)")
        }
        if order.currency != evidence.currency {
            return .conflict(.currencyMismatch, detail: "order \(order.currency), refund \(evidence.currency)")
        }
        guard order.status.wasPaid else {
            return .conflict(.refundUnpaid, detail: "refund reported for an order that is \(order.status.rawValue)")
        }
        guard let amount = evidence.amountMinor ?? known?.amountMinor, amount > 0 else {
            return .conflict(.refundMismatch, detail: "no refund amount")
        }
        if let known {
            if known.amountMinor != amount {
                return .conflict(.refundMismatch, detail: "refund recorded for \(known.amountMinor), reported for \(amount) (minor units)")
            }
            if known.status == evidence.status { return .duplicate(order.status) }
            if known.status.isFinal {
                return .conflict(.refundMismatch, detail: "refund recorded \(known.status.rawValue), reported \(evidence.status.rawValue)")
            }
        }
        guard evidence.status == .succeeded else { return .state(evidence.status) }
        let (after, overflow) = order.refundedMinor.addingReportingOverflow(amount)
        guard !overflow, after <= order.amountMinor else {
            return .conflict(.refundExceedsPaid, detail: "refunded \(order.refundedMinor) + \(amount) of \(order.amountMinor) paid (minor units)")
        }
        return .refund(from: order.status, to: after == order.amountMinor ? .refunded : order.status, amountMinor: amount)
    }
}
