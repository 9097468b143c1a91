import PayhookCore
import Channels
import Foundation
import Hummingbird
import HTTPTypes
public import Logging
import NIOCore

/// A running HTTP server for a ``ChannelSimulator`` (Hummingbird 2, HTTP/1.1):
///
/// | route | what |
/// | --- | --- |
/// | `POST /alipay/gateway.do` | Alipay's gateway (`alipay.trade.query`) |
/// | `GET /wechatpay/v3/pay/transactions/out-trade-no/{no}?mchid=…` | WeChat Pay v3 order query |
/// | `GET /points/api/v1/orders/{no}?partner_id=…` | the points partner's order query |
/// | `POST /_sim/orders[?prepare=1]` | control: add orders to the books (JSON list of ``SimulatedOrderRecord``); `prepare=1` signs their answers before answering |
/// | `GET /_sim/stats` | control: query counts per channel |
///
/// ```swift
/// let simulator = ChannelSimulator(channels: .generate())
/// let server = try await ChannelSimulatorServer.start(simulator)
/// let configurations = simulator.channels.configurations(baseURL: server.baseURL)
/// …
/// await server.stop()
/// ```
public final class ChannelSimulatorServer: Sendable {
    public let simulator: ChannelSimulator
    public let host: String
    /// The bound port (the ephemeral one when started on port 0).
    public var port: Int { server.port }
    private let server: BoundServer

    /// `http://host:port`, the base URL for ``SimulatedChannels/configurations(baseURL:queryTimeout:)``.
    public var baseURL: String {
        host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)"
    }

    private init(simulator: ChannelSimulator, host: String, server: BoundServer) {
        self.simulator = simulator
        self.host = host
        self.server = server
    }

    /// Starts serving on `host:port` (port 0: an ephemeral port) and returns once the
    /// socket is bound; throws if it cannot bind.
    public static func start(_ simulator: ChannelSimulator, host: String = "127.0.0.1", port: Int = 0,
                             logger: Logger = Logger(label: "payhook.sim")) async throws -> ChannelSimulatorServer {
        let responder = CallbackResponder<BasicRequestContext> { request, _ in
            try await Self.respond(to: request, simulator: simulator)
        }
        let server = try await BoundServer.start(responder, host: host, port: port, name: "the simulator's server",
                                                 logger: logger)
        return ChannelSimulatorServer(simulator: simulator, host: host, server: server)
    }

    /// Lets held requests go, shuts the server down gracefully and waits until it has stopped.
    public func stop() async {
        simulator.releaseHeldRequests()
        await server.stop()
    }

    /// Waits until the server stops (for `payhook sim channels`, which stops it on a signal).
    public func wait() async throws {
        try await server.wait()
    }

    static func respond(to request: Request, simulator: ChannelSimulator) async throws -> Response {
        let path = request.uri.path
        let query = request.uri.query ?? ""
        if path.hasPrefix("/_sim/") {
            return try await control(request, path: path, query: query, simulator: simulator)
        }
        let body = try await request.body.collect(upTo: 1 << 20)
        // HTTPTypes keeps Host as the authority; the channel sides do not read it.
        let headers = request.headers.map { HeaderField(name: $0.name.rawName, value: $0.value) }
        guard let answer = await simulator.respond(method: request.method.rawValue, path: path, query: query,
                                                   headers: headers, body: Array(buffer: body)) else {
            return Response(status: .notFound, headers: [.contentType: "text/plain; charset=utf-8"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: "no simulated channel here\n")))
        }
        var fields = HTTPFields()
        for field in answer.headers {
            if let name = HTTPField.Name(field.name) { fields.append(HTTPField(name: name, value: field.value)) }
        }
        return Response(status: .init(code: answer.status), headers: fields,
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: answer.body)))
    }

    static func control(_ request: Request, path: String, query: String, simulator: ChannelSimulator) async throws -> Response {
        switch (request.method, path) {
        case (.post, "/_sim/orders"):
            let body = try await request.body.collect(upTo: 256 << 20)
            let records: [SimulatedOrderRecord]
            do { records = try JSONDecoder().decode([SimulatedOrderRecord].self, from: Data(Array(buffer: body))) } catch {
                return json(#"{"error":"body must be a JSON list of orders"}"#, status: .badRequest)
            }
            var keys: [(channel: String, outTradeNo: String)] = []
            for record in records {
                guard let order = record.channelOrder else {
                    return json(#"{"error":"unknown status"}"#, status: .badRequest)
                }
                simulator.setOrder(channel: record.channel, order)
                keys.append((record.channel, record.outTradeNo))
            }
            if query.split(separator: "&").contains("prepare=1") { await simulator.prepare(only: keys) }
            return json(#"{"orders":\#(records.count)}"#)
        case (.get, "/_sim/stats"):
            let counts = SimulatedChannels.channelIDs.map { "\"\($0)\":\(simulator.queryCount(channel: $0))" }
            return json(#"{"queries":{\#(counts.joined(separator: ","))},"signatures":\#(simulator.signatureCount)}"#)
        default:
            return json(#"{"error":"no such control route"}"#, status: .notFound)
        }
    }

    private static func json(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: text + "\n")))
    }
}

/// One order for the simulator's books, as `POST /_sim/orders` takes it (snake_case JSON).
public struct SimulatedOrderRecord: Codable, Sendable, Hashable {
    /// The simulated channel id (`alipay`, `wechatpay`, `points`).
    public var channel: String
    public var outTradeNo: String
    public var channelTradeNo: String
    /// `paid`, `pending` or `closed`.
    public var status: String
    public var amountMinor: Int64
    public var currency: String
    /// Unix seconds of the payment, for paid orders.
    public var paidAt: Int64?

    public init(channel: String, order: ChannelOrder) {
        self.channel = channel
        outTradeNo = order.outTradeNo
        channelTradeNo = order.channelTradeNo
        status = switch order.status {
        case .paid: "paid"
        case .closed: "closed"
        case .pending: "pending"
        case .other(let raw): raw
        }
        amountMinor = order.amountMinor
        currency = order.currency
        paidAt = order.paidAt.map { Int64($0.timeIntervalSince1970.rounded(.down)) }
    }

    /// The order as the channel side takes it; nil for an unknown status.
    public var channelOrder: ChannelOrder? {
        let parsed: PaymentStatus
        switch status {
        case "paid": parsed = .paid
        case "closed": parsed = .closed
        case "pending": parsed = .pending
        default: return nil
        }
        return ChannelOrder(outTradeNo: outTradeNo, channelTradeNo: channelTradeNo, status: parsed, amountMinor: amountMinor,
                            currency: currency, paidAt: paidAt.map { Date(timeIntervalSince1970: TimeInterval($0)) })
    }

    enum CodingKeys: String, CodingKey {
        case channel, outTradeNo = "out_trade_no", channelTradeNo = "channel_trade_no", status
        case amountMinor = "amount_minor", currency, paidAt = "paid_at"
    }
}

/// A simulator failure with a plain description (no payload or secrets).
public struct SimulatorError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
