public import Channels
public import Foundation

/// An order's status in the site's `orders` table.
public enum OrderStatus: String, Sendable, Hashable, CaseIterable {
    case created, paid, closed
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

    public init(outTradeNo: String, channel: String, channelTradeNo: String?, amountMinor: Int64, currency: String,
                status: OrderStatus, paidAt: Date?) {
        self.outTradeNo = outTradeNo
        self.channel = channel
        self.channelTradeNo = channelTradeNo
        self.amountMinor = amountMinor
        self.currency = currency
        self.status = status
        self.paidAt = paidAt
    }
}

/// What a proven source says about an order: a verified callback confirmed by the
/// channel's query API, or the query answer alone (reconciliation).
public struct OrderEvidence: Sendable, Equatable {
    /// The configured channel id the evidence came through.
    public var channel: String
    public var outTradeNo: String
    public var channelTradeNo: String?
    public var status: PaymentStatus
    public var amountMinor: Int64
    public var currency: String
    public var paidAt: Date?

    public init(channel: String, outTradeNo: String, channelTradeNo: String?, status: PaymentStatus,
                amountMinor: Int64, currency: String, paidAt: Date?) {
        self.channel = channel
        self.outTradeNo = outTradeNo
        self.channelTradeNo = channelTradeNo
        self.status = status
        self.amountMinor = amountMinor
        self.currency = currency
        self.paidAt = paidAt
    }
}

/// Why genuine evidence is not applied. Stored as `callbacks.reason` and in the flagged
/// `order_events.detail`; add codes, never rename one.
public enum ConflictReason: String, Sendable, Hashable, CaseIterable {
    case amountMismatch = "amount_mismatch"
    case currencyMismatch = "currency_mismatch"
    /// The order belongs to another configured channel.
    case channelMismatch = "channel_mismatch"
    /// A second, different channel trade number for an order already paid (a double payment).
    case tradeNoMismatch = "trade_no_mismatch"
    /// `paid → closed`.
    case statusRegression = "status_regression"
    /// A payment for an order already closed: money came in for an order the site gave up.
    case paidAfterClose = "paid_after_close"
    /// The channel's query API does not confirm the notification.
    case queryMismatch = "query_mismatch"
    /// A genuine callback naming another app or merchant.
    case merchantMismatch = "merchant_mismatch"
}

/// What evidence does to an order. Pure: the same order and evidence always decide the same.
public enum OrderDecision: Sendable, Equatable {
    /// Move the order (`created → paid`, `created → closed`).
    case transition(from: OrderStatus, to: OrderStatus)
    /// The order is already where the evidence says: recorded, not applied.
    case duplicate(OrderStatus)
    /// Never applied; recorded as a flagged event.
    case conflict(ConflictReason, detail: String)
    /// The evidence names no final state (pending, or a status kept verbatim): nothing to do.
    case noChange

    public var isConflict: Bool {
        if case .conflict = self { return true }
        return false
    }
}

public enum OrderStateMachine {
    /// Whether the evidence is about this order as the site created it: same channel,
    /// amount and currency. Nil when it matches.
    public static func mismatch(_ order: OrderSnapshot, _ evidence: OrderEvidence) -> (ConflictReason, String)? {
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
        }
        return next
    }
}
