public import Dispatch
import Synchronization

/// A `Connection` owned by one serial `DispatchQueue`, for async callers. Each call runs
/// on the queue; cancelling the calling task cancels the running statement (`PQcancel`).
///
/// @unchecked because `connection` is touched only from `queue`, which runs one block
/// at a time; `canceller` is itself thread-safe.
public final class SerialConnection: @unchecked Sendable {
    private let queue: DispatchQueue
    private let connection: Connection

    public init(configuration: Connection.Configuration, label: String = "payhook.postgres") throws(PostgresError) {
        queue = DispatchQueue(label: label)
        connection = try Connection(configuration: configuration)
    }

    /// Runs `body` with the connection on its queue. A lost connection is reopened
    /// before the body runs.
    public func run<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        let canceller = connection.canceller
        // A cancel that comes before the block runs would find no statement to cancel.
        let cancelled = CancelFlag()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                queue.async { [self] in
                    continuation.resume(with: Result {
                        if cancelled.isSet { throw PostgresError(code: .cancelled, context: "cancelled before it ran") }
                        if !connection.isConnected { try connection.reconnect() }
                        return try body(connection)
                    })
                }
            }
        } onCancel: {
            cancelled.set()
            canceller.cancel()
        }
    }
}

private final class CancelFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}
