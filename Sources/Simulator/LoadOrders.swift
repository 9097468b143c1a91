import AsyncHTTPClient
import Channels
import Foundation
import NIOCore
import NIOHTTP1
import PayhookCore

extension LoadPlan {
    /// The member whose points pay the run's points orders.
    static let loadMember = "load-member"

    /// Makes the plan's orders through Payhook's site API, as a site would (Alipay `page`,
    /// WeChat Pay `native`, points `deduct`), `concurrency` requests at a time. The points
    /// member's deducts are set to stay PROCESSING first, so the run's own notifies, not the
    /// deduct's answer, decide those orders, as they decide the others.
    /// `simulatorCAFile` is the simulator's CA when it serves HTTPS (`--tls`).
    public func createOrders(apiURL: String, token: String, simulatorURL: String, simulatorCAFile: String? = nil,
                             concurrency: Int = 32) async throws {
        try await Self.post(SimulatedChannels.trimmed(simulatorURL) + "/_sim/points/outcomes",
                            body: #"{"user_id":"\#(Self.loadMember)","outcome":"processing"}"#, token: nil, accept: [200],
                            client: try SimulatorTLS.client(trusting: simulatorCAFile))
        let url = SimulatedChannels.trimmed(apiURL) + "/v1/orders"
        let bodies = orders.map(Self.creationBody)
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            while next < min(concurrency, bodies.count) {
                let body = bodies[next]
                group.addTask { try await Self.post(url, body: body, token: token, accept: [201, 202]) }
                next += 1
            }
            while try await group.next() != nil, next < bodies.count {
                let body = bodies[next]
                group.addTask { try await Self.post(url, body: body, token: token, accept: [201, 202]) }
                next += 1
            }
            try await group.waitForAll()
        }
    }

    static func creationBody(_ order: Order) -> String {
        let scene = switch order.channel {
        case SimulatedChannels.alipayID: "page"
        case SimulatedChannels.wechatPayID: "native"
        default: "deduct"
        }
        var members: [JSONValue.Member] = [
            .init(key: "out_trade_no", value: .string(order.outTradeNo)), .init(key: "channel", value: .string(order.channel)),
            .init(key: "scene", value: .string(scene)),
            .init(key: "amount", value: .string(Money.format(minorUnits: order.book.amountMinor))),
            .init(key: "currency", value: .string(order.book.currency)), .init(key: "subject", value: .string(order.book.subject)),
        ]
        if scene == "deduct" {
            members.append(.init(key: "payer", value: .object([.init(key: "user_id", value: .string(loadMember))])))
        }
        return JSONValue.object(members).serialized()
    }

    private static func post(_ url: String, body: String, token: String?, accept: Set<UInt>,
                             client: HTTPClient = .shared) async throws {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.body = .bytes(Array(body.utf8))
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .seconds(30))
        } catch {
            throw SimulatorError("cannot reach \(url): \(error)")
        }
        let answer = try await response.body.collect(upTo: 1 << 16)
        guard accept.contains(response.status.code) else {
            throw SimulatorError("\(url) answered HTTP \(response.status.code): \(String(buffer: answer).prefix(200))")
        }
    }
}
