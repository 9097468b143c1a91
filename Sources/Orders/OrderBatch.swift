public import PayhookCore
public import Foundation

/// Where evidence about an order came from (`order_events.source`).
public enum EvidenceSource: String, Sendable, Hashable {
    case callback, reconcile, admin, api, expiry
}

/// One row for `order_events`.
public struct OrderEventRecord: Sendable, Equatable {
    public enum Kind: String, Sendable { case transition, duplicate, conflict, refund }

    public var outTradeNo: String
    public var callbackID: Int64?
    public var source: EvidenceSource
    public var kind: Kind
    public var fromStatus: OrderStatus?
    public var toStatus: OrderStatus?
    public var flagged: Bool
    /// Why a conflict is flagged; stored at the front of `detail` (`amount_mismatch: …`).
    public var reason: ReasonCode?
    public var detail: String?
    /// The refund the event is about, if any (`order_events.out_refund_no`).
    public var refundNo: String?
    /// For a refund that gave money back, its amount: such an event is `order.refunded`.
    public var refundMinor: Int64?

    public init(outTradeNo: String, callbackID: Int64?, source: EvidenceSource, kind: Kind, fromStatus: OrderStatus?,
                toStatus: OrderStatus?, flagged: Bool, reason: ReasonCode? = nil, detail: String?,
                refundNo: String? = nil, refundMinor: Int64? = nil) {
        self.refundNo = refundNo
        self.refundMinor = refundMinor
        self.outTradeNo = outTradeNo
        self.callbackID = callbackID
        self.source = source
        self.kind = kind
        self.fromStatus = fromStatus
        self.toStatus = toStatus
        self.flagged = flagged
        self.reason = reason
        self.detail = detail
    }
}

extension OrderEventRecord {
    /// The `order_events.detail` text: the reason code first, where there is one.
    var storedDetail: String? {
        guard let reason else { return detail }
        guard let detail, !detail.isEmpty else { return reason.rawValue }
        return "\(reason.rawValue): \(detail)"
    }
}

/// Evidence to apply, in the order it is applied.
public struct ApplyItem: Sendable, Equatable {
    public var source: EvidenceSource
    public var callbackID: Int64?
    public var evidence: OrderEvidence
    /// A detail for the event row (e.g. why a reconciliation happened).
    public var note: String?

    public init(source: EvidenceSource, callbackID: Int64?, evidence: OrderEvidence, note: String? = nil) {
        self.source = source
        self.callbackID = callbackID
        self.evidence = evidence
        self.note = note
    }
}

/// The plan for a batch of evidence against orders read under lock: each item decided in
/// turn against the order as the items before it left it, so duplicates inside one batch
/// are duplicates, not second transitions. Pure.
public struct OrderBatchPlan: Sendable, Equatable {
    /// One per item; nil where the order does not exist.
    public var decisions: [OrderDecision?]
    /// The orders that change, in their final state.
    public var updates: [OrderSnapshot]
    public var events: [OrderEventRecord]
    /// One per refund item, after the payments; nil where the order does not exist.
    public var refundDecisions: [RefundDecision?] = []
    /// The refunds to write (insert or update), each key once, in its final state.
    public var refundWrites: [RefundRecord] = []

