import ArgumentParser
import CallbackQueue
import PayhookConfig
import Postgres
import Workers

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply the database migrations not yet applied and make the queue's partitions ahead (safe from several hosts at once).")

    @OptionGroup var options: GlobalOptions

    func run() throws {
        let configuration = try options.load()
        let connection = try Connection(configuration.database.url)
        let applied = try PayhookSchema.migrate(on: connection)
        print(applied.isEmpty ? "schema is up to date" : "applied: \(applied.joined(separator: ", "))")
        // The partitions ahead, so receivers started next write into them from the first callback.
        if let partitions = configuration.worker.partitions,
           let report = try QueueMaintenance(settings: partitions).ensurePartitions(on: connection) {
            if let error = report.error { print("partitions: \(error); the workers' maintainer retries") }
            if !report.created.isEmpty { print("partitions made: \(report.created.joined(separator: ", "))") }
        }
    }
}
