import ArgumentParser
import CallbackQueue
import Foundation
import Orders
import PayhookConfig
import PayhookCore
import Postgres
import SiteOrders
import Logging
import Channels

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

struct OrdersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orders", abstract: "The site's orders: show, create and close them through the channels.",
        subcommands: [Show.self, Create.self, Close.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "An order by out_trade_no or channel trade number, with its events.")

        @OptionGroup var options: GlobalOptions
        @Argument(help: "out_trade_no or channel trade number.") var id: String

        func run() throws {
            let configuration = try options.load()
            let connection = try Connection(configuration.database.url)
            guard let order = try SiteOrderStore.find(id, on: connection) else {
                print("no order \(id)")
                throw ExitCode.failure
            }
            let events = try OrderLookup.events(order.outTradeNo, on: connection)
            let time = ISO8601DateFormatter()
            print("order           \(order.outTradeNo)")
            print("channel         \(order.channel)\(order.scene.map { " (\($0))" } ?? "")")
            print("channel trade   \(order.channelTradeNo ?? "-")")
            print("amount          \(Money.format(minorUnits: order.amountMinor)) \(order.currency)")
            print("status          \(order.status.rawValue)")
            print("created         \(time.string(from: order.createdAt))")
            print("expires         \(order.expiresAt.map(time.string(from:)) ?? "-")")
            print("paid            \(order.paidAt.map(time.string(from:)) ?? "-")")
            print("refunded        \(Money.format(minorUnits: order.refundedMinor)) \(order.currency)")
            for refund in try RefundStore.records([order.outTradeNo], on: connection) {
                print("  refund \(refund.refundNo)  \(Money.format(minorUnits: refund.amountMinor))  \(refund.status.rawValue)"
                    + "  \(refund.channelRefundID ?? "-")")
            }
            print("events:")
            if events.isEmpty { print("  (none)") }
            for event in events {
                let move = "\(event.fromStatus ?? "-") -> \(event.toStatus ?? "-")"
                print("  \(time.string(from: event.at))  \(event.kind.padded(10)) \(event.source.padded(9)) "
                    + "\(move.padded(20)) \(event.flagged ? "FLAGGED " : "")"
                    + "callback \(event.callbackID.map(String.init) ?? "-")  \(event.detail ?? "")")
            }
        }
    }

    /// The same request as `POST /v1/orders`, through the same code; prints the API's JSON answer.
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an order at its channel, as POST /v1/orders does; prints the answer as JSON.")

        @OptionGroup var options: GlobalOptions
        @Option(help: "The channel id.") var channel: String
        @Option(help: "The scene: page, wap, app, qr (Alipay); native, jsapi, app, h5 (WeChat Pay); deduct (points).")
        var scene: String
        @Option(help: "The amount as a decimal string, e.g. 88.88.") var amount: String
        @Option(help: "The subject shown to the buyer.") var subject: String
        @Option(name: .customLong("out-trade-no"), help: "The site's order number (default: Payhook makes one).")
        var outTradeNo: String?
        @Option(help: "Currency (default CNY).") var currency: String?
        @Option(help: "Longer description.") var description: String?
        @Option(name: .customLong("expires-in"), help: "Seconds until the order expires.") var expiresIn: Int?
        @Option(name: .customLong("return-url"), help: "Where the buyer goes after paying.") var returnURL: String?
        @Option(help: "Echoed back by the channel.") var attach: String?
        @Option(help: "WeChat Pay jsapi: the payer's openid.") var openid: String?
        @Option(name: .customLong("client-ip"), help: "WeChat Pay h5: the payer's IP address.") var clientIP: String?
        @Option(name: .customLong("user-id"), help: "Points deduct: the member's id at the partner.") var userID: String?

        func run() async throws {
            let configuration = try options.load()
            guard let desk = try Services.orderDesk(configuration, logger: Logger(label: "payhook.orders"), connections: 1) else {
                throw ConfigError(key: "site.public_base_url", problem: "is required to create orders")
            }
            var members: [JSONValue.Member] = [
                .init(key: "channel", value: .string(channel)), .init(key: "scene", value: .string(scene)),
                .init(key: "amount", value: .string(amount)), .init(key: "subject", value: .string(subject)),
            ]
            func add(_ key: String, _ value: String?) { if let value { members.append(.init(key: key, value: .string(value))) } }
            add("out_trade_no", outTradeNo)
            add("currency", currency)
            add("description", description)
            add("return_url", returnURL)
            add("attach", attach)
            if let expiresIn { members.append(.init(key: "expires_in_seconds", value: .number(String(expiresIn)))) }
            var payer: [JSONValue.Member] = []
            if let openid { payer.append(.init(key: "openid", value: .string(openid))) }
            if let clientIP { payer.append(.init(key: "client_ip", value: .string(clientIP))) }
            if let userID { payer.append(.init(key: "user_id", value: .string(userID))) }
            if !payer.isEmpty { members.append(.init(key: "payer", value: .object(payer))) }
            do {
                let created = try await desk.create(body: Array(JSONValue.object(members).serialized().utf8))
                print(String(decoding: OrderView.created(created), as: UTF8.self), terminator: "")
            } catch {
                FileHandle.standardError.write(Data("payhook: \(error)\n".utf8))
                throw ExitCode.failure
            }
        }
    }

    struct Close: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Close an order at its channel, then query it, as POST /v1/orders/{id}/close does.")

        @OptionGroup var options: GlobalOptions
        @Argument(help: "out_trade_no or channel trade number.") var id: String

        func run() async throws {
            let configuration = try options.load()
            guard let desk = try Services.orderDesk(configuration, logger: Logger(label: "payhook.orders"), connections: 1) else {
                throw ConfigError(key: "site.public_base_url", problem: "is required to close orders")
            }
            do {
                print(String(decoding: OrderView.closed(try await desk.close(id)), as: UTF8.self), terminator: "")
            } catch {
                FileHandle.standardError.write(Data("payhook: \(error)\n".utf8))
                throw ExitCode.failure
            }
        }
    }
}

extension String {
    func padded(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
