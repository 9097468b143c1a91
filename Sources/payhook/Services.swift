import CallbackQueue
import ChannelClients
import Channels
import Foundation
import Hummingbird
import Logging
import Metrics
import PayhookConfig
import Postgres
import Prometheus
import Receiver
import ServiceLifecycle
import SiteAPI
import SiteOrders
import UnixSignals
import Webhooks
import Workers

/// The parts `serve`, `work` and `run` assemble into one ServiceGroup.
enum Services {
    /// Prometheus behind swift-metrics, once per process.
    static func bootstrapMetrics() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }

    /// The receiver and what it needs, in start order: the enqueuer, readiness, HTTP.
    static func receiver(_ configuration: PayhookConfiguration, registry: PrometheusCollectorRegistry,
                         logger: Logger, onListening: @escaping @Sendable () -> Void = {}) throws -> [any Service] {
        // Key files first: a bad one stops the start before anything connects.
        let tls = try configuration.receiverTLS?.serverConfiguration()
        let connection = configuration.enqueuer.connection
        let enqueuer = Enqueuer(configuration: configuration.enqueuer, logger: logger)
        let readiness = Readiness(connection: connection)
        // Browser returns are verified here (for the page only) with the channels' keys.
        let returns = ReturnPages(adapters: try configuration.loadChannels().map { $0.makeAdapter() },
                                  database: SerialConnection(configuration: connection, label: "payhook.returns"),
                                  logger: logger)
        let receiver = Receiver(
            configuration: configuration.receiver, enqueuer: enqueuer, readiness: readiness, returns: returns,
            registry: registry, metrics: ReceiverMetrics(), logger: logger)
        enqueuer.start()
        logger.info("receiver listening", metadata: [
            "address": "\(configuration.receiver.host):\(configuration.receiver.port)", "tls": "\(tls != nil)",
        ])
        // Services stop in reverse order: the HTTP server first (in-flight requests finish
        // their commit and answer), then the enqueuer drains.
        return [EnqueuerService(enqueuer: enqueuer), ReadinessService(readiness: readiness),
                try receiver.buildApplication(tls: tls, onListening: onListening)]
    }

    /// Whether `siteAPI` makes a listener: `api.listen` and `site.public_base_url` both set.
    static func hasSiteAPI(_ configuration: PayhookConfiguration) -> Bool {
        configuration.api != nil && configuration.site != nil
    }

    /// The site API (nil without `api.listen`); it needs the admin token to answer anything.
    static func siteAPI(_ configuration: PayhookConfiguration, logger: Logger,
                        onListening: @escaping @Sendable () -> Void = {}) throws -> (any Service)? {
        guard let api = configuration.api else { return nil }
        let tls = try configuration.apiTLS?.serverConfiguration()
        guard let desk = try orderDesk(configuration, logger: logger) else { return nil }
        let access = AdminAccess(tokenFile: configuration.admin.tokenFile)
        if !access.isEnabled {
            throw ConfigError(key: "admin.token_file", problem: "must name a file holding the token (the site API requires it)")
        }
        logger.info("site API listening", metadata: ["address": "\(api.host):\(api.port)", "tls": "\(tls != nil)"])
        return try SiteAPI(configuration: api, desk: desk, access: access, logger: logger)
            .buildApplication(tls: tls, onListening: onListening)
    }

    /// Orders made and closed through the channels (nil without `site.public_base_url`):
    /// the site API, `payhook orders` and the expiry sweeper share it.
    static func orderDesk(_ configuration: PayhookConfiguration, logger: Logger,
                          connections: Int = 4) throws -> OrderDesk? {
        guard let site = configuration.site else { return nil }
        let clients = try configuration.loadClients(logger: logger)
        let database = SerialConnections(configuration: configuration.enqueuer.connection, count: connections,
                                         label: "payhook.orders")
        return OrderDesk(clients: clients, urls: site, database: database, logger: logger)
    }

    /// The worker pool, its channels' keys loaded (a bad key file is a config error).
    static func workers(_ configuration: PayhookConfiguration, logger: Logger) throws -> WorkerPool {
        let clients = try configuration.loadClients(logger: logger)
        let desk = try orderDesk(configuration, logger: logger, connections: 1)
        return WorkerPool(configuration: configuration.worker, clients: clients, expiry: desk, logger: logger)
    }

    /// The webhook delivery threads, nil when no endpoint is configured. A bad secret or
    /// CA file is a config error naming the endpoint's key.
    static func delivery(_ configuration: PayhookConfiguration, logger: Logger) throws -> DeliveryService? {
        let delivery = try configuration.loadDelivery()
        guard !delivery.endpoints.isEmpty else { return nil }
        do {
            return DeliveryService(deliverer: try Deliverer(configuration: delivery, logger: logger))
        } catch let error as Deliverer.CAFileError {
            let path = configuration.webhooks.first { $0.id == error.endpointID }?.keyPath ?? "webhooks"
            throw ConfigError(key: "\(path).ca_file", problem: "does not read as PEM certificates (\(error.problem))")
        }
    }

    /// Runs `services` until SIGTERM or SIGINT, then stops them in reverse order; systemd
    /// hears `STOPPING=1` as that begins.
    static func run(_ services: [any Service], notifier: SystemdNotifier, logger: Logger) async throws {
        let all = services + [StoppingNotice(notifier: notifier)]
        let group = ServiceGroup(configuration: .init(
            services: all.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// Keeps the enqueuer until shutdown, then lets it store what is waiting.
struct EnqueuerService: Service {
    let enqueuer: Enqueuer

    func run() async throws {
        try? await gracefulShutdown()
        await enqueuer.shutdown()
    }
}

struct ReadinessService: Service {
    let readiness: Readiness

    func run() async throws {
        await cancelWhenGracefulShutdown { await readiness.run() }
    }
}

/// Runs the worker pool until shutdown; each thread then finishes the batch in hand.
struct WorkerService: Service {
    let pool: WorkerPool
    var onConnected: @Sendable () -> Void = {}

    func run() async throws {
        pool.start(onConnected: onConnected)
        try? await gracefulShutdown()
        await pool.shutdown()
    }
}

/// Runs the webhook delivery threads until shutdown; requests in flight are finished first.
struct DeliveryService: Service {
    let deliverer: Deliverer

    func run() async throws {
        deliverer.start()
        try? await gracefulShutdown()
        await deliverer.shutdown()
    }
}
