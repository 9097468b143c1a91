public import Orders
public import PayhookCore

/// A channel's `cross_check` policy: whether a verified notify must also be confirmed by
/// the channel's signed order-query answer before it moves an order. An enum-like struct,
/// so policies can be added without breaking callers.
public struct CrossCheck: Sendable, Hashable, CustomStringConvertible {
    private enum Mode: String, Sendable, Hashable {
        case always
        case whenUnverified = "when_unverified"
    }

    private let mode: Mode

    /// Every notify is confirmed by the channel's query before it is applied (the default):
    /// it holds even against a leaked signing key or a signature check that is wrong.
    public static let always = CrossCheck(mode: .always)

    /// A notify that `NotifyTrust` admits (verified, a success status, the configured app
    /// and merchant, the order's channel, amount and currency, a trade number) is applied on
    /// its own signature; anything else is asked about as under `always`.
    public static let whenUnverified = CrossCheck(mode: .whenUnverified)

    /// The names `payhook.yaml` accepts, in the order the error message lists them.
    public static let names = [Mode.always.rawValue, Mode.whenUnverified.rawValue]

    /// The policy named `name` in `payhook.yaml`, nil for any other text.
    public init?(name: String) {
        guard let mode = Mode(rawValue: name) else { return nil }
        self.mode = mode
    }

    private init(mode: Mode) { self.mode = mode }

    /// The name in `payhook.yaml`.
    public var description: String { mode.rawValue }
}

/// Whether a verified notify may move its order without asking the channel, under
/// `cross_check: when_unverified`. Pure.
///
/// Only the signed notify's own fields become the evidence of payment (status, amount,
/// currency, trade number, paid time, payer), so each must be one Payhook would otherwise
/// have had the query confirm: a browser return (the buyer's redirect, replayable), a status
/// that is not a payment, an app or merchant other than the configured one, or a notify
/// without the channel's trade number is asked about; an order that is not `created` or
/// whose channel, amount or currency differ is decided as under `always`.
public enum NotifyTrust {
    public static func admits(_ evidence: OrderEvidence, kind: RawCallback.Kind, order: OrderSnapshot,
                              merchant expected: MerchantIdentity) -> Bool {
        guard kind == .notify, evidence.status == .paid, order.status == .created else { return false }
        guard OrderStateMachine.mismatch(order, evidence) == nil else { return false }
        // The identity the configuration names, all of it: a channel configured without its
        // merchant id (Alipay without seller_id) never qualifies.
        guard expected.merchantID != nil, evidence.merchant == expected else { return false }
        guard let tradeNo = evidence.channelTradeNo, !tradeNo.isEmpty, BatchPlan.storable(tradeNo) != nil else {
            return false
        }
        return true
    }

    /// The `order_events.detail` of a transition applied this way, so an operator can tell
    /// it from one the channel's query confirmed.
    public static let eventNote = "applied from the verified notify, not a query (cross_check: when_unverified)"
}
