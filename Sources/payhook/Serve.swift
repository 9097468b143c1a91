import ArgumentParser
import CallbackQueue
import Hummingbird
import Logging
import Metrics
import PayhookConfig
import Postgres
import Prometheus
import Receiver
import ServiceLifecycle
import UnixSignals

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the receiver: store each callback, acknowledge only after commit.")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let configuration = try options.load()
        let logger = Logger(label: "payhook.receiver")
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        let connection = Connection.Configuration(conninfo: configuration.database.url)
        var enqueueSettings = Enqueuer.Configuration(connection: connection)
        enqueueSettings.writers = configuration.receiver.enqueueWriters
        enqueueSettings.maxBatchSize = configuration.receiver.enqueueBatchSize
        enqueueSettings.commitTimeout = .milliseconds(configuration.receiver.commitTimeoutMilliseconds)
        let enqueuer = Enqueuer(configuration: enqueueSettings, logger: logger)
        let readiness = Readiness(connection: connection)
        let admin = AdminAccess(tokenFile: configuration.admin.tokenFile)
        if !admin.isEnabled {
            logger.warning("admin routes disabled: no token in admin.token_file")
        }
        let receiver = try Receiver(
            configuration: configuration, enqueuer: enqueuer, readiness: readiness, admin: admin,
            adminConnection: try? SerialConnection(configuration: connection, label: "payhook.admin"),
            registry: registry, metrics: ReceiverMetrics(), logger: logger)

        enqueuer.start()
        // Services stop in reverse order: the HTTP server first (in-flight requests finish
        // their commit and answer), then the enqueuer drains.
        let group = ServiceGroup(configuration: .init(
            services: [EnqueuerService(enqueuer: enqueuer), ReadinessService(readiness: readiness),
                       receiver.buildApplication()],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        logger.info("receiver listening", metadata: [
            "address": "\(configuration.receiver.host):\(configuration.receiver.port)",
        ])
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
