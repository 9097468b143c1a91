import ArgumentParser
import Foundation
import PayhookConfig
import Postgres
import Webhooks

struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "Order events for the site's application: list them, replay their webhooks.",
        subcommands: [List.self, Replay.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Events newest first, one line per endpoint delivery.")

        @OptionGroup var options: GlobalOptions
        @Option(help: "Only this order (out_trade_no).") var order: String?
        @Option(help: "Only deliveries in this state (pending, processing, delivered, dead).") var state: String?
        @Option(help: "At most this many lines.") var limit = 100

        func validate() throws {
            if let state, !["pending", "processing", "delivered", "dead"].contains(state) {
                throw ValidationError("--state must be pending, processing, delivered or dead")
            }
        }

        func run() throws {
            let configuration = try options.load()
            let connection = try Connection(configuration.database.url)
            let listed = try DeliveryStore.list(outTradeNo: order, state: state, limit: limit, on: connection)
            if listed.isEmpty {
                print("no events")
                return
            }
            print("event_id                              kind            out_trade_no          endpoint      state       attempts  last")
            for line in listed {
                let last = [line.lastStatus.map { "HTTP \($0)" }, line.lastError].compactMap { $0 }.joined(separator: " ")
                print([
                    line.eventID.padded(37), line.kind.padded(15), line.outTradeNo.padded(21),
                    (line.endpointID ?? "-").padded(13), (line.state ?? "-").padded(11),
                    (line.attempts.map(String.init) ?? "-").padded(9), last.isEmpty ? "-" : String(last.prefix(60)),
                ].joined(separator: " "))
            }
        }
    }

    struct Replay: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send events again, as new attempts with the same event id (webhook-id).",
            discussion: "Name event ids, or --endpoint with --since to replay what one endpoint got since then.")

        @OptionGroup var options: GlobalOptions
        @Argument(help: "Event ids (evt_...).") var ids: [String] = []
        @Option(help: "Replay to this endpoint every event since --since.") var endpoint: String?
        @Option(help: "ISO 8601 time, e.g. 2026-12-01T00:00:00Z (with --endpoint).") var since: String?

        func validate() throws {
            switch (ids.isEmpty, endpoint, since) {
            case (false, nil, nil): break
            case (true, _?, let since?):
                guard ISO8601DateFormatter().date(from: since) != nil else {
                    throw ValidationError("--since must be an ISO 8601 time such as 2026-12-01T00:00:00Z")
                }
            default: throw ValidationError("name event ids, or give --endpoint and --since")
            }
        }

        func run() throws {
            let configuration = try options.load()
            let connection = try Connection(configuration.database.url)
            if let endpoint, let since, let date = ISO8601DateFormatter().date(from: since) {
                let count = try DeliveryStore.replay(endpointID: endpoint, since: date, on: connection)
                print("queued \(count) deliveries to \(endpoint)")
            } else {
                let count = try DeliveryStore.replay(eventIDs: ids, on: connection)
                print("queued \(count) deliveries of \(ids.count) events")
                if count == 0 { throw ExitCode.failure }
            }
        }
    }
}

struct WebhooksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webhooks", abstract: "The site's webhook endpoints.", subcommands: [Test.self, Enable.self])

    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send a signed test event (kind webhook.test) to an endpoint and print its answer.")

        @OptionGroup var options: GlobalOptions
        @Argument(help: "Endpoint id.") var endpoint: String

        func run() async throws {
            let configuration = try options.load()
            guard let settings = configuration.webhooks.first(where: { $0.id == endpoint }) else {
                throw ValidationError("no endpoint \(endpoint) in webhooks:")
            }
            let (id, sent) = try await Deliverer.sendTestEvent(to: try settings.load())
            if let status = sent.status {
                print("\(endpoint): HTTP \(status) for \(id)\(sent.excerpt.map { $0.isEmpty ? "" : ": " + $0.prefix(200) } ?? "")")
                if !(200..<300).contains(status) { throw ExitCode.failure }
            } else {
                print("\(endpoint): no answer: \(sent.error ?? "unknown")")
                throw ExitCode.failure
            }
        }
    }

    struct Enable: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Enable a disabled endpoint; its waiting deliveries resume where they stopped.")

        @OptionGroup var options: GlobalOptions
        @Argument(help: "Endpoint id.") var endpoint: String

        func run() throws {
            let configuration = try options.load()
            let connection = try Connection(configuration.database.url)
            guard try DeliveryStore.enable(endpointID: endpoint, on: connection) else {
                print("no endpoint \(endpoint) in the database (it is added when a worker starts with it configured)")
                throw ExitCode.failure
            }
            print("enabled \(endpoint)")
        }
    }
}
