public import CallbackQueue
public import Channels
public import Orders

/// What the channel's query answer means for a verified notification. Pure.
public enum QueryAgreement: Sendable, Equatable {
    /// Apply this evidence (the notification, completed by the answer).
    case confirms(OrderEvidence)
    /// The channel does not know the payment yet (it may lag its own notify): try again.
    case notYet(reason: String)
    /// The channel contradicts the notification: a conflict, never applied.
    case disagrees(String)
    /// The notification named no final state and neither does the channel.
    case nothingToApply

    public static func check(_ notified: OrderEvidence, _ answer: OrderQueryResult) -> QueryAgreement {
        let isFinal = notified.status == .paid || notified.status == .closed
        guard case .found(let queried) = answer else {
            return isFinal ? .notYet(reason: "query_not_found") : .nothingToApply
        }
        let stated = evidence(from: queried, channel: notified.channel)
        // A return or a pending notify only prompts the question; the answer is the evidence.
        guard isFinal else {
            return queried.status == .paid || queried.status == .closed ? .confirms(stated) : .nothingToApply
        }
        if queried.status == .pending { return .notYet(reason: "query_pending") }
        if queried.status != notified.status {
            return .disagrees("channel says \(queried.status), notify says \(notified.status)")
        }
        if queried.amountMinor != notified.amountMinor || queried.currency != notified.currency {
            return .disagrees("channel says \(queried.amountMinor) \(queried.currency), notify says \(notified.amountMinor) \(notified.currency)")
        }
        if let a = queried.channelTradeNo, let b = notified.channelTradeNo, a != b {
            return .disagrees("channel trade numbers differ")
        }
        var confirmed = notified
        confirmed.channelTradeNo = notified.channelTradeNo ?? queried.channelTradeNo
        confirmed.paidAt = notified.paidAt ?? queried.paidAt
        return .confirms(confirmed)
    }

    /// The query answer as evidence on its own (reconciliation, returns).
    public static func evidence(from queried: QueriedOrder, channel: String) -> OrderEvidence {
        OrderEvidence(channel: channel, outTradeNo: queried.outTradeNo, channelTradeNo: queried.channelTradeNo,
                      status: queried.status, amountMinor: queried.amountMinor, currency: queried.currency,
                      paidAt: queried.paidAt)
    }
}

extension OrderEvidence {
    public init(_ notification: PaymentNotification) {
        self.init(channel: notification.channelID, outTradeNo: notification.outTradeNo,
                  channelTradeNo: notification.channelTradeNo, status: notification.status,
                  amountMinor: notification.amountMinor, currency: notification.currency,
                  paidAt: notification.paidAt)
    }
}

/// How an attempt's result becomes the callback's next state. Pure.
public struct OutcomeRules: Sendable {
    public var retry: RetryPolicy
    public var unknownOrderAttempts: Int

    public init(retry: RetryPolicy, unknownOrderAttempts: Int) {
        self.retry = retry
        self.unknownOrderAttempts = unknownOrderAttempts
    }

    /// A failure that may pass: retry with backoff, or dead once the budget is spent.
    public func transient(attempt: Int32, reason: String, error: String) -> AttemptOutcome {
        switch retry.decide(afterFailedAttempt: Int(attempt)) {
        case .retry(let seconds): .retry(afterSeconds: seconds, reason: reason, error: error)
        case .giveUp: .dead(reason: reason, error: error)
        }
    }

    /// The order is not in `orders`: the site's insert may still be on its way, for a while.
    public func unknownOrder(attempt: Int32) -> AttemptOutcome {
        let error = "no such order in orders"
        guard Int(attempt) < unknownOrderAttempts else { return .dead(reason: "unknown_order", error: error) }
        return transient(attempt: attempt, reason: "unknown_order", error: error)
    }

    /// After evidence met the locked order.
    public func applied(_ decision: OrderDecision) -> AttemptOutcome {
        switch decision {
        case .transition, .duplicate, .noChange: .done
        case .conflict(let reason, let detail): .rejected(reason: reason.rawValue, error: detail)
        }
    }
}
