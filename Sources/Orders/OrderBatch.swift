public import PayhookCore
public import Foundation

/// Where evidence about an order came from (`order_events.source`).
public enum EvidenceSource: String, Sendable, Hashable {
    case callback, reconcile, admin, api, expiry
}

/// One row for `order_events`.
public struct OrderEventRecord: Sendable, Equatable {
    public enum Kind: String, Sendable { case transition, duplicate, conflict }

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

    public init(outTradeNo: String, callbackID: Int64?, source: EvidenceSource, kind: Kind, fromStatus: OrderStatus?,
                toStatus: OrderStatus?, flagged: Bool, reason: ReasonCode? = nil, detail: String?) {
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

    public init(items: [ApplyItem], orders: [String: OrderSnapshot], now: Date) {
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
