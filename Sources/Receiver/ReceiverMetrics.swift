public import CoreMetrics
import Synchronization

/// The receiver's counters, made once per label and dimensions and reused. Label and
/// dimension names are the Prometheus series names.
public final class ReceiverMetrics: Sendable {
    let factory: any MetricsFactory
    private let counters = Mutex<[String: Counter]>([:])
    /// Requests by channel and status, the one counter every request touches: keyed
    /// without building a string.
    private let requests = Mutex<[RequestKey: Counter]>([:])

    private struct RequestKey: Hashable {
        let channel: String
        let status: Int
    }

    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
    }

    func request(channel: String, status: Int) {
        let key = RequestKey(channel: channel, status: status)
        let counter = requests.withLock { requests in
            if let existing = requests[key] { return existing }
            let made = Counter(label: "payhook_receiver_requests_total",
                               dimensions: [("channel", channel), ("status", String(status))], factory: factory)
            requests[key] = made
            return made
        }
        counter.increment()
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
