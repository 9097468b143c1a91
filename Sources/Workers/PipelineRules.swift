public import CallbackQueue
public import Channels
public import Orders
public import PayhookCore

/// What the channel's query answer means for a verified notification. Pure.
public enum QueryAgreement: Sendable, Equatable {
    /// Apply this evidence (the notification, completed by the answer).
    case confirms(OrderEvidence)
    /// The channel does not know the payment yet (it may lag its own notify): try again.
    case notYet(reason: ReasonCode)
    /// The channel contradicts the notification: a conflict, never applied.
    case disagrees(String)
    /// The notification named no final state and neither does the channel.
    case nothingToApply

    public static func check(_ notified: OrderEvidence, _ answer: OrderQueryResult) -> QueryAgreement {
        guard case .found(let stated) = answer else {
            return notified.status.isFinal ? .notYet(reason: .queryNotFound) : .nothingToApply
        }
        // A return or a pending notify only prompts the question; the answer is the evidence.
        guard notified.status.isFinal else {
            return stated.status.isFinal ? .confirms(stated) : .nothingToApply
        }
        if stated.status == .pending { return .notYet(reason: .queryPending) }
        if stated.status != notified.status {
            return .disagrees("channel says \(stated.status), notify says \(notified.status)")
        }
        if stated.amountMinor != notified.amountMinor || stated.currency != notified.currency {
            return .disagrees("channel says \(stated.amountMinor) \(stated.currency), notify says \(notified.amountMinor) \(notified.currency)")
        }
        if let a = stated.channelTradeNo, let b = notified.channelTradeNo, a != b {
            return .disagrees("channel trade numbers differ")
        }
        var confirmed = notified
        confirmed.channelTradeNo = notified.channelTradeNo ?? stated.channelTradeNo
        confirmed.paidAt = notified.paidAt ?? stated.paidAt
        return .confirms(confirmed)
    }
}

/// What the channel's refund-query answer means for a verified refund notify. Pure.
public enum RefundAgreement: Sendable, Equatable {
    /// Apply this refund: the channel's statement, with the notify's ids and times kept.
    case confirms(RefundEvidence)
    /// The channel does not report the refund (or not as finished) yet: try again.
    case notYet(reason: ReasonCode)
    /// The channel contradicts the notify: flagged, never applied.
    case disagrees(String)

    public static func check(_ notified: RefundEvidence, _ answer: RefundQueryResult) -> RefundAgreement {
        guard case .found(let stated) = answer else { return .notYet(reason: .queryNotFound) }
        if stated.status == .processing, notified.status != .processing { return .notYet(reason: .queryPending) }
        if stated.status != notified.status {
            return .disagrees("channel says refund \(stated.status.rawValue), notify says \(notified.status.rawValue)")
        }
        if let amount = notified.amountMinor, amount != stated.amountMinor {
            return .disagrees("channel says refund of \(stated.amountMinor.map(String.init) ?? "-"), notify says \(amount) (minor units)")
        }
        if stated.amountMinor == nil { return .disagrees("the channel names no refund amount") }
        if let a = stated.channelRefundID, let b = notified.channelRefundID, a != b {
            return .disagrees("channel refund ids differ")
        }
        if let a = stated.channelTradeNo, let b = notified.channelTradeNo, a != b {
            return .disagrees("channel trade numbers differ")
        }
        var confirmed = stated
        confirmed.channelRefundID = stated.channelRefundID ?? notified.channelRefundID
        confirmed.channelTradeNo = stated.channelTradeNo ?? notified.channelTradeNo
        confirmed.refundedAt = notified.refundedAt ?? stated.refundedAt
        confirmed.totalRefundedMinor = notified.totalRefundedMinor ?? stated.totalRefundedMinor
        return .confirms(confirmed)
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
    public func transient(attempt: Int32, reason: ReasonCode, error: String) -> AttemptOutcome {
        switch retry.decide(afterFailedAttempt: Int(attempt)) {
        case .retry(let seconds): .retry(afterSeconds: seconds, reason: reason, error: error)
        case .giveUp: .dead(reason: reason, error: error)
        }
    }

    /// The order is not in `orders`: the site's insert may still be on its way, for a while.
    public func unknownOrder(attempt: Int32) -> AttemptOutcome {
        let error = "no such order in orders"
        guard Int(attempt) < unknownOrderAttempts else { return .dead(reason: .unknownOrder, error: error) }
        return transient(attempt: attempt, reason: .unknownOrder, error: error)
    }

    /// After evidence met the locked order.
    public func applied(_ decision: OrderDecision) -> AttemptOutcome {
        switch decision {
        case .transition, .duplicate, .noChange: .done
        case .conflict(let reason, let detail): .rejected(reason: reason, error: detail)
        }
    }

    /// After refund evidence met the locked order.
    public func appliedRefund(_ decision: RefundDecision) -> AttemptOutcome {
        switch decision {
        case .refund, .state, .duplicate: .done
        case .conflict(let reason, let detail): .rejected(reason: reason, error: detail)
        }
    }
}
