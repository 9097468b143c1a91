public import CoreMetrics
import Synchronization

/// The receiver's counters, made once per label and dimensions and reused. Label and
/// dimension names are the Prometheus series names.
public final class ReceiverMetrics: Sendable {
    let factory: any MetricsFactory
    /// Keyed by value, so the counter every request touches is found without building a string.
    private let counters = Mutex<[CounterKey: Counter]>([:])

    private struct CounterKey: Hashable {
        let label: String
        let channel: String
        let status: Int?
    }

    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
    }

    func request(channel: String, status: Int) {
        counter("payhook_receiver_requests_total", channel: channel, status: status).increment()
    }

    func unavailable(channel: String) {
        counter("payhook_receiver_unavailable_total", channel: channel).increment()
    }

    func bodyTooLarge(channel: String) {
        counter("payhook_receiver_body_too_large_total", channel: channel).increment()
    }

    private func counter(_ label: String, channel: String, status: Int? = nil) -> Counter {
        let key = CounterKey(label: label, channel: channel, status: status)
        return counters.withLock { counters in
            if let existing = counters[key] { return existing }
            var dimensions = [("channel", channel)]
            if let status { dimensions.append(("status", String(status))) }
            let made = Counter(label: label, dimensions: dimensions, factory: factory)
            counters[key] = made
            return made
        }
    }
}
