import CallbackQueue
import Channels
import PayhookCore
public import CoreMetrics
import Synchronization

/// The workers' metrics, made once per label and dimensions and reused. Label and
/// dimension names are the Prometheus series names.
public final class WorkerMetrics: Sendable {
    let factory: any MetricsFactory
    private let counters = Mutex<[String: Counter]>([:])
    private let timers = Mutex<[String: Timer]>([:])
    private let gauges = Mutex<[String: Gauge]>([:])
    private let batchSizes: Recorder
    private let batchRoundTrips: Recorder

    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        batchSizes = Recorder(label: "payhook_worker_claim_batch_size", dimensions: [], aggregate: true, factory: factory)
        batchRoundTrips = Recorder(label: "payhook_worker_batch_round_trips", dimensions: [], aggregate: true,
                                   factory: factory)
    }

    func claimed(_ count: Int) { batchSizes.record(count) }

    /// The database round trips one claimed batch took, from its claim to its commit.
    func batchDone(roundTrips: Int) { batchRoundTrips.record(roundTrips) }

    func processed(channel: String, outcome: String, reason: ReasonCode?) {
        counter("payhook_worker_callbacks_total",
                [("channel", channel), ("outcome", outcome), ("reason", reason?.rawValue ?? "")]).increment()
    }

    /// An order moved by a verified notify alone, without asking the channel
    /// (`cross_check: when_unverified`).
    func unqueried(channel: String) {
        counter("payhook_worker_unqueried_total", [("channel", channel)]).increment()
    }

    func conflict(channel: String, reason: ReasonCode) {
        counter("payhook_order_conflicts_total", [("channel", channel), ("reason", reason.rawValue)]).increment()
    }

    /// A stored row that does not read back; such callbacks go to the dead letters.
    func corruptRow(channel: String) {
        counter("payhook_worker_corrupt_rows_total", [("channel", channel)]).increment()
    }

    func reconciliation(channel: String, answer: QueryAnswer?) {
        let result = switch answer {
        case .success(.found(let order))?: "\(order.status)"
        case .success(.notFound)?: "not_found"
        case .failure?: "error"
        case nil: "unknown_channel"
        }
        counter("payhook_reconcile_queries_total", [("channel", channel), ("result", result)]).increment()
    }

    func databaseError() { counter("payhook_worker_database_errors_total", []).increment() }

    func stage(_ name: String, since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        let nanoseconds = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
        timer("payhook_worker_stage_seconds", [("stage", name)]).recordNanoseconds(nanoseconds)
    }

    func queue(_ depth: QueueStatus.Depth) {
        gauge("payhook_queue_depth", [("state", "pending")]).record(depth.pending)
        gauge("payhook_queue_depth", [("state", "processing")]).record(depth.processing)
        gauge("payhook_queue_depth", [("state", "dead")]).record(depth.dead)
        gauge("payhook_queue_oldest_due_seconds", []).record(depth.oldestDueSeconds ?? 0)
    }

    func maintained(_ report: QueueMaintenance.Report) {
        counter("payhook_queue_partitions_created_total", []).increment(by: report.created.count)
        counter("payhook_queue_partitions_dropped_total", []).increment(by: report.dropped.count)
        counter("payhook_retention_carried_total", []).increment(by: Int(report.carried))
        if report.error != nil { counter("payhook_queue_maintenance_errors_total", []).increment() }
        gauge("payhook_retention_held_partitions", []).record(report.held.count)
    }

    func storage(_ storage: QueueStorage) {
        for table in storage.tableBytes {
            gauge("payhook_queue_table_bytes", [("table", table.table)]).record(table.totalBytes)
            gauge("payhook_queue_index_bytes", [("table", table.table)]).record(table.indexBytes)
        }
        gauge("payhook_queue_partitions", []).record(storage.partitions.filter { !$0.isDefault }.count)
        if let run = storage.lastRun {
            gauge("payhook_retention_last_run_timestamp_seconds", []).record(run.ranAtSeconds)
        }
    }

    private func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        Self.cached(counters, label, dimensions) { Counter(label: label, dimensions: dimensions, factory: factory) }
    }

    private func timer(_ label: String, _ dimensions: [(String, String)]) -> Timer {
        Self.cached(timers, label, dimensions) { Timer(label: label, dimensions: dimensions, factory: factory) }
    }

    private func gauge(_ label: String, _ dimensions: [(String, String)]) -> Gauge {
        Self.cached(gauges, label, dimensions) { Gauge(label: label, dimensions: dimensions, factory: factory) }
    }

    private static func cached<Metric>(_ cache: borrowing Mutex<[String: Metric]>, _ label: String,
                                       _ dimensions: [(String, String)], make: () -> Metric) -> Metric {
        let key = label + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        return cache.withLock { cache in
            if let existing = cache[key] { return existing }
            let made = make()
            cache[key] = made
            return made
        }
    }
}
