public import Foundation
public import Postgres

/// One endpoint of the site's application, from `payhook.yaml`'s `webhooks:`.
public struct WebhookEndpoint: Sendable, Equatable {
    public var id: String
    public var url: URL
    public var signer: WebhookSigner
    /// The event kinds it wants (`order.paid`, ...).
    public var kinds: [String]
    /// PEM roots to trust instead of the system's, for an endpoint with a private CA.
    public var caFile: String?
    /// No answer within this is a failed attempt. Default 15 s.
    public var timeout: Duration = .seconds(15)

    public init(id: String, url: URL, signer: WebhookSigner, kinds: [String], caFile: String? = nil,
                timeout: Duration = .seconds(15)) {
        self.id = id
        self.url = url
        self.signer = signer
        self.kinds = kinds
        self.caFile = caFile
        self.timeout = timeout
    }
}

/// How the delivery threads run. Built from `payhook.yaml`'s `webhooks:` and `webhook_delivery:`.
public struct DeliveryConfiguration: Sendable {
    public var connection: Connection.Configuration
    public var endpoints: [WebhookEndpoint] = []
    /// Delivery threads, each with its own connection (in the worker processes, beside the
    /// callback threads). Default 1.
    public var threads = 1
    /// Requests in flight to one endpoint from one thread; a slow endpoint holds only these.
    /// Default 64.
    public var maxInFlightPerEndpoint = 64
    /// The waits between attempts: the first attempt is immediate, then these (about Svix's
    /// schedule), each with ±20% jitter; after the last one the delivery is dead.
    /// Default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
    public var retrySchedule = DeliverySchedule()
    /// An endpoint that has failed every attempt for this long is disabled. Default 5 days.
    public var disableAfterFailing: Duration = .seconds(5 * 86_400)
    /// How long a claim holds a delivery; nil: twice the longest endpoint timeout plus 10 s,
    /// at least 30 s. A worker killed mid-request is replaced after this.
    public var leaseSeconds: Double?
    /// Longest wait for a NOTIFY or a finished request before claiming anyway. Default 500 ms.
    public var pollInterval: Duration = .milliseconds(500)
    /// Prefix of `locked_by`; the thread number is appended. Default `host:pid`.
    public var workerName: String
    /// Retention of delivered events (`retention:`); nil keeps every row. Default nil.
    public var retention: DeliveryRetention.Settings?

    public init(connection: Connection.Configuration, workerName: String) {
        self.connection = connection
        self.workerName = workerName
    }

    /// The lease in use: `leaseSeconds`, else derived from the endpoints' timeouts.
    public var effectiveLeaseSeconds: Double {
        if let leaseSeconds { return leaseSeconds }
        let longest = endpoints.map { Double($0.timeout.components.seconds) + Double($0.timeout.components.attoseconds) / 1e18 }
            .max() ?? 15
        return max(30, 2 * longest + 10)
    }
}

/// When to try a delivery again, and what an answer means. Pure.
public struct DeliverySchedule: Sendable, Equatable {
    /// Seconds to wait after failed attempt 1, 2, ...; the attempt after the last is dead.
    public var waits: [Double]
    /// The fraction of each wait drawn at random either way. Default 0.2.
    public var jitter: Double

    public init(waits: [Double] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000], jitter: Double = 0.2) {
        self.waits = waits
        self.jitter = jitter
    }

    /// Attempts in all, the first included.
    public var maxAttempts: Int { waits.count + 1 }

    /// The wait after failed attempt number `attempt` (1-based), or nil: the delivery is dead.
    public func wait(afterFailedAttempt attempt: Int, using random: inout some RandomNumberGenerator) -> Double? {
        guard attempt >= 1, attempt <= waits.count else { return nil }
        let base = waits[attempt - 1]
        let spread = base * jitter
        return spread > 0 ? Double.random(in: (base - spread)...(base + spread), using: &random) : base
    }

    /// What an attempt's answer means: `2xx` delivered; `410 Gone` disables the endpoint;
    /// anything else (a redirect included: none is followed), or no answer, is a failure.
    public static func verdict(status: Int?) -> Verdict {
        guard let status else { return .failed }
        switch status {
        case 200..<300: return .delivered
        case 410: return .gone
        default: return .failed
        }
    }

    public enum Verdict: Sendable, Equatable {
        case delivered, gone, failed
    }
}
