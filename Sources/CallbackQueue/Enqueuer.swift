import Foundation
public import Logging
import Metrics
public import PayhookCore
public import Postgres
import Synchronization

/// Group commit for the receiver: concurrent callers hand in callbacks, writer threads
/// store them in batches (one statement, one transaction, one fsync each) and tell each
/// caller its id only after the commit. A caller whose batch failed, or that waited past
/// `commitTimeout`, gets an error: nothing is reported committed that is not.
public final class Enqueuer: Sendable {
    public struct Configuration: Sendable {
        public var connection: Connection.Configuration
        /// Writer threads, each with its own connection. Default 1: while it waits for its
        /// commit the next batch gathers, so every commit carries all that arrived meanwhile.
        /// A second writer takes the few rows that arrive during a commit and commits them on
        /// their own: twice the commits, and on 2 cores 20% fewer acknowledgements a second
        /// (Benchmarks/receiver).
        public var writers: Int = 1
        /// Most callbacks in one batch. Default 64.
        public var maxBatchSize: Int = 64
        /// How long a caller waits for its commit before it gets `.timeout`. Default 2 s.
        public var commitTimeout: Duration = .seconds(2)

        public init(connection: Connection.Configuration) {
            self.connection = connection
        }
    }

    public enum EnqueueError: Error, Sendable, CustomStringConvertible {
        /// The batch was not committed (database down, statement failed).
        case notStored(PostgresError)
        /// No commit within `commitTimeout`; the row may or may not be stored.
        case timeout
        /// The enqueuer is shut down.
        case closed

        public var description: String {
            switch self {
            case .notStored(let error): "callback not stored: \(error)"
            case .timeout: "callback not confirmed within the commit timeout"
            case .closed: "enqueuer is shut down"
            }
        }
    }

    private struct Waiting {
        let callback: RawCallback
        let reply: Reply
    }

    private struct State {
        var waiting: [Waiting] = []
        var closed = false
        var runningWriters = 0
    }

    public let configuration: Configuration
    private let logger: Logger
    private let state = Mutex(State())
    /// Callers still waiting, with their deadlines; one sweeper thread times them out, so
    /// no timer is made per request.
    private let deadlines = Mutex<[(deadline: ContinuousClock.Instant, reply: Reply)]>([])
    private let wakeup = NSCondition()
    private let batchSizes = Recorder(label: "payhook_enqueue_batch_size")
    private let commitTimer = Metrics.Timer(label: "payhook_enqueue_commit_seconds")
    private let failures = Counter(label: "payhook_enqueue_failures_total")

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Starts the writer threads and the deadline sweeper. Connections open lazily and
    /// reopen after a failure.
    public func start() {
        state.withLock { $0.runningWriters += 1 }  // the sweeper counts as one
        // Named from inside: on Linux a name set before `start()` never reaches the OS
        // thread, and one over 15 bytes is refused.
        Thread { [self] in
            Thread.current.name = "payhook-enq-ttl"
            runSweeper()
        }.start()
        for index in 0..<configuration.writers {
            state.withLock { $0.runningWriters += 1 }
            Thread { [self] in
                Thread.current.name = "payhook-enq-\(index)"
                runWriter(index: index)
            }.start()
        }
    }

    /// Stores one callback and returns its id once its transaction has committed.
    public func enqueue(_ callback: RawCallback) async throws(EnqueueError) -> Int64 {
        let reply = Reply()
        // Encoded here, on the caller's thread: the one writer's time is the commit cycle's.
        let waiting = Waiting(callback: callback, reply: reply)
        let accepted: Bool = wakeup.withLock {
            let accepted = state.withLock { state in
                guard !state.closed else { return false }
                state.waiting.append(waiting)
                return true
            }
            if accepted { wakeup.signal() }
            return accepted
        }
        guard accepted else { throw .closed }
        let deadline = ContinuousClock.now + configuration.commitTimeout
        deadlines.withLock { $0.append((deadline, reply)) }
        return try await reply.value()
    }

