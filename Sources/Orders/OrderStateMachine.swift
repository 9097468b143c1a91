public import PayhookCore
public import Foundation

/// An order's status in the site's `orders` table.
public enum OrderStatus: String, Sendable, Hashable, CaseIterable {
    case created, paid, closed
    /// Paid, then refunded in full (`refunded_minor == amount_minor`).
    case refunded

    /// Whether the order was paid (a refund does not undo that it was).
    public var wasPaid: Bool { self == .paid || self == .refunded }
}

/// One row of `orders`, as read (under lock when it is about to change).
public struct OrderSnapshot: Sendable, Equatable {
    public var outTradeNo: String
    public var channel: String
    public var channelTradeNo: String?
    public var amountMinor: Int64
    public var currency: String
    public var status: OrderStatus
    public var paidAt: Date?
    /// The payer as the channel named them when the order was paid.
    public var payer: String?
    /// What succeeded refunds gave back, in minor units.
    public var refundedMinor: Int64

    public init(outTradeNo: String, channel: String, channelTradeNo: String?, amountMinor: Int64, currency: String,
                status: OrderStatus, paidAt: Date?, payer: String? = nil, refundedMinor: Int64 = 0) {
        self.refundedMinor = refundedMinor
        self.outTradeNo = outTradeNo
        self.channel = channel
        self.channelTradeNo = channelTradeNo
        self.amountMinor = amountMinor
        self.currency = currency
        self.status = status
        self.paidAt = paidAt
        self.payer = payer
    }
}

/// What evidence does to an order. Pure: the same order and evidence always decide the same.
public enum OrderDecision: Sendable, Equatable {
    /// Move the order (`created → paid`, `created → closed`).
    case transition(from: OrderStatus, to: OrderStatus)
    /// The order is already where the evidence says: recorded, not applied.
    case duplicate(OrderStatus)
    /// Never applied; recorded as a flagged event.
    case conflict(ReasonCode, detail: String)
    /// The evidence names no final state (pending, or a status kept verbatim): nothing to do.
    case noChange
}

public enum OrderStateMachine {
    /// Whether the evidence is about this order as the site created it: same channel,
    /// amount and currency. Nil when it matches.
    public static func mismatch(_ order: OrderSnapshot, _ evidence: OrderEvidence) -> (ReasonCode, String)? {
        if order.channel != evidence.channel {
            return (.channelMismatch, "order is for channel \(order.channel), evidence came through \(evidence.channel)")
        }
        if order.currency != evidence.currency {
            return (.currencyMismatch, "order \(order.currency), evidence \(evidence.currency)")
        }
        if order.amountMinor != evidence.amountMinor {
            return (.amountMismatch, "order \(order.amountMinor), evidence \(evidence.amountMinor) (minor units)")
        }
        return nil
    }

    public static func decide(_ order: OrderSnapshot, _ evidence: OrderEvidence) -> OrderDecision {
        if let (reason, detail) = mismatch(order, evidence) { return .conflict(reason, detail: detail) }
        switch (evidence.status, order.status) {
        case (.pending, _), (.other, _):
            return .noChange
        case (.paid, .created):
            return .transition(from: .created, to: .paid)
        case (.paid, .paid):
            if let known = order.channelTradeNo, let claimed = evidence.channelTradeNo, known != claimed {
                return .conflict(.tradeNoMismatch, detail: "order paid by another channel trade number")
            }
            return .duplicate(.paid)
        case (.paid, .closed):
            return .conflict(.paidAfterClose, detail: "payment for a closed order")
        case (.closed, .created):
            return .transition(from: .created, to: .closed)
        case (.closed, .closed):
            return .duplicate(.closed)
        case (.closed, .paid):
            return .conflict(.statusRegression, detail: "paid order reported closed")
        case (.paid, .refunded):
            if let known = order.channelTradeNo, let claimed = evidence.channelTradeNo, known != claimed {
                return .conflict(.tradeNoMismatch, detail: "order paid by another channel trade number")
            }
            return .duplicate(.refunded)
        case (.closed, .refunded):
            // Alipay states a fully refunded trade TRADE_CLOSED: what the order is already.
            return .duplicate(.refunded)
        }
    }

    /// The order after a decision is applied.
    public static func apply(_ decision: OrderDecision, to order: OrderSnapshot, evidence: OrderEvidence,
                             now: Date) -> OrderSnapshot {
        guard case .transition(_, let to) = decision else { return order }
        var next = order
        next.status = to
        if to == .paid {
            next.channelTradeNo = evidence.channelTradeNo ?? order.channelTradeNo
            next.paidAt = evidence.paidAt ?? now
            next.payer = evidence.payer ?? order.payer
        }
        return next
    }
}
