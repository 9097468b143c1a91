public import Foundation
public import PayhookCore

/// A callback a worker holds a lease on.
public struct ClaimedCallback: Sendable {
    public let id: Int64
    /// When it was received: the partition key, with `id` the row's key.
    public let receivedAt: Date
    /// This attempt's number (1-based); the fence for finishing it.
    public let attempt: Int32
    public let leaseExpiresAt: Date
    /// The stored channel id (readable even when the rest of the row is not).
    public let channel: String
    /// The stored callback, or why the row could not be read back.
    public let stored: Result<RawCallback, CorruptRow>

    public init(id: Int64, receivedAt: Date, attempt: Int32, leaseExpiresAt: Date, channel: String,
                stored: Result<RawCallback, CorruptRow>) {
        self.id = id
        self.receivedAt = receivedAt
        self.attempt = attempt
        self.leaseExpiresAt = leaseExpiresAt
        self.channel = channel
        self.stored = stored
    }
}

/// A stored callback row that does not read back (a hand-edited or damaged column). Never
/// a rejection: the callback may be genuine, so it goes to the dead letters for an operator.
public struct CorruptRow: Error, Sendable, Equatable, CustomStringConvertible {
    /// The column that does not read, e.g. `headers`.
    public let column: String
    public let problem: String

    public init(column: String, problem: String) {
        self.column = column
        self.problem = problem
    }

    public var description: String { "stored \(column) \(problem)" }
}
