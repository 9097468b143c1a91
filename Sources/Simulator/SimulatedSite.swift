import Foundation
import Hummingbird
import HTTPTypes
public import Logging
import NIOCore
import Synchronization
public import Webhooks

/// The site's application as `payhook sim site` plays it: receives Payhook's webhooks,
/// checks each signature and timestamp as a careful site does, deduplicates by
/// `webhook-id`, and can fail on a schedule.
///
/// | route | what |
/// | --- | --- |
/// | `POST /site/webhooks` | the endpoint Payhook delivers to |
/// | `GET /site/events` | control: each distinct event received (JSON) and the counts |
public final class SimulatedSite: Sendable {
    /// How the endpoint misbehaves.
    public struct Faults: Sendable {
        /// Fraction of deliveries answered 503 (after the signature check).
        public var failRate = 0.0
        /// Milliseconds before every answer.
        public var slowMilliseconds = 0
        /// Answer 503 to everything for this long after starting ("down").
        public var downSeconds = 0.0

        public init() {}
    }

    /// One distinct event, as the site recorded it.
    public struct Event: Sendable, Codable, Equatable {
        public let id: String
        public let type: String
        public let outTradeNo: String?
        /// Deliveries of this id that were accepted (more than one: a redelivery, deduplicated).
        public var deliveries: Int

        enum CodingKeys: String, CodingKey {
            case id, type, outTradeNo = "out_trade_no", deliveries
        }
    }

    public struct Tally: Sendable, Codable, Equatable {
        public var events: [Event]
        public var accepted: Int
        public var duplicates: Int
        public var refusedSignatures: Int
        public var failedOnPurpose: Int

        enum CodingKeys: String, CodingKey {
            case events, accepted, duplicates, refusedSignatures = "refused_signatures", failedOnPurpose = "failed_on_purpose"
        }
    }

    let signer: WebhookSigner
    let faults: Faults
    let startedAt = Date()
    private let state = Mutex<(order: [String], events: [String: Event], tally: Tally)>(
        ([], [:], Tally(events: [], accepted: 0, duplicates: 0, refusedSignatures: 0, failedOnPurpose: 0)))

    public init(signer: WebhookSigner, faults: Faults = Faults()) {
        self.signer = signer
        self.faults = faults
    }

    public var tally: Tally {
        state.withLock { state in
            var tally = state.tally
            tally.events = state.order.compactMap { state.events[$0] }
            return tally
        }
    }

    /// What one delivery gets: 204 when accepted (a repeat too), 400 for a bad signature,
    /// 503 when failing on purpose.
    func receive(id: String?, timestamp: String?, signature: String?, body: [UInt8]) -> Int {
        guard let id, let timestamp, let signature, let seconds = Int64(timestamp),
              abs(Date().timeIntervalSince1970 - Double(seconds)) <= 300,
              Self.matches(signature, signer.signature(id: id, timestamp: seconds, body: body)) else {
            state.withLock { $0.tally.refusedSignatures += 1 }
            return 400
        }
        if Date().timeIntervalSince(startedAt) < faults.downSeconds || Double.random(in: 0..<1) < faults.failRate {
            state.withLock { $0.tally.failedOnPurpose += 1 }
            return 503
        }
        let payload = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
        let type = payload?["type"] as? String ?? "?"
        let outTradeNo = (payload?["data"] as? [String: Any])?["out_trade_no"] as? String
        state.withLock { state in
            state.tally.accepted += 1
            if state.events[id] == nil {
                state.order.append(id)
                state.events[id] = Event(id: id, type: type, outTradeNo: outTradeNo, deliveries: 1)
            } else {
                state.events[id]!.deliveries += 1
                state.tally.duplicates += 1
            }
        }
        return 204
    }

    /// Whether any `v1,` signature sent equals the expected one (each compared in constant time).
    static func matches(_ sent: String, _ expected: String) -> Bool {
        let expectedSignatures = expected.split(separator: " ").map { Array($0.utf8) }
        var found = false
        for candidate in sent.split(separator: " ").map({ Array($0.utf8) }) {
            for wanted in expectedSignatures where candidate.count == wanted.count {
                var difference: UInt8 = 0
                for index in candidate.indices { difference |= candidate[index] ^ wanted[index] }
                if difference == 0 { found = true }
            }
        }
        return found
    }

    /// Serves the site until the returned server is stopped.
    public func start(host: String = "127.0.0.1", port: Int = 0,
                      logger: Logger = Logger(label: "payhook.sim.site")) async throws -> SimulatedSiteServer {
        let router = Router()
        router.post("/site/webhooks") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            if self.faults.slowMilliseconds > 0 { try await Task.sleep(for: .milliseconds(self.faults.slowMilliseconds)) }
            let status = self.receive(
                id: request.headers[HTTPField.Name("webhook-id")!], timestamp: request.headers[HTTPField.Name("webhook-timestamp")!],
                signature: request.headers[HTTPField.Name("webhook-signature")!], body: Array(buffer: body))
            return Response(status: .init(code: status))
        }
        router.get("/site/events") { _, _ -> Response in
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return Response(status: .ok, headers: [.contentType: "application/json"],
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: try encoder.encode(self.tally))))
        }
        let server = try await BoundServer.start(router.buildResponder(), host: host, port: port,
                                                 name: "the site's server", logger: logger)
        return SimulatedSiteServer(host: host, server: server)
    }
}

public final class SimulatedSiteServer: Sendable {
    public let host: String
    public var port: Int { server.port }
    private let server: BoundServer

    init(host: String, server: BoundServer) {
        self.host = host
        self.server = server
    }

    /// The URL Payhook delivers to.
    public var webhookURL: String { "http://\(host.contains(":") ? "[\(host)]" : host):\(port)/site/webhooks" }

    public func stop() async {
        await server.stop()
    }

    public func wait() async throws {
        try await server.wait()
    }
}
