public import PayhookCore

/// The life of a queued callback:
/// `pending → processing → done | rejected | dead`, or back to `pending` for a retry or a
/// release, `processing → processing` when an expired lease is taken over, and
/// `dead → pending` when an operator replays it.
public enum CallbackState: String, Sendable, CaseIterable {
    case pending, processing, done, rejected, dead

    public var isFinal: Bool { self == .done || self == .rejected }

    public func canMove(to next: CallbackState) -> Bool {
        switch (self, next) {
        case (.pending, .processing), (.processing, .processing): true
        case (.processing, .done), (.processing, .rejected), (.processing, .dead), (.processing, .pending): true
        case (.dead, .pending): true
        default: false
        }
    }
}

/// How one attempt at a claimed callback ended.
public enum AttemptOutcome: Sendable, Equatable {
    /// Applied; the callback is finished.
    case done
    /// Permanently refused (bad signature, conflict, ...), with a stable reason code.
    case rejected(reason: ReasonCode, error: String?)
    /// Failed for now; try again after the delay.
    case retry(afterSeconds: Double, reason: ReasonCode?, error: String)
    /// The retry budget is spent.
    case dead(reason: ReasonCode?, error: String)
    /// Not processed (shutdown): back to the queue at once, the attempt given back.
    case released

    /// The state the row moves to.
    public var nextState: CallbackState {
        switch self {
        case .done: .done
        case .rejected: .rejected
        case .retry, .released: .pending
        case .dead: .dead
        }
    }

    /// The `callback_attempts.outcome` value.
    public var label: String {
        switch self {
        case .done: "done"
        case .rejected: "rejected"
        case .retry: "retry"
        case .dead: "dead"
        case .released: "released"
        }
    }

    public var reason: ReasonCode? {
        switch self {
        case .done, .released: nil
        case .rejected(let reason, _): reason
        case .retry(_, let reason, _), .dead(let reason, _): reason
        }
    }

    var error: String? {
        switch self {
        case .done, .released: nil
        case .rejected(_, let error): error
        case .retry(_, _, let error), .dead(_, let error): error
        }
    }

    /// Milliseconds until the row is due again; nil keeps `next_attempt_at`.
    var delayMilliseconds: Int64? {
        switch self {
        case .retry(let seconds, _, _): Int64((max(seconds, 0) * 1000).rounded())
        case .released: 0
        default: nil
        }
    }

    /// A release hands the attempt back so that shutdowns do not spend the retry budget.
    var attemptsGivenBack: Int32 { self == .released ? 1 : 0 }
}
