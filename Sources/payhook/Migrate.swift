import ArgumentParser
import PayhookConfig
import Postgres
import Workers

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply the database migrations not yet applied (safe from several hosts at once).")

    @OptionGroup var options: GlobalOptions

    func run() throws {
        let configuration = try options.load()
        let connection = try Connection(configuration.database.url)
        let applied = try PayhookSchema.migrate(on: connection)
        print(applied.isEmpty ? "schema is up to date" : "applied: \(applied.joined(separator: ", "))")
    }
}
