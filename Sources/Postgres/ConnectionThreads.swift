import Dispatch
import Foundation
import Synchronization

/// Named threads that each own one `Connection` (libpq connections belong to one thread),
/// reconnecting with backoff after a failure, until `stop()`. The worker pool and the
/// webhook delivery threads run on it.
public final class ConnectionThreads: Sendable {
    public let configuration: Connection.Configuration
    private let stopping = Atomic<Bool>(false)
    private let running = DispatchGroup()

    public init(configuration: Connection.Configuration) {
        self.configuration = configuration
    }

    public var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// Starts a thread named `name`; `niceness` above 0 lowers its priority (Linux).
    public func spawn(_ name: String, niceness: Int32 = 0, _ body: @escaping @Sendable () -> Void) {
        running.enter()
        let thread = Thread { [running] in
            Thread.current.name = name  // from inside: the name belongs to the running thread
            #if os(Linux)
            // On Linux the nice value belongs to the thread, and `0` names the calling one.
            if niceness != 0 { setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness) }
            #endif
            body()
            running.leave()
        }
        thread.start()
    }

    /// Asks every thread to stop, calls `wake` (to rouse threads waiting on something of
    /// their own), and returns once all have stopped.
    public func stop(wake: () -> Void = {}) async {
        stopping.store(true, ordering: .relaxed)
        wake()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            running.notify(queue: .global()) { continuation.resume() }
        }
    }

    /// Sleeps up to `duration`, waking early when stopping begins.
    public func pause(_ duration: Duration) {
        let end = ContinuousClock.now + duration
        while !isStopping && ContinuousClock.now < end {
            Thread.sleep(forTimeInterval: min(0.05, Self.seconds(end - ContinuousClock.now)))
        }
    }

    /// Runs `body` again and again with a connection of this thread's own while `keepGoing()`
    /// holds (nil: until stopping). A failure is reported to `onFailure`, the connection
    /// dropped, and a new one opened after a backoff of 0.2 s doubling to 5 s; `setUp`
    /// runs on each new connection.
    public func withConnection(while keepGoing: (() -> Bool)? = nil,
                               setUp: (Connection) throws(PostgresError) -> Void = { _ in },
                               onFailure: (PostgresError) -> Void,
                               _ body: (Connection) throws(PostgresError) -> Void) {
        var connection: Connection?
        var failures = 0
        while keepGoing?() ?? !isStopping {
            do throws(PostgresError) {
                if connection == nil {
                    let opened = try Connection(configuration: configuration)
                    try setUp(opened)
                    connection = opened
                }
                try body(connection!)
                failures = 0
            } catch {
                onFailure(error)
                connection = nil
                failures += 1
                let backoff = Duration.milliseconds(min(5000, 100 << min(failures, 6)))
                if isStopping { Thread.sleep(forTimeInterval: Self.seconds(backoff)) } else { pause(backoff) }
            }
        }
    }

    public static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
