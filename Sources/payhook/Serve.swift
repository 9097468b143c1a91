import ArgumentParser
import Logging
import PayhookConfig
import Receiver
import ServiceLifecycle

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the receiver: store each callback, acknowledge only after commit.")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let configuration = try options.load()
        let logger = Logger(label: "payhook.receiver")
        let registry = Services.bootstrapMetrics()
        let notifier = SystemdNotifier()
        // systemd hears READY=1 once both listeners are bound.
        let ready = StartupGate(parts: Services.hasSiteAPI(configuration) ? ["receiver", "api"] : ["receiver"],
                                status: "receiving callbacks", notifier: notifier, logger: logger)
        let api: [any Service] = try Services.siteAPI(configuration, logger: logger, onListening: ready.report("api"))
            .map { [$0] } ?? []
        try await Services.run(try Services.receiver(configuration, registry: registry, logger: logger,
                                                     onListening: ready.report("receiver")) + api,
                               notifier: notifier, logger: logger)
    }
}

struct Work: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the workers: verify, cross-check and apply stored callbacks; reconcile stale orders.")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let configuration = try options.load()
        let logger = Logger(label: "payhook.worker")
        let registry = Services.bootstrapMetrics()
        let notifier = SystemdNotifier()
        let metrics = configuration.workerMetricsListen
        // systemd hears READY=1 once every worker thread has its connection (and the metrics listener is bound).
        let ready = StartupGate(parts: metrics == nil ? ["workers"] : ["workers", "metrics"],
                                status: "working", notifier: notifier, logger: logger)
        var services: [any Service] = [WorkerService(pool: try Services.workers(configuration, logger: logger),
                                                     onConnected: ready.report("workers"))]
        if let delivery = try Services.delivery(configuration, logger: logger) { services.append(delivery) }
        if let (host, port) = metrics {
            services.append(Receiver.operationsApplication(host: host, port: port, registry: registry, logger: logger,
                                                           onListening: ready.report("metrics")))
        }
        try await Services.run(services, notifier: notifier, logger: logger)
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the receiver and the workers in one process (small installs, the quick start).")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let configuration = try options.load()
        let logger = Logger(label: "payhook")
        let registry = Services.bootstrapMetrics()
        let notifier = SystemdNotifier()
        let ready = StartupGate(parts: Services.hasSiteAPI(configuration) ? ["receiver", "api", "workers"]
                                                                           : ["receiver", "workers"],
                                status: "receiving and working", notifier: notifier, logger: logger)
        // Workers first, so they stop last: the receiver stops taking callbacks before them.
        let workers = WorkerService(pool: try Services.workers(configuration, logger: logger),
                                    onConnected: ready.report("workers"))
        let delivery: [any Service] = try Services.delivery(configuration, logger: logger).map { [$0] } ?? []
        let api: [any Service] = try Services.siteAPI(configuration, logger: logger, onListening: ready.report("api"))
            .map { [$0] } ?? []
        try await Services.run([workers] + delivery
                               + (try Services.receiver(configuration, registry: registry, logger: logger,
                                                        onListening: ready.report("receiver"))) + api,
                               notifier: notifier, logger: logger)
    }
}
