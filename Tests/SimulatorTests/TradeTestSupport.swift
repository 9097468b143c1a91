import AsyncHTTPClient
import ChannelClients
import Channels
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import PayhookCore
import Simulator
import Synchronization
import Testing

/// A client that shows redirects instead of following them (the cashier's 303 is under test).
let noRedirects = HTTPClient(eventLoopGroupProvider: .singleton,
                             configuration: HTTPClient.Configuration(redirectConfiguration: .disallow))

/// An answer as the test reads it.
struct Answer {
    var status: Int
    var headers: [HeaderField]
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }
    /// The `code` member of a JSON answer (WeChat Pay and points errors).
    var code: String? { (try? JSONValue.parse(body))?["code"]?.stringValue }
    func header(_ name: String) -> String? { headers.first(named: name) }
}

func send(_ method: HTTPMethod, _ url: String, headers: [HeaderField] = [], body: [UInt8]? = nil) async throws -> Answer {
    var request = HTTPClientRequest(url: url)
    request.method = method
    for field in headers { request.headers.add(name: field.name, value: field.value) }
    if let body { request.body = .bytes(body) }
    let response = try await noRedirects.execute(request, timeout: .seconds(10))
    let received = try await response.body.collect(upTo: 1 << 20)
    return Answer(status: Int(response.status.code), headers: response.headers.map { HeaderField(name: $0.name, value: $0.value) },
                  body: Array(buffer: received))
}

/// One request the merchant's side received.
struct Arrival: Sendable {
    var path: String
    var headers: [HeaderField]
    var body: [UInt8]
}

/// The merchant's notify endpoint, for the simulator to deliver to: records every request and
/// acknowledges in each channel's format (`/notify/alipay`, `/notify/wechatpay`, `/notify/points`),
/// after refusing the first `refusals` deliveries.
final class NotifyInbox: Sendable {
    private let server: BoundServer
    private let box: InboxState

    var baseURL: String { "http://127.0.0.1:\(server.port)" }
    var arrivals: [Arrival] { box.state.withLock { $0.arrivals } }
    func arrivals(_ channel: String) -> [Arrival] { arrivals.filter { $0.path == "/notify/\(channel)" } }
    func refuse(next count: Int) { box.state.withLock { $0.refusals = count } }

    private init(server: BoundServer, box: InboxState) {
        self.server = server
        self.box = box
    }

    static func start() async throws -> NotifyInbox {
        let box = InboxState()
        let responder = CallbackResponder<BasicRequestContext> { request, _ in
            let body = try await request.body.collect(upTo: 1 << 20)
            let arrival = Arrival(path: request.uri.path, headers: request.headers.map { HeaderField(name: $0.name.rawName, value: $0.value) },
                                  body: Array(buffer: body))
            let refused = box.record(arrival)
            if refused { return Response(status: .internalServerError, body: ResponseBody(byteBuffer: ByteBuffer(string: "fail"))) }
            let text = switch request.uri.path {
            case "/notify/alipay": "success"
            case "/notify/points": #"{"code":"SUCCESS"}"#
            default: ""
            }
            return Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }
        let server = try await BoundServer.start(responder, host: "127.0.0.1", port: 0, name: "the notify inbox")
        return NotifyInbox(server: server, box: box)
    }

    func stop() async { await server.stop() }
}

/// The inbox's state shared with its responder.
final class InboxState: Sendable {
    let state = Mutex<(arrivals: [Arrival], refusals: Int)>(([], 0))

    /// Records the arrival; true when it is to be refused.
    func record(_ arrival: Arrival) -> Bool {
        state.withLock { state in
            state.arrivals.append(arrival)
            guard state.refusals > 0 else { return false }
            state.refusals -= 1
            return true
        }
    }
}

/// The simulator, the merchant's inbox and the real adapters, for one test.
struct TradeRig {
    let live: LiveSimulator
    let inbox: NotifyInbox

    static func start() async throws -> TradeRig {
        let live = try await LiveSimulator.start()
        // Short backoff: retries are part of what is tested.
        live.simulator.defaultNotifyBehaviour = DefaultNotifyBehaviour(attempts: 3, backoff: .milliseconds(50))
        return TradeRig(live: live, inbox: try await NotifyInbox.start())
    }

    var channels: SimulatedChannels { live.simulator.channels }
    var base: String { live.server.baseURL }
    func notifyURL(_ channel: String) -> String { inbox.baseURL + "/notify/\(channel)" }

    func configuration(_ channel: String) -> ChannelConfiguration { channels.configuration(channel, baseURL: base)! }

    var alipayAdapter: AlipayAdapter {
        guard case .alipay(let configuration) = configuration("alipay") else { preconditionFailure() }
        return AlipayAdapter(configuration: configuration)
    }

    var wechatPayAdapter: WeChatPayAdapter {
        guard case .wechatPay(let configuration) = configuration("wechatpay") else { preconditionFailure() }
        return WeChatPayAdapter(configuration: configuration)
    }

    var pointsAdapter: PointsAdapter {
        guard case .points(let configuration) = configuration("points") else { preconditionFailure() }
        return PointsAdapter(configuration: configuration)
    }

    /// Verifies a notify the inbox received with the channel's real adapter.
    func verify(_ arrival: Arrival, channel: String) throws -> PaymentNotification {
        let raw = RawCallback(channel: channel, kind: .notify, method: "POST", path: arrival.path, headers: arrival.headers,
                              body: arrival.body, sourceIP: "127.0.0.1")
        switch channel {
        case "alipay": return try alipayAdapter.verify(raw)
        case "wechatpay": return try wechatPayAdapter.verify(raw)
        default: return try pointsAdapter.verify(raw)
        }
    }

