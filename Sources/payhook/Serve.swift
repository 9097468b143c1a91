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
        let api: [any Service] = try Services.siteAPI(configuration, logger: logger).map { [$0] } ?? []
        try await Services.run(try Services.receiver(configuration, registry: registry, logger: logger) + api,
                               logger: logger)
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
        var services: [any Service] = [WorkerService(pool: try Services.workers(configuration, logger: logger))]
        if let delivery = try Services.delivery(configuration, logger: logger) { services.append(delivery) }
        if let (host, port) = configuration.workerMetricsListen {
            services.append(Receiver.operationsApplication(host: host, port: port, registry: registry, logger: logger))
        }
        try await Services.run(services, logger: logger)
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
        // Workers first, so they stop last: the receiver stops taking callbacks before them.
        let workers = WorkerService(pool: try Services.workers(configuration, logger: logger))
        let delivery: [any Service] = try Services.delivery(configuration, logger: logger).map { [$0] } ?? []
        let api: [any Service] = try Services.siteAPI(configuration, logger: logger).map { [$0] } ?? []
        try await Services.run([workers] + delivery
                               + (try Services.receiver(configuration, registry: registry, logger: logger)) + api,
                               logger: logger)
    }
}
