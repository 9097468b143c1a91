public import CallbackQueue
import Foundation
public import Postgres

/// How a worker pool runs. Built from `payhook.yaml`'s `worker:`, `retry:` and `reconcile:`.
public struct WorkerConfiguration: Sendable {
    public var connection: Connection.Configuration
    /// Threads, each with its own connection. Default 4.
    public var threads = 4
    /// Most callbacks claimed at once. Default 64.
    public var batchSize = 64
    /// How long a claim holds a callback. Default 30 s.
    public var leaseSeconds = 30.0
    /// Longest wait for a NOTIFY before claiming anyway. Default 500 ms.
    public var pollInterval: Duration = .milliseconds(500)
    /// Backoff for transient failures and the attempt budget. Default `RetryPolicy()`.
    public var retry = RetryPolicy()
    /// Attempts for a callback whose order does not exist (yet). Default 5.
    public var unknownOrderAttempts = 5
    /// At most one reconciliation query per order per this. Default 600 s.
    public var reconcileEverySeconds = 600
    /// Each channel's `cross_check`, by channel id; a channel not named is `.always`.
    /// Default empty (every channel `.always`).
    public var crossCheck: [String: CrossCheck] = [:]
    /// The stale-order sweeper; nil runs none (for installs that reconcile elsewhere).
    /// Default `Sweeper()`.
    public var sweeper: Sweeper? = Sweeper()
    /// The queue's partitions and retention, kept by the pool's maintainer thread; nil runs
    /// none. Default `PartitionSettings()`.
    public var partitions: PartitionSettings? = PartitionSettings()
    /// Prefix of `locked_by`; the thread number is appended. Default `host:pid`.
    public var workerName = WorkerConfiguration.defaultWorkerName()

    public struct Sweeper: Sendable {
        /// An order is first queried this long after creation. Default 600 s.
        public var afterSeconds = 600
        /// Orders older than this are left alone. Default 72 h.
        public var maxAgeSeconds = 72 * 3600
        /// Orders per sweep. Default 100.
        public var batchSize = 100
        /// Time between sweeps. Default 30 s.
        public var interval: Duration = .seconds(30)

        public init() {}
    }

    public init(connection: Connection.Configuration) {
        self.connection = connection
    }

    public static func defaultWorkerName() -> String {
        var name = [CChar](repeating: 0, count: 256)
        let host = gethostname(&name, name.count) == 0
            ? String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "host"
        return "\(host):\(getpid())"
    }
}
