import CallbackQueue
public import ChannelClients
import Channels
import Dispatch
import Foundation
public import Logging
import Orders
import PayhookCore
import Postgres
public import SiteOrders
import Synchronization

/// `payhook work`: worker threads, each with its own connection, woken by NOTIFY and by a
/// poll timer; plus the reconciliation sweeper and the queue gauges.
public final class WorkerPool: Sendable {
    public let configuration: WorkerConfiguration
    let clients: [String: ChannelClient]
    let metrics: WorkerMetrics
    let logger: Logger
    /// Closes orders past `expires_at` through the channel (the sweeper's second task).
    let expiry: OrderDesk?
    private let threads: ConnectionThreads
    /// Wake-ups for idle worker threads: one listener turns NOTIFYs into single wake-ups,
    /// so a callback wakes one thread, not every thread for an empty claim.
    private let wakeups = DispatchSemaphore(value: 0)
    /// Wake-ups signalled and not yet taken, kept at most `threads`.
    private let pendingWakeups = Atomic<Int>(0)
    /// Threads yet to open their first connection, and what runs when the last one has.
    private let unconnected = Atomic<Int>(0)
    private let connected = Mutex<(@Sendable () -> Void)?>(nil)

    public init(configuration: WorkerConfiguration, clients: [ChannelClient], expiry: OrderDesk? = nil,
                metrics: WorkerMetrics = WorkerMetrics(), logger: Logger) {
        self.configuration = configuration
        self.expiry = expiry
        self.clients = Dictionary(clients.map { ($0.channelID, $0) }, uniquingKeysWith: { first, _ in first })
        self.metrics = metrics
        self.logger = logger
        threads = ConnectionThreads(configuration: configuration.connection)
    }

    /// Starts every thread; `onConnected` runs once each of them has opened its first
    /// connection (systemd's `READY=1` for `payhook work` waits for it).
    public func start(onConnected: @escaping @Sendable () -> Void = {}) {
        var count = 2 + configuration.threads  // the listener and the gauges, besides the workers
        if configuration.sweeper != nil { count += 1 }
        if configuration.partitions != nil { count += 1 }
        unconnected.store(count, ordering: .relaxed)
        connected.withLock { $0 = onConnected }
        spawn("payhook-listen") { self.runListener() }
        for index in 0..<configuration.threads {
            spawn("payhook-work-\(index)") { self.runWorker(index: index) }
        }
        if let sweeper = configuration.sweeper {
            spawn("payhook-sweeper") { self.runSweeper(sweeper) }
        }
        if let partitions = configuration.partitions {
            spawn("payhook-maintainer") { self.runMaintainer(QueueMaintenance(settings: partitions)) }
        }
        spawn("payhook-gauges") { self.runGauges() }
        logger.info("workers started", metadata: [
            "worker": "\(configuration.workerName)", "threads": "\(configuration.threads)",
            "channels": "\(clients.keys.sorted().joined(separator: ","))",
        ])
    }

    /// Stops claiming; each thread finishes the batch in hand, then this returns.
    public func shutdown() async {
        await threads.stop()
        logger.info("workers stopped", metadata: ["worker": "\(configuration.workerName)"])
    }

    var isStopping: Bool { threads.isStopping }

    // Workers are background work: in `payhook run` the receiver's threads, which a channel
    // is waiting on, come first when the cores are busy.
    private func spawn(_ name: String, _ body: @escaping @Sendable () -> Void) {
        threads.spawn(name, niceness: 5, body)
    }

    private func pause(_ duration: Duration) { threads.pause(duration) }

    static func seconds(_ duration: Duration) -> Double { ConnectionThreads.seconds(duration) }

