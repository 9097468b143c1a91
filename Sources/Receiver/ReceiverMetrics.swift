public import CoreMetrics
import Synchronization

/// The receiver's counters, made once per label and dimensions and reused. Label and
/// dimension names are the Prometheus series names.
public final class ReceiverMetrics: Sendable {
    let factory: any MetricsFactory
    private let counters = Mutex<[String: Counter]>([:])

    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
    }

    func request(channel: String, status: Int) {
        counter("payhook_receiver_requests_total", [("channel", channel), ("status", String(status))]).increment()
    }

    func unavailable(channel: String) {
        counter("payhook_receiver_unavailable_total", [("channel", channel)]).increment()
    }

    func bodyTooLarge(channel: String) {
        counter("payhook_receiver_body_too_large_total", [("channel", channel)]).increment()
    }

    private func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        let key = label + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        return counters.withLock { counters in
            if let existing = counters[key] { return existing }
            let made = Counter(label: label, dimensions: dimensions, factory: factory)
            counters[key] = made
            return made
        }
    }
}
