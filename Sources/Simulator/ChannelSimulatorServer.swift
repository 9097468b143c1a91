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
/// | `POST /alipay/gateway.do` | Alipay's gateway: `alipay.trade.query`, `alipay.trade.precreate` (qr), `alipay.trade.close`; page and wap pay as below |
/// | `GET /alipay/gateway.do?…` | the page and wap cashier for `pay_url` (every parameter in the query): the order, Pay and Cancel |
/// | `POST /alipay/gateway.do?…` | the same cashier for the auto-submitted form (protocol parameters in the query, `biz_content` in the body) |
/// | `POST /alipay/_cashier/pay` | the cashier's Pay (form `out_trade_no`): paid, notify sent, 303 to `return_url` with the signed sync-return parameters (no return_url: a "paid" page) |
/// | `POST /alipay/_cashier/cancel` | the cashier's Cancel: stays unpaid; a page linking back to `return_url` |
/// | `GET /alipay/_qr/{code}` | a precreate's `qr_code`: the buyer's phone having scanned it (the trade now exists), with Pay and Cancel |
/// | `POST /wechatpay/v3/pay/transactions/{native,jsapi,app,h5}` | WeChat Pay v3 prepay: `code_url`, `prepay_id` or `h5_url` |
/// | `POST /wechatpay/v3/pay/transactions/out-trade-no/{no}/close` | WeChat Pay v3 close (204) |
/// | `GET /wechatpay/v3/pay/transactions/out-trade-no/{no}?mchid=…` | WeChat Pay v3 order query |
/// | `GET /wechatpay/_phone?code_url=…` / `?prepay_id=…` / `?ticket=…[&redirect_url=…]` | the buyer's phone (native scanned, jsapi or app, the h5_url), with Pay |
/// | `POST /wechatpay/_phone/pay` | the phone's Pay (form `out_trade_no`, `redirect_url`): paid, notify sent, 303 to `redirect_url` if given |
/// | `POST /points/api/v2/deducts` | the points partner's deduct (protocol version 2) |
/// | `GET /points/api/v1/orders/{no}?partner_id=…` | the points partner's order query |
/// | `POST /_sim/orders[?prepare=1]` | control: add orders to the books (JSON list of ``SimulatedOrderRecord``); `prepare=1` signs their answers before answering |
/// | `GET /_sim/stats` | control: query and call counts per channel |
/// | `POST /_sim/pay` | control: `{"channel":…,"out_trade_no":…}` pays as the buyer would (notify sent); answers `{"status":"paid","return_url":…}` (Alipay page and wap: the signed return URL) |
/// | `GET /_sim/trades/{channel}/{out_trade_no}` | control: the trade as the channel holds it, with its notify counts (JSON) |
/// | `POST /_sim/notify-faults` | control: `{"never_sent_rate":…,"sent_twice_rate":…,"attempts":…,"backoff_ms":…}` sets the defaults; with `"channel"`, `"out_trade_no"` and `"faults":["never_sent","sent_twice","normal"]` scripts one order's next notifies |
/// | `POST /_sim/call-faults` | control: `{"error_rate":…,"timeout_rate":…,"latency_ms":…,"error_status":…}` for creation and close calls; with `"channel"`, `"out_trade_no"` and `"steps":["http_error:500","timeout","lost_answer","latency_ms:200","normal"]` scripts one order's next calls |
/// | `POST /_sim/points/outcomes` | control: `{"user_id":…,"outcome":"paid"\|"failed"\|"processing"}`: how that member's next deducts end |
/// | `POST /_sim/alipay/rotate-cert` | control (certificate mode): Alipay reissues its certificate (same key); answers `{"alipay_cert_sn":…}`, served by `alipay.open.app.alipaycert.download` |
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
    /// The certificates it serves HTTPS with; nil when it serves plain HTTP.
    public let tls: SimulatorTLS?
    private let server: BoundServer

    /// `https://host:port` (`http://` without TLS), the base URL for
    /// ``SimulatedChannels/configurations(baseURL:queryTimeout:)``.
    public var baseURL: String {
        let scheme = tls == nil ? "http" : "https"
        return host.contains(":") ? "\(scheme)://[\(host)]:\(port)" : "\(scheme)://\(host):\(port)"
    }

    private init(simulator: ChannelSimulator, host: String, tls: SimulatorTLS?, server: BoundServer) {
        self.simulator = simulator
        self.host = host
        self.tls = tls
        self.server = server
    }

    /// Starts serving on `host:port` (port 0: an ephemeral port), over HTTPS with `tls`'s
    /// server certificate when given, and returns once the socket is bound; throws if it
    /// cannot bind.
    public static func start(_ simulator: ChannelSimulator, host: String = "127.0.0.1", port: Int = 0,
                             tls: SimulatorTLS? = nil,
                             logger: Logger = Logger(label: "payhook.sim")) async throws -> ChannelSimulatorServer {
        let responder = CallbackResponder<BasicRequestContext> { request, _ in
            try await Self.respond(to: request, simulator: simulator)
        }
        let server = try await BoundServer.start(responder, host: host, port: port, name: "the simulator's server",
                                                 tls: try tls?.serverConfiguration(), logger: logger)
        let started = ChannelSimulatorServer(simulator: simulator, host: host, tls: tls, server: server)
        simulator.linkBaseURL = started.baseURL
        return started
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
        // HTTPTypes keeps Host as the authority; the channel sides do not read it, the links to buyer pages do.
        var headers = request.headers.map { HeaderField(name: $0.name.rawName, value: $0.value) }
        if let authority = request.head.authority { headers.append(HeaderField(name: "Host", value: authority)) }
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
            let calls = SimulatedChannels.channelIDs.map { "\"\($0)\":\(simulator.callCount(channel: $0))" }
            return json(#"{"queries":{\#(counts.joined(separator: ","))},"calls":{\#(calls.joined(separator: ","))},"signatures":\#(simulator.signatureCount)}"#)
        case (.post, "/_sim/pay"):
            guard let body = try await jsonBody(request), let channel = body["channel"]?.stringValue,
                let outTradeNo = body["out_trade_no"]?.stringValue
            else { return json(#"{"error":"body must be {\"channel\":…,\"out_trade_no\":…}"}"#, status: .badRequest) }
            do {
                let payment = try simulator.pay(channel: channel, outTradeNo: outTradeNo)
                var members: [JSONValue.Member] = [
                    .init(key: "channel", value: .string(channel)), .init(key: "out_trade_no", value: .string(outTradeNo)),
                    .init(key: "status", value: .string("paid")),
                ]
                if let url = payment.returnURL { members.append(.init(key: "return_url", value: .string(url))) }
                return json(JSONValue.object(members).serialized())
            } catch {
                let text = JSONValue.object(["error": .string(error.description)]).serialized()
                return json(text, status: error == .noSuchTrade ? .notFound : .conflict)
            }
        case (.get, _) where path.hasPrefix("/_sim/trades/"):
            let parts = path.dropFirst("/_sim/trades/".count).split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2, let outTradeNo = Bytes.utf8String(FormEncoding.percentDecode(Array(parts[1].utf8)) ?? []),
                let text = simulator.tradeJSON(channel: parts[0], outTradeNo: outTradeNo)
            else { return json(#"{"error":"no such trade"}"#, status: .notFound) }
            return json(text)
        case (.post, "/_sim/notify-faults"):
            guard let body = try await jsonBody(request) else { return json(#"{"error":"body must be a JSON object"}"#, status: .badRequest) }
            if let channel = body["channel"]?.stringValue, let outTradeNo = body["out_trade_no"]?.stringValue {
                guard case .array(let items) = body["faults"] ?? .null else {
                    return json(#"{"error":"faults must be a list"}"#, status: .badRequest)
                }
                var faults: [NotifyFault] = []
                for item in items {
                    switch item.stringValue {
                    case "never_sent": faults.append(.neverSent)
                    case "sent_twice": faults.append(.sentTwice)
                    case "normal": faults.append(.normal)
                    default: return json(#"{"error":"faults are never_sent, sent_twice or normal"}"#, status: .badRequest)
                    }
                }
                simulator.scriptNotifies(channel: channel, outTradeNo: outTradeNo, faults)
                return json(#"{"scripted":\#(faults.count)}"#)
            }
            var defaults = simulator.defaultNotifyBehaviour
            guard let never = fraction(body["never_sent_rate"], fallback: defaults.neverSentRate),
                let twice = fraction(body["sent_twice_rate"], fallback: defaults.sentTwiceRate), never + twice <= 1
            else { return json(#"{"error":"rates are fractions from 0 to 1 adding up to at most 1"}"#, status: .badRequest) }
            defaults.neverSentRate = never
            defaults.sentTwiceRate = twice
            if let attempts = body["attempts"]?.int64Value { defaults.attempts = Int(max(1, min(attempts, 20))) }
            if let backoff = body["backoff_ms"]?.int64Value { defaults.backoff = .milliseconds(max(0, backoff)) }
            simulator.defaultNotifyBehaviour = defaults
            return json(#"{"never_sent_rate":\#(never),"sent_twice_rate":\#(twice),"attempts":\#(defaults.attempts)}"#)
        case (.post, "/_sim/call-faults"):
            guard let body = try await jsonBody(request) else { return json(#"{"error":"body must be a JSON object"}"#, status: .badRequest) }
            if let channel = body["channel"]?.stringValue, let outTradeNo = body["out_trade_no"]?.stringValue {
                guard case .array(let items) = body["steps"] ?? .null else {
                    return json(#"{"error":"steps must be a list"}"#, status: .badRequest)
                }
                var steps: [CallBehaviour] = []
                for item in items {
                    guard let step = item.stringValue.flatMap(callBehaviour) else {
                        return json(#"{"error":"steps are normal, timeout, lost_answer, http_error:STATUS or latency_ms:N"}"#, status: .badRequest)
                    }
                    steps.append(step)
                }
                simulator.scriptCalls(channel: channel, outTradeNo: outTradeNo, steps)
                return json(#"{"scripted":\#(steps.count)}"#)
            }
            var defaults = simulator.defaultCallBehaviour
            guard let errors = fraction(body["error_rate"], fallback: defaults.errorRate),
                let timeouts = fraction(body["timeout_rate"], fallback: defaults.timeoutRate), errors + timeouts <= 1
            else { return json(#"{"error":"rates are fractions from 0 to 1 adding up to at most 1"}"#, status: .badRequest) }
            defaults.errorRate = errors
            defaults.timeoutRate = timeouts
            if let latency = body["latency_ms"]?.int64Value { defaults.latency = .milliseconds(max(0, latency)) }
            if let status = body["error_status"]?.int64Value, (500...599).contains(status) { defaults.errorStatus = Int(status) }
            simulator.defaultCallBehaviour = defaults
            return json(#"{"error_rate":\#(errors),"timeout_rate":\#(timeouts)}"#)
        case (.post, "/_sim/points/outcomes"):
            guard let body = try await jsonBody(request), let userID = body["user_id"]?.stringValue,
                let outcome = body["outcome"]?.stringValue.flatMap(DeductOutcome.init(rawValue:))
            else { return json(#"{"error":"body must be {\"user_id\":…,\"outcome\":\"paid\"|\"failed\"|\"processing\"}"}"#, status: .badRequest) }
            simulator.setDeductOutcome(userID: userID, outcome)
            return json(JSONValue.object(["user_id": .string(userID), "outcome": .string(outcome.rawValue)]).serialized())
        case (.post, "/_sim/alipay/rotate-cert"):
            guard let sn = try? simulator.rotateAlipayCertificate() else {
                return json(#"{"error":"alipay is not in certificate mode (payhook sim channels --alipay-cert-mode)"}"#, status: .conflict)
            }
            return json(JSONValue.object(["alipay_cert_sn": .string(sn)]).serialized())
        default:
            return json(#"{"error":"no such control route"}"#, status: .notFound)
        }
    }

    /// The request's JSON object body; nil when it is not one.
    private static func jsonBody(_ request: Request) async throws -> JSONValue? {
        let body = try await request.body.collect(upTo: 1 << 20)
        guard let value = try? JSONValue.parse(Array(buffer: body)), case .object = value else { return nil }
        return value
    }

    /// A rate given as a JSON number from 0 to 1; `fallback` when absent, nil when out of range.
    private static func fraction(_ value: JSONValue?, fallback: Double) -> Double? {
        guard let value else { return fallback }
        guard case .number(let text) = value, let rate = Double(text), (0...1).contains(rate) else { return nil }
        return rate
    }

    /// `normal`, `timeout`, `lost_answer`, `http_error:STATUS`, `latency_ms:N`.
    private static func callBehaviour(_ text: String) -> CallBehaviour? {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        switch (parts.first, parts.count == 2 ? Int(parts[1]) : nil) {
        case ("normal", nil): return .normal
        case ("timeout", nil): return .timeout
        case ("lost_answer", nil): return .lostAnswer
        case ("http_error", let status?) where (400...599).contains(status): return .httpError(status)
        case ("latency_ms", let delay?) where delay >= 0: return .latency(.milliseconds(delay))
        default: return nil
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
