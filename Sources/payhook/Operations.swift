import ArgumentParser
import CallbackQueue
import Foundation
import Orders
import PayhookConfig
import Postgres

struct DeadLetterQueue: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq", abstract: "Callbacks whose retry budget ran out: list them, replay them.",
        subcommands: [List.self, Replay.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List dead callbacks, oldest first.")

        @OptionGroup var options: GlobalOptions
        @Option(help: "Only this channel id.") var channel: String?
        @Option(help: "At most this many.") var limit = 100

        func run() throws {
            let configuration = try options.load()
            let connection = try Connection(configuration.database.url)
            let entries = try DeadLetters.list(limit: limit, channel: channel, on: connection)
            if entries.isEmpty {
                print("no dead callbacks")
                return
            }
            print("id          channel          attempts  reason              out_trade_no          last error")
            for entry in entries {
                print([
                    String(entry.callbackID).padded(11), entry.channel.padded(16), String(entry.attempts).padded(9),
                    (entry.reason ?? "-").padded(19), (entry.outTradeNo ?? "-").padded(21), entry.lastError ?? "-",
                ].joined(separator: " "))
            }
        }
    }

    struct Replay: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put dead callbacks back in the queue with a fresh retry budget (recorded as replayed).")

        @OptionGroup var options: GlobalOptions
        @Argument(help: "Callback ids.") var ids: [Int64]

        func validate() throws {
            guard !ids.isEmpty else { throw ValidationError("name at least one callback id") }
        }

        func run() throws {
            let configuration = try options.load()
            let connection = try Connection(configuration.database.url)
            let user = ProcessInfo.processInfo.environment["USER"] ?? "operator"
            let replayed = try DeadLetters.replay(ids, operatorName: "dlq replay by \(user)", on: connection)
            print("replayed \(replayed.count) of \(ids.count): \(replayed.map(String.init).joined(separator: " "))")
            let skipped = Set(ids).subtracting(replayed).sorted()
            if !skipped.isEmpty {
                print("not dead, left alone: \(skipped.map(String.init).joined(separator: " "))")
                throw ExitCode.failure
            }
        }
    }
}

struct OrdersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orders", abstract: "The site's orders as Payhook sees them.", subcommands: [Show.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "An order by out_trade_no or channel trade number, with its events.")

        @OptionGroup var options: GlobalOptions
        @Argument(help: "out_trade_no or channel trade number.") var id: String

        func run() throws {
            let configuration = try options.load()
            let connection = try Connection(configuration.database.url)
            guard let order = try OrderLookup.find(id, on: connection) else {
                print("no order \(id)")
                throw ExitCode.failure
            }
            let time = ISO8601DateFormatter()
            print("order           \(order.outTradeNo)")
            print("channel         \(order.channel)")
            print("channel trade   \(order.channelTradeNo ?? "-")")
            print("amount          \(order.amountMinor) minor units \(order.currency)")
            print("status          \(order.status)")
            print("created         \(time.string(from: order.createdAt))")
            print("paid            \(order.paidAt.map(time.string(from:)) ?? "-")")
            print("events:")
            if order.events.isEmpty { print("  (none)") }
            for event in order.events {
                let move = "\(event.fromStatus ?? "-") -> \(event.toStatus ?? "-")"
                print("  \(time.string(from: event.at))  \(event.kind.padded(10)) \(event.source.padded(9)) "
                    + "\(move.padded(20)) \(event.flagged ? "FLAGGED " : "")"
                    + "callback \(event.callbackID.map(String.init) ?? "-")  \(event.detail ?? "")")
            }
        }
    }
}

extension String {
    func padded(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
