import ArgumentParser
import Foundation
import Logging
import PayhookConfig
import Receiver

@main
struct Payhook: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "payhook",
        abstract: "Payment-callback pipeline: receive, verify, cross-check and apply channel callbacks.",
        subcommands: [Migrate.self, Status.self, Serve.self, Work.self, Run.self, DeadLetterQueue.self,
                      OrdersCommand.self, EventsCommand.self, WebhooksCommand.self, Sim.self]
    )

    /// Exit 2 for bad usage or configuration, 1 for any other failure, as the contract says.
    static func main() async {
        // Warnings and errors at most once a second from each place, with a count: a refused
        // request's line would otherwise be thousands a second while the database is away.
        LoggingSystem.bootstrap { RateLimitedLogHandler(wrapping: DeferredMetadataLogHandler(label: $0)) }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as ConfigError {
            FileHandle.standardError.write(Data("payhook: \(error)\n".utf8))
            Foundation.exit(2)
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// The options every subcommand takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Configuration file; environment variables PAYHOOK_* override it.")
    var config: String = "Config/payhook.yaml"

    func load() throws(ConfigError) -> PayhookConfiguration {
        // Without an explicit file the environment alone may configure Payhook.
        let explicit = CommandLine.arguments.contains { $0 == "--config" || $0.hasPrefix("--config=") }
        return try PayhookConfiguration.load(path: config, allowMissingFile: !explicit)
    }
}
