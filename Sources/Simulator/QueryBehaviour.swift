public import PayhookCore
import Channels

/// How the simulator answers one order query.
public enum QueryBehaviour: Sendable, Hashable {
    /// Answer from the order book (not found when the book has no such order).
    case normal
    /// Answer "no such order" whatever the book says.
    case notFound
    /// Answer the book's order with this status instead (not found when the book has none).
    case status(PaymentStatus)
    /// Answer the book's order with this amount in minor units instead (not found when the book has none).
    case amount(Int64)
    /// Answer with this HTTP status and the channel's system-error body, unsigned.
    case httpError(Int)
    /// Never answer within a client's timeout: hold the request for
    /// ``DefaultQueryBehaviour/holdDuration`` or until the server stops.
    case timeout
    /// Wait this long, then answer as ``normal``.
    case latency(Duration)
}

/// What every query gets unless a script for its order says otherwise. Rates are
/// probabilities from 0 to 1, drawn independently per query.
public struct DefaultQueryBehaviour: Sendable, Hashable {
    /// Fraction of queries answered with ``errorStatus``. Default 0.
    public var errorRate: Double
    /// Fraction of queries held as ``QueryBehaviour/timeout``. Default 0.
    public var timeoutRate: Double
    /// Added to every answer. Default zero.
    public var latency: Duration
    /// The status of rate-drawn errors. Default 500.
    public var errorStatus: Int
    /// How long a timed-out query is held before the server gives up on it. Default 30 s.
    public var holdDuration: Duration

    public init(errorRate: Double = 0, timeoutRate: Double = 0, latency: Duration = .zero, errorStatus: Int = 500,
                holdDuration: Duration = .seconds(30)) {
        self.errorRate = errorRate
        self.timeoutRate = timeoutRate
        self.latency = latency
        self.errorStatus = errorStatus
        self.holdDuration = holdDuration
    }

    /// The behaviour for one unscripted query, given a uniform draw in `0..<1`.
    func draw(_ uniform: Double) -> QueryBehaviour {
        if uniform < errorRate { return .httpError(errorStatus) }
        if uniform < errorRate + timeoutRate { return .timeout }
        return .normal
    }
}