    /// Runs `body` with this thread's connection until shutdown, reconnecting after failures.
    private func withConnection(role: String, setUp: (Connection) throws(PostgresError) -> Void = { _ in },
                                _ body: (Connection) throws(PostgresError) -> Void) {
        var first = true
        threads.withConnection(setUp: { connection throws(PostgresError) in
            try setUp(connection)
            if first {
                first = false
                if unconnected.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                    connected.withLock { $0.take() }?()
                }
            }
        }, onFailure: { error in
            metrics.databaseError()
            logger.error("database failure; reconnecting", metadata: [
                "worker": "\(configuration.workerName)", "role": "\(role)", "error": "\(error)",
            ])
        }, body)
    }

    private func runWorker(index: Int) {
        let store = QueueStore(workerID: "\(configuration.workerName)/\(index)", leaseSeconds: configuration.leaseSeconds)
        var workerLogger = logger
        workerLogger[metadataKey: "worker"] = "\(store.workerID)"
        let processor = BatchProcessor(
            store: store, clients: clients,
            rules: OutcomeRules(retry: configuration.retry, unknownOrderAttempts: configuration.unknownOrderAttempts),
            reconcileEverySeconds: configuration.reconcileEverySeconds, crossCheck: configuration.crossCheck,
            metrics: metrics, logger: workerLogger)
        withConnection(role: "worker") { connection throws(PostgresError) in
            let roundTripsBefore = connection.roundTrips
            let claimed = try store.claim(limit: configuration.batchSize, on: connection)
            guard !claimed.isEmpty else {
                // Idle: a NOTIFY (through the listener) or the poll interval, whichever first.
                if wakeups.wait(timeout: .now() + Self.seconds(configuration.pollInterval)) == .success {
                    pendingWakeups.subtract(1, ordering: .relaxed)
                }
                return
            }
            // A full batch means more may be waiting: call in an idle colleague.
            if claimed.count == configuration.batchSize { wake() }
            metrics.claimed(claimed.count)
            try processor.process(claimed, on: connection)
            metrics.batchDone(roundTrips: connection.roundTrips - roundTripsBefore)
        }
    }

    /// LISTENs for new callbacks and wakes one idle worker per burst of notifications.
    private func runListener() {
        withConnection(role: "listener", setUp: { connection throws(PostgresError) in
            try connection.listen(QueueStore.notifyChannel)
        }) { connection throws(PostgresError) in
            if !(try connection.waitForNotifications(timeout: configuration.pollInterval)).isEmpty { wake() }
        }
    }

    private func wake() {
        // Bounded, so a burst while every thread is busy leaves at most one empty claim each.
        if pendingWakeups.add(1, ordering: .relaxed).newValue <= configuration.threads {
            wakeups.signal()
        } else {
            pendingWakeups.subtract(1, ordering: .relaxed)
        }
    }

    private func runSweeper(_ sweeper: WorkerConfiguration.Sweeper) {
        let reconciler = Reconciler(clients: clients, metrics: metrics, logger: logger)
        withConnection(role: "sweeper") { connection throws(PostgresError) in
            let swept = try reconciler.sweep(
                limit: sweeper.batchSize, afterSeconds: sweeper.afterSeconds,
                everySeconds: configuration.reconcileEverySeconds, maxAgeSeconds: sweeper.maxAgeSeconds, on: connection)
            // Expired orders close through the same path as the site's close (channel close, then query).
            var expired = 0
            if let expiry {
                let every = configuration.reconcileEverySeconds
                expired = concurrentlyAwait(1) { _ in
                    (try? await expiry.closeExpired(limit: sweeper.batchSize, everySeconds: every)) ?? 0
                }[0]
            }
            // Refunds whose outcome is unknown are asked about the same way: never left processing.
            var settling = 0
            if let expiry {
                let every = configuration.reconcileEverySeconds
                settling = concurrentlyAwait(1) { _ in
                    (try? await expiry.settleProcessingRefunds(limit: sweeper.batchSize, everySeconds: every)) ?? 0
                }[0]
            }
            // A full batch means more are waiting: sweep again at once.
            if swept < sweeper.batchSize, expired < sweeper.batchSize, settling < sweeper.batchSize { pause(sweeper.interval) }
        }
    }

    /// Partitions ahead and retention; every pool runs one, the advisory lock lets one act.
    private func runMaintainer(_ maintenance: QueueMaintenance) {
        withConnection(role: "maintainer") { connection throws(PostgresError) in
            if let report = try maintenance.run(on: connection) {
                metrics.maintained(report)
                if report.changedAnything {
                    logger.info("queue partitions maintained", metadata: [
                        "created": "\(report.created.joined(separator: ","))",
                        "dropped": "\(report.dropped.joined(separator: ","))",
                        "carried": "\(report.carried)", "default_pruned": "\(report.defaultPruned)",
                    ])
                }
                if !report.held.isEmpty {
                    logger.notice("retention held back by a backlog of unfinished callbacks", metadata: [
                        "partitions": "\(report.held.map(\.suffix).joined(separator: ","))",
                        "callbacks": "\(report.held.reduce(0) { $0 + $1.unfinished })",
                    ])
                }
                if let error = report.error {
                    logger.warning("queue maintenance incomplete; next run retries", metadata: ["error": "\(error)"])
                }
            }
            pause(maintenance.settings.every)
        }
    }

    private func runGauges() {
        withConnection(role: "gauges") { connection throws(PostgresError) in
            metrics.queue(try QueueStatus.depth(on: connection))
            metrics.storage(try QueueStorage.read(countingStates: false, on: connection))
            pause(.seconds(5))
        }
    }
}

