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
        var reason: String? = nil
    }

    /// Requests cut off because they had not arrived whole within `read_timeout_seconds`.
    private let readTimeouts: Counter
    /// Heads over the decoder's limits, answered 431.
    private let oversizeHeads: Counter

    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        readTimeouts = Counter(label: "payhook_receiver_read_timeouts_total", factory: factory)
        oversizeHeads = Counter(label: "payhook_receiver_headers_too_large_total", factory: factory)
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

    /// A request refused before its body was read: `reason` is `address_rate` (its source
    /// address outside `allowed_ips` used up its budget), `channel_rate` (the channel's cap)
    /// or `outside_allowlist` (`enforce_allowed_ips`).
    func refused(channel: String, reason: String) {
        counter("payhook_receiver_refused_total", channel: channel, reason: reason).increment()
    }

    func readTimedOut() {
        readTimeouts.increment()
    }

    func headersTooLarge() {
        oversizeHeads.increment()
    }

    private func counter(_ label: String, channel: String, status: Int? = nil, reason: String? = nil) -> Counter {
        let key = CounterKey(label: label, channel: channel, status: status, reason: reason)
        return counters.withLock { counters in
            if let existing = counters[key] { return existing }
            var dimensions = [("channel", channel)]
            if let status { dimensions.append(("status", String(status))) }
            if let reason { dimensions.append(("reason", reason)) }
            let made = Counter(label: label, dimensions: dimensions, factory: factory)
            counters[key] = made
            return made
        }
    }
}