    /// Stops taking callbacks, lets the writers store what is waiting, and returns when
    /// they have finished.
    public func shutdown() async {
        wakeup.withLock {
            state.withLock { $0.closed = true }
            wakeup.broadcast()
        }
        while state.withLock({ $0.runningWriters }) > 0 {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    private func nextBatch() -> [Waiting]? {
        wakeup.withLock {
            while true {
                let (batch, closed): ([Waiting], Bool) = state.withLock { state in
                    let batch = Array(state.waiting.prefix(configuration.maxBatchSize))
                    state.waiting.removeFirst(batch.count)
                    return (batch, state.closed)
                }
                if !batch.isEmpty { return batch }
                if closed { return nil }
                wakeup.wait()
            }
        }
    }

    private func runSweeper() {
        defer { state.withLock { $0.runningWriters -= 1 } }
        while true {
            Thread.sleep(forTimeInterval: 0.02)
            let now = ContinuousClock.now
            let expired: [Reply] = deadlines.withLock { entries in
                var expired: [Reply] = []
                entries.removeAll { entry in
                    if entry.reply.isResolved { return true }
                    guard entry.deadline <= now else { return false }
                    expired.append(entry.reply)
                    return true
                }
                return expired
            }
            for reply in expired { reply.resolve(.failure(.timeout)) }
            let finished = state.withLock { $0.closed && $0.runningWriters == 1 && $0.waiting.isEmpty }
            if finished && deadlines.withLock({ $0.isEmpty }) { return }
        }
    }

    private func runWriter(index: Int) {
        defer { state.withLock { $0.runningWriters -= 1 } }
        var connection: Connection?
        while let batch = nextBatch() {
            // Callers that already timed out were answered 503: do not store them.
            let live = batch.filter { !$0.reply.isResolved }
            guard !live.isEmpty else { continue }
            let started = ContinuousClock.now
            do {
                if connection == nil || connection?.isConnected == false {
                    connection = try Connection(configuration: configuration.connection)
                }
                let ids = try QueueStore.insert(live.map(\.callback), on: connection!)
                commitTimer.recordInterval(since: started)
                batchSizes.record(live.count)
                for (waiting, id) in zip(live, ids) { waiting.reply.resolve(.success(id)) }
            } catch {
                failures.increment(by: live.count)
                logger.error("enqueue batch not stored", metadata: [
                    "writer": "\(index)", "batch_size": "\(live.count)", "error": "\(error)",
                ])
                for waiting in live { waiting.reply.resolve(.failure(.notStored(error))) }
                if connection?.isConnected != true {
                    connection = nil
                    Thread.sleep(forTimeInterval: 0.05)  // do not spin while the database is away
                }
            }
        }
    }
}

/// A one-shot answer for one caller: the first resolution wins, later ones are ignored.
/// The slot resumes its continuation exactly once, so it need not be a checked one.
final class Reply: Sendable {
    private enum Slot {
        case empty
        case waiting(UnsafeContinuation<Int64, any Error>)
        case resolved(Result<Int64, Enqueuer.EnqueueError>)
    }

    private let slot = Mutex(Slot.empty)

    var isResolved: Bool {
        slot.withLock { if case .resolved = $0 { true } else { false } }
    }

    func resolve(_ result: Result<Int64, Enqueuer.EnqueueError>) {
        let continuation: UnsafeContinuation<Int64, any Error>? = slot.withLock { slot in
            switch slot {
            case .resolved:
                return nil
            case .empty:
                slot = .resolved(result)
                return nil
            case .waiting(let continuation):
                slot = .resolved(result)
                return continuation
            }
        }
        continuation?.resume(with: result.mapError { $0 as any Error })
    }

    func value() async throws(Enqueuer.EnqueueError) -> Int64 {
        do {
            return try await withUnsafeThrowingContinuation { continuation in
                let early: Result<Int64, Enqueuer.EnqueueError>? = slot.withLock { slot in
                    if case .resolved(let result) = slot { return result }
                    slot = .waiting(continuation)
                    return nil
                }
                if let early { continuation.resume(with: early.mapError { $0 as any Error }) }
            }
        } catch let error as Enqueuer.EnqueueError {
            throw error
        } catch {
            throw .closed
        }
    }
}

extension Metrics.Timer {
    func recordInterval(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}