    func query(_ channel: String, _ outTradeNo: String) async throws -> OrderQueryResult {
        try await live.adapter(channel).queryOrder(outTradeNo: outTradeNo)
    }

    func stop() async {
        await live.server.stop()
        await inbox.stop()
    }

    // MARK: Alipay requests, signed here with the merchant app's key

    /// Every parameter of an Alipay request with its `sign`, as the merchant's SDK makes it.
    func alipayParameters(method: String, biz: String, notifyURL: String? = nil, returnURL: String? = nil,
                          key: RSAPrivateKey? = nil) -> [FormEncoding.Pair] {
        var fields: [(String, String)] = [
            ("app_id", channels.alipayAppID), ("method", method), ("format", "JSON"), ("charset", "utf-8"),
            ("sign_type", "RSA2"), ("timestamp", Timestamps.formatAlipay(Date())), ("version", "1.0"),
        ]
        if let notifyURL { fields.append(("notify_url", notifyURL)) }
        if let returnURL { fields.append(("return_url", returnURL)) }
        fields.append(("biz_content", biz))
        var pairs = fields.map { FormEncoding.Pair(key: $0.0, value: Array($0.1.utf8)) }
        let content = AlipaySignature.signContent(pairs, excludingSignType: false)!
        let signature = (key ?? channels.alipayAppKey).signSHA256(content)
        pairs.append(.init(key: "sign", value: Array(AlipaySignature.base64(signature).utf8)))
        return pairs
    }

    /// A server-to-server gateway call (precreate, close), form-encoded.
    func alipayCall(_ pairs: [FormEncoding.Pair]) async throws -> Answer {
        try await send(.POST, SimulatedChannels.alipayGatewayURL(baseURL: base),
                       headers: [HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded;charset=utf-8")],
                       body: FormEncoding.encode(pairs))
    }

    /// The answer's node, its Alipay signature verified over the node's raw text.
    func alipayNode(_ answer: Answer, _ node: String) throws -> JSONValue {
        let text = answer.text
        let start = try #require(text.range(of: "{\"\(node)\":"))
        let end = try #require(text.range(of: ",\"sign\":\"", options: .backwards))
        let inner = String(text[start.upperBound..<end.lowerBound])
        let sign = String(text[end.upperBound...].dropLast(2))
        let signature = try #require(AlipaySignature.decodeBase64(sign))
        #expect(channels.alipayKey.publicKey.isValidSHA256Signature(signature, for: Array(inner.utf8)), "\(node) signature")
        return try JSONValue.parse(Array(inner.utf8))
    }

    // MARK: WeChat Pay requests

    func wechatPayCall(_ target: String, body: [UInt8], key: RSAPrivateKey? = nil) async throws -> Answer {
        let timestamp = String(Int(Date().timeIntervalSince1970))
        let nonce = Nonce.random(32)
        let message = SignedMessage.request(method: "POST", target: target, timestamp: timestamp, nonce: nonce, body: body)
        let signature = AlipaySignature.base64((key ?? channels.wechatMerchantKey).signSHA256(message))
        let authorization = "WECHATPAY2-SHA256-RSA2048 mchid=\"\(channels.wechatMchID)\",nonce_str=\"\(nonce)\",signature=\"\(signature)\","
            + "timestamp=\"\(timestamp)\",serial_no=\"\(channels.wechatMerchantSerialNo)\""
        return try await send(.POST, SimulatedChannels.wechatPayAPIBaseURL(baseURL: base) + target, headers: [
            HeaderField(name: "Authorization", value: authorization), HeaderField(name: "Content-Type", value: "application/json"),
            HeaderField(name: "Accept", value: "application/json"),
        ], body: body)
    }

    /// Checks the answer's `Wechatpay-*` signature with the platform key.
    func verifyWeChatPayAnswer(_ answer: Answer) throws {
        try WeChatPaySignature.verify(headers: answer.headers, body: answer.body,
                                      keys: [channels.wechatPlatformSerial: channels.wechatPlatformKey.publicKey],
                                      now: Date(), maxSkewSeconds: 300)
    }

    // MARK: Points requests

    func pointsCall(_ path: String, body: [UInt8], secret: String? = nil) async throws -> Answer {
        let target = "/points/api" + path
        let headers = PointsSignature.headers(
            message: PointsSignature.requestMessage(method: "POST", target: target, body: body), partnerID: channels.pointsPartnerID,
            secret: SharedSecret(text: secret ?? channels.pointsSecret), timestamp: Date(), nonce: Nonce.random(24))
        return try await send(.POST, base + target, headers: headers + [HeaderField(name: "Content-Type", value: "application/json")],
                              body: body)
    }

    func verifyPointsAnswer(_ answer: Answer) throws {
        try PointsSignature.verify(headers: answer.headers, message: PointsSignature.bodyMessage(answer.body),
                                   partnerID: channels.pointsPartnerID, secret: SharedSecret(text: channels.pointsSecret),
                                   now: Date(), maxSkewSeconds: 300)
    }

    // MARK: Control

    func control(_ path: String, _ json: String) async throws -> Answer {
        try await send(.POST, base + path, headers: [HeaderField(name: "Content-Type", value: "application/json")], body: Array(json.utf8))
    }

    func trade(_ channel: String, _ outTradeNo: String) async throws -> JSONValue {
        let answer = try await send(.GET, base + "/_sim/trades/\(channel)/\(outTradeNo)")
        #expect(answer.status == 200)
        return try JSONValue.parse(answer.body)
    }
}

/// The form fields of a query string.
func queryFields(_ query: String) -> [String: String] {
    var fields: [String: String] = [:]
    for pair in FormEncoding.parse(query) ?? [] { fields[pair.key] = String(decoding: pair.value, as: UTF8.self) }
    return fields
}
