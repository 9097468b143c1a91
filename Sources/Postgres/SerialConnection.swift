import Dispatch
import Synchronization

/// A `Connection` owned by one serial `DispatchQueue`, for async callers. Each call runs
/// on the queue; cancelling the calling task cancels the running statement (`PQcancel`).
///
/// The connection opens on first use and reopens after it was lost, so a database that
/// is down when the process starts only fails the calls made while it is down.
///
/// @unchecked because `connection` is touched only from `queue`, which runs one block
/// at a time.
public final class SerialConnection: @unchecked Sendable {
    private let queue: DispatchQueue
    private let configuration: Connection.Configuration
    private var connection: Connection?

    public init(configuration: Connection.Configuration, label: String = "payhook.postgres") {
        queue = DispatchQueue(label: label)
        self.configuration = configuration
    }

    /// Runs `body` with the connection on its queue, opening it first when it is not open.
    /// Cancelling the calling task cancels this call's statement only: before the block
    /// starts it never runs, after it finished nothing is cancelled.
    public func run<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        let call = CallState()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                queue.async { [self] in
                    guard call.start() else {
                        continuation.resume(throwing: PostgresError(code: .cancelled, context: "cancelled before it ran"))
                        return
                    }
                    let result = Result { () throws -> T in
                        let open = try openConnection()
                        guard call.running(open.canceller) else {
                            throw PostgresError(code: .cancelled, context: "cancelled before it ran")
                        }
                        return try body(open)
                    }
                    call.finish()
                    continuation.resume(with: result)
                }
            }
        } onCancel: {
            call.cancel()
        }
    }

    /// On the queue only.
    private func openConnection() throws(PostgresError) -> Connection {
        if let connection, connection.isConnected { return connection }
        if let connection {
            try connection.reconnect()
            return connection
        }
        let opened = try Connection(configuration: configuration)
        connection = opened
        return opened
    }
}

/// Where one `run` call stands, so a cancel reaches its own statement and no other: the
/// queue starts the next block only after this one marked itself finished.
private final class CallState: Sendable {
    private enum Phase {
        case waiting, started, finished, cancelled
        case running(Canceller)
    }
    private let phase = Mutex<Phase>(.waiting)

    /// False when the call was cancelled before it started.
    func start() -> Bool {
        phase.withLock { phase in
            guard case .waiting = phase else { return false }
            phase = .started
            return true
        }
    }

    /// The statement can be cancelled through `canceller` from now on; false when the call
    /// was cancelled while its connection opened.
    func running(_ canceller: Canceller) -> Bool {
        phase.withLock { phase in
            guard case .started = phase else { return false }
            phase = .running(canceller)
            return true
        }
    }

    func finish() { phase.withLock { $0 = .finished } }

    /// Marks the call cancelled; cancels the statement only while this call runs it.
    func cancel() {
        phase.withLock { phase in
            switch phase {
            case .waiting: phase = .cancelled
            case .started: phase = .cancelled
            case .running(let canceller): canceller.cancel()
            case .finished, .cancelled: break
            }
        }
    }
}

/// A few `SerialConnection`s taken in turn, for async callers whose statements would
/// otherwise wait on one connection (the site API under load).
public final class SerialConnections: Sendable {
    private let connections: [SerialConnection]
    private let next = Atomic<UInt>(0)

    public init(configuration: Connection.Configuration, count: Int, label: String) {
        connections = (0..<max(1, count)).map { SerialConnection(configuration: configuration, label: "\(label).\($0)") }
    }

    public func run<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        let index = Int(next.wrappingAdd(1, ordering: .relaxed).oldValue % UInt(connections.count))
        return try await connections[index].run(body)
    }
}