/// The sweeper's work: ask the channels about orders still `created` long after creation
/// and apply what they answer through the same path as a callback (source `reconcile`).
struct Reconciler {
    let clients: [String: ChannelClient]
    let metrics: WorkerMetrics
    let logger: Logger

    /// One sweep; returns how many orders were asked about.
    func sweep(limit: Int, afterSeconds: Int, everySeconds: Int, maxAgeSeconds: Int,
               on connection: Connection) throws(PostgresError) -> Int {
        let orders = try OrderStore.claimStaleOrders(
            limit: limit, afterSeconds: afterSeconds, everySeconds: everySeconds, maxAgeSeconds: maxAgeSeconds,
            on: connection)
        guard !orders.isEmpty else { return 0 }
        let answers = QueryRound.ask(orders.map { QueryKey(channel: $0.channel, outTradeNo: $0.outTradeNo) },
                                     clients: clients)
        var items: [ApplyItem] = []
        for order in orders {
            let answer = answers[QueryKey(channel: order.channel, outTradeNo: order.outTradeNo)]
            metrics.reconciliation(channel: order.channel, answer: answer)
            if case .failure(let error)? = answer {
                logger.warning("reconciliation query failed", metadata: [
                    "channel": "\(order.channel)", "out_trade_no": "\(order.outTradeNo)", "error": "\(error)",
                ])
            }
            guard case .success(.found(let stated))? = answer, stated.status.isFinal else { continue }
            items.append(ApplyItem(source: .reconcile, callbackID: nil, evidence: stated,
                                   note: "no callback confirmed it in time"))
        }
        guard !items.isEmpty else { return orders.count }
        let plan = try connection.transaction { connection throws(PostgresError) in
            try OrderStore.apply(items, on: connection)
        }
        for (decision, item) in zip(plan.decisions, items) {
            switch decision {
            case .transition(_, let to)?:
                logger.notice("order reconciled", metadata: [
                    "channel": "\(item.evidence.channel)", "out_trade_no": "\(item.evidence.outTradeNo)",
                    "status": "\(to.rawValue)",
                ])
            case .conflict(let reason, _)?:
                metrics.conflict(channel: item.evidence.channel, reason: reason)
                logger.error("order conflict recorded, order not changed", metadata: [
                    "channel": "\(item.evidence.channel)", "out_trade_no": "\(item.evidence.outTradeNo)",
                    "reason": "\(reason.rawValue)",
                ])
            default:
                break
            }
        }
        return orders.count
    }
}
