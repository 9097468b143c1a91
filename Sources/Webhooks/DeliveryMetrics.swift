public import CoreMetrics
import Synchronization

/// The delivery threads' metrics; label and dimension names are the Prometheus series names.
public final class DeliveryMetrics: Sendable {
    let factory: any MetricsFactory
    private let counters = Mutex<[String: Counter]>([:])
    private let timers = Mutex<[String: Timer]>([:])

    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
    }

    /// One attempt's outcome (`delivered`, `retry`, `dead`, `gone`, `released`, `lease_lost`).
    func attempt(endpoint: String, outcome: String) {
        counter("payhook_webhook_deliveries_total", [("endpoint", endpoint), ("outcome", outcome)]).increment()
    }

    /// From the commit of the event's change to its delivery.
    func delivered(endpoint: String, afterSeconds seconds: Double) {
        cached(timers, "payhook_webhook_delivery_latency_seconds", [("endpoint", endpoint)]) {
            Timer(label: $0, dimensions: $1, preferredDisplayUnit: .seconds, factory: factory)
        }.recordNanoseconds(Int64(max(seconds, 0) * 1e9))
    }

    func endpointDisabled(endpoint: String, reason: String) {
        counter("payhook_webhook_endpoints_disabled_total", [("endpoint", endpoint), ("reason", reason)]).increment()
    }

    func databaseError() { counter("payhook_webhook_database_errors_total", []).increment() }

    /// Rows removed by retention, by table (`events`, `deliveries`, `attempts`).
    func pruned(_ report: DeliveryRetention.Report) {
        for (kind, count) in [("events", report.events), ("deliveries", report.deliveries), ("attempts", report.attempts)] where count > 0 {
            counter("payhook_webhook_pruned_total", [("kind", kind)]).increment(by: count)
        }
    }

    func status(_ status: DeliveryStatus) {
        for endpoint in status.endpoints {
            let dimensions = [("endpoint", endpoint.id)]
            Gauge(label: "payhook_webhook_pending", dimensions: dimensions, factory: factory).record(endpoint.pending)
            Gauge(label: "payhook_webhook_dead", dimensions: dimensions, factory: factory).record(endpoint.dead)
            Gauge(label: "payhook_webhook_oldest_undelivered_seconds", dimensions: dimensions, factory: factory)
                .record(endpoint.oldestUndeliveredSeconds ?? 0)
            Gauge(label: "payhook_webhook_endpoint_disabled", dimensions: dimensions, factory: factory)
                .record(endpoint.disabledReason == nil ? 0 : 1)
        }
    }

    private func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        cached(counters, label, dimensions) { Counter(label: $0, dimensions: $1, factory: factory) }
    }

    private func cached<Metric>(_ cache: borrowing Mutex<[String: Metric]>, _ label: String,
                                _ dimensions: [(String, String)], make: (String, [(String, String)]) -> Metric) -> Metric {
        let key = ([label] + dimensions.map { "\($0.0)=\($0.1)" }).joined(separator: "\u{1F}")
        return cache.withLock { cache in
            if let metric = cache[key] { return metric }
            let metric = make(label, dimensions)
            cache[key] = metric
            return metric
        }
    }
}