    public init(items: [ApplyItem], refunds: [RefundItem] = [], orders: [String: OrderSnapshot],
                knownRefunds: [RefundRecord.Key: RefundRecord] = [:], now: Date) {
        var current = orders
        var changed: [String] = []
        decisions = []
        events = []
        for item in items {
            guard let order = current[item.evidence.outTradeNo] else {
                decisions.append(nil)
                continue
            }
            let decision = OrderStateMachine.decide(order, item.evidence)
            decisions.append(decision)
            let note = item.note.map { "; " + $0 } ?? ""
            switch decision {
            case .transition(let from, let to):
                current[order.outTradeNo] = OrderStateMachine.apply(decision, to: order, evidence: item.evidence, now: now)
                if !changed.contains(order.outTradeNo) { changed.append(order.outTradeNo) }
                events.append(OrderEventRecord(
                    outTradeNo: order.outTradeNo, callbackID: item.callbackID, source: item.source, kind: .transition,
                    fromStatus: from, toStatus: to, flagged: false, detail: item.note))
            case .duplicate(let status):
                events.append(OrderEventRecord(
                    outTradeNo: order.outTradeNo, callbackID: item.callbackID, source: item.source, kind: .duplicate,
                    fromStatus: status, toStatus: status, flagged: false, detail: item.note))
            case .conflict(let reason, let detail):
                events.append(OrderEventRecord(
                    outTradeNo: order.outTradeNo, callbackID: item.callbackID, source: item.source, kind: .conflict,
                    fromStatus: order.status, toStatus: OrderStatus(item.evidence.status), flagged: true,
                    reason: reason, detail: detail + note))
            case .noChange:
                break
            }
        }
        // Refunds after payments: a paid notify and its refund in one batch apply in that order.
        var known = knownRefunds
        var writeOrder: [RefundRecord.Key] = []
        for item in refunds {
            let refund = item.evidence
            guard let order = current[refund.outTradeNo] else {
                refundDecisions.append(nil)
                continue
            }
            let key = RefundRecord.Key(outTradeNo: refund.outTradeNo, refundNo: refund.refundNo)
            let before = known[key]
            let decision = RefundStateMachine.decide(order, known: before, refund)
            refundDecisions.append(decision)
            let note = item.note.map { "; " + $0 } ?? ""
            func record(_ status: RefundStatus, amount: Int64) {
                known[key] = RefundRecord(
                    outTradeNo: refund.outTradeNo, refundNo: refund.refundNo, channel: refund.channel,
                    channelRefundID: refund.channelRefundID ?? before?.channelRefundID, amountMinor: amount,
                    currency: refund.currency, status: status, reason: before?.reason,
                    refundedAt: status == .succeeded ? refund.refundedAt ?? now : nil)
                if !writeOrder.contains(key) { writeOrder.append(key) }
            }
            switch decision {
            case .refund(let from, let to, let amount):
                var next = order
                next.refundedMinor += amount
                next.status = to
                current[order.outTradeNo] = next
                if !changed.contains(order.outTradeNo) { changed.append(order.outTradeNo) }
                record(.succeeded, amount: amount)
                events.append(OrderEventRecord(
                    outTradeNo: order.outTradeNo, callbackID: item.callbackID, source: item.source, kind: .refund,
                    fromStatus: from, toStatus: to, flagged: false,
                    detail: "refunded \(amount) (minor units), \(next.refundedMinor) of \(order.amountMinor) in all" + note,
                    refundNo: refund.refundNo, refundMinor: amount))
            case .state(let status):
                record(status, amount: refund.amountMinor ?? before?.amountMinor ?? 0)
                events.append(OrderEventRecord(
                    outTradeNo: order.outTradeNo, callbackID: item.callbackID, source: item.source, kind: .refund,
                    fromStatus: order.status, toStatus: order.status, flagged: false,
                    detail: "refund \(status.rawValue), no money moved" + note, refundNo: refund.refundNo))
            case .duplicate(let status):
                events.append(OrderEventRecord(
                    outTradeNo: order.outTradeNo, callbackID: item.callbackID, source: item.source, kind: .duplicate,
                    fromStatus: status, toStatus: status, flagged: false, detail: "refund repeated" + note,
                    refundNo: refund.refundNo))
            case .conflict(let reason, let detail):
                events.append(OrderEventRecord(
                    outTradeNo: order.outTradeNo, callbackID: item.callbackID, source: item.source, kind: .conflict,
                    fromStatus: order.status, toStatus: nil, flagged: true, reason: reason, detail: detail + note,
                    refundNo: refund.refundNo))
            }
        }
        refundWrites = writeOrder.compactMap { known[$0] }
        updates = changed.compactMap { current[$0] }
    }
}

extension OrderStatus {
    /// The order status a channel status names, if it names one.
    init?(_ status: PaymentStatus) {
        switch status {
        case .paid: self = .paid
        case .closed: self = .closed
        case .pending, .other: return nil
        }
    }
}
