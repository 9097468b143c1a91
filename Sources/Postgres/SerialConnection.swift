import Dispatch
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
    /// before the body runs. Cancelling the calling task cancels this call's statement only:
    /// before the block starts it never runs, after it finished nothing is cancelled.
    public func run<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        let canceller = connection.canceller
        let call = CallState()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                queue.async { [self] in
                    guard call.start() else {
                        continuation.resume(throwing: PostgresError(code: .cancelled, context: "cancelled before it ran"))
                        return
                    }
                    let result = Result {
                        if !connection.isConnected { try connection.reconnect() }
                        return try body(connection)
                    }
                    call.finish()
                    continuation.resume(with: result)
                }
            }
        } onCancel: {
            call.cancel { canceller.cancel() }
        }
    }
}

/// Where one `run` call stands, so a cancel reaches its own statement and no other: the
/// queue starts the next block only after this one marked itself finished.
private final class CallState: Sendable {
    private enum Phase { case waiting, running, finished, cancelled }
    private let phase = Mutex<Phase>(.waiting)

    /// False when the call was cancelled before it started.
    func start() -> Bool {
        phase.withLock { phase in
            guard phase == .waiting else { return false }
            phase = .running
            return true
        }
    }

    func finish() { phase.withLock { $0 = .finished } }

    /// Marks the call cancelled; runs `cancelStatement` only while the call is running.
    func cancel(_ cancelStatement: () -> Void) {
        phase.withLock { phase in
            switch phase {
            case .waiting: phase = .cancelled
            case .running: cancelStatement()
            case .finished, .cancelled: break
            }
        }
    }
}
