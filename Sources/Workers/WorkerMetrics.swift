import Channels
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

    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        batchSizes = Recorder(label: "payhook_worker_claim_batch_size", dimensions: [], aggregate: true, factory: factory)
    }

    func claimed(_ count: Int) { batchSizes.record(count) }

    func processed(channel: String, outcome: String, reason: String?) {
        counter("payhook_worker_callbacks_total",
                [("channel", channel), ("outcome", outcome), ("reason", reason ?? "")]).increment()
    }

    func conflict(channel: String, reason: String) {
        counter("payhook_order_conflicts_total", [("channel", channel), ("reason", reason)]).increment()
    }

    func reconciliation(channel: String, answer: Result<OrderQueryResult, QueryError>?) {
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

    func queue(pending: Int64, processing: Int64, dead: Int64, oldestDueSeconds: Double) {
        gauge("payhook_queue_depth", [("state", "pending")]).record(pending)
        gauge("payhook_queue_depth", [("state", "processing")]).record(processing)
        gauge("payhook_queue_depth", [("state", "dead")]).record(dead)
        gauge("payhook_queue_oldest_due_seconds", []).record(oldestDueSeconds)
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
