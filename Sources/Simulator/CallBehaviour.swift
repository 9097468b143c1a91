/// How the simulator answers one order-creation or close call (Alipay precreate and close,
/// WeChat Pay prepay and close, points deduct). The cashier pages are not faulted.
public enum CallBehaviour: Sendable, Hashable {
    /// Do what was asked and answer.
    case normal
    /// Do nothing and answer with this HTTP status and the channel's system-error body, unsigned.
    case httpError(Int)
    /// Do nothing and never answer within a client's timeout (held for
    /// ``DefaultQueryBehaviour/holdDuration`` or until the server stops).
    case timeout
    /// Do what was asked, then hold the answer as ``timeout`` does: the caller cannot tell
    /// whether the order was created or closed, and must query.
    case lostAnswer
    /// Wait this long, then answer as ``normal``.
    case latency(Duration)
}

extension DefaultQueryBehaviour {
    /// The behaviour for one unscripted creation or close call, given a uniform draw in `0..<1`.
    func drawCall(_ uniform: Double) -> CallBehaviour {
        switch draw(uniform) {
        case .httpError(let status): .httpError(status)
        case .timeout: .timeout
        default: .normal
        }
    }
}

/// What happens to one payment notify the simulated channel sends.
public enum NotifyFault: Sendable, Hashable {
    /// Sent once (and retried until acknowledged).
    case normal
    /// Never sent: Payhook must find the payment by querying.
    case neverSent
    /// Sent, and once acknowledged sent again with the same bytes (the same event id).
    case sentTwice
}

/// What every notify gets unless a script for its order says otherwise. Rates are
/// probabilities from 0 to 1, drawn independently per notify.
public struct DefaultNotifyBehaviour: Sendable, Hashable {
    /// Fraction of notifies never sent. Default 0.
    public var neverSentRate: Double
    /// Fraction of notifies sent twice. Default 0.
    public var sentTwiceRate: Double
    /// Deliveries tried per notify before the channel gives up, the first included. Default 4.
    public var attempts: Int
    /// The wait before the first retry; each later one waits twice as long. Default 200 ms.
    public var backoff: Duration
    /// How long one delivery may take. Default 5 s (the points protocol's limit).
    public var timeout: Duration

    public init(neverSentRate: Double = 0, sentTwiceRate: Double = 0, attempts: Int = 4, backoff: Duration = .milliseconds(200),
                timeout: Duration = .seconds(5)) {
        self.neverSentRate = neverSentRate
        self.sentTwiceRate = sentTwiceRate
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
    }

    /// The fault for one unscripted notify, given a uniform draw in `0..<1`.
    func draw(_ uniform: Double) -> NotifyFault {
        if uniform < neverSentRate { return .neverSent }
        if uniform < neverSentRate + sentTwiceRate { return .sentTwice }
        return .normal
    }
}

/// What the points partner answers a member's deduct with (by default ``paid``).
public enum DeductOutcome: String, Sendable, Hashable, Codable {
    /// Deducted at once: PAID, and the notify follows.
    case paid
    /// Refused, final: FAILED with `INSUFFICIENT_POINTS` (the query then says CLOSED), and the notify follows.
    case failed
    /// Accepted, undecided: PROCESSING; the query says PENDING until `POST /_sim/pay` pays it.
    case processing
}
