public import CoreMetrics

/// The receiver's counters. Label and dimension names are the Prometheus series names.
public struct ReceiverMetrics: Sendable {
    let factory: any MetricsFactory

    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
    }

    func request(channel: String, status: Int) {
        Counter(label: "payhook_receiver_requests_total",
                dimensions: [("channel", channel), ("status", String(status))], factory: factory).increment()
    }

    func unavailable(channel: String) {
        Counter(label: "payhook_receiver_unavailable_total", dimensions: [("channel", channel)], factory: factory)
            .increment()
    }

    func bodyTooLarge(channel: String) {
        Counter(label: "payhook_receiver_body_too_large_total", dimensions: [("channel", channel)], factory: factory)
            .increment()
    }
}
