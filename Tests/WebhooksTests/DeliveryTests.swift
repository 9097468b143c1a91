import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Orders
import PayhookCore
import Postgres
import PostgresTestSupport
import Synchronization
import Testing
import Webhooks

/// Deliveries end to end: a real PostgreSQL, the delivery threads, and a local HTTP
/// endpoint that answers as each test scripts it.
@Suite struct DeliveryTests {
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    /// Applies a payment, so the outbox commits an `order.paid` event; returns its id.
    static func pay(_ number: String, on connection: Connection) throws -> String {
        try connection.query("INSERT INTO orders (out_trade_no, channel, amount_minor, currency) VALUES ($1, 'alipay', 100, 'CNY')",
                             [.text(number)])
        _ = try connection.transaction { connection throws(PostgresError) in
            try OrderStore.apply([ApplyItem(source: .callback, callbackID: nil, evidence: OrderEvidence(
                channel: "alipay", outTradeNo: number, channelTradeNo: "T-" + number, status: .paid, amountMinor: 100,
                currency: "CNY", paidAt: Date()))], on: connection)
        }
        return try #require(try OrderOutbox.list(outTradeNo: number, on: connection).first).eventID
    }

    static func endpoint(_ id: String, port: Int, path: String = "/hook", timeout: Duration = .seconds(5),
                         kinds: [String] = ["order.paid", "order.closed", "order.conflict"]) throws -> WebhookEndpoint {
        WebhookEndpoint(id: id, url: URL(string: "http://127.0.0.1:\(port)\(path)")!,
                        signer: try WebhookSigner(secretFile: secret), kinds: kinds, timeout: timeout)
    }

    static func deliverer(_ endpoints: [WebhookEndpoint], database: TestDatabase, waits: [Double] = [0.2, 0.2, 0.2],
                          disableAfterFailing: Duration = .seconds(3600)) throws -> Deliverer {
        var configuration = DeliveryConfiguration(connection: .init(conninfo: database.url), workerName: "test")
        configuration.endpoints = endpoints
        configuration.retrySchedule = DeliverySchedule(waits: waits, jitter: 0)
        configuration.pollInterval = .milliseconds(50)
        configuration.disableAfterFailing = disableAfterFailing
        return try Deliverer(configuration: configuration, logger: Logger(label: "test"))
    }

    /// Waits until `condition` holds (checked every 50 ms), up to `seconds`.
    static func eventually(_ seconds: Double = 15, _ condition: () throws -> Bool) async throws -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if try condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try condition()
    }

    static func deliveries(_ connection: Connection) throws -> [(endpoint: String, state: String, attempts: Int32)] {
        try connection.query("SELECT endpoint_id, state, attempts FROM webhook_deliveries ORDER BY endpoint_id").rows
            .map { row throws(PostgresError) in (try row.decode(0), try row.decode(1), try row.decode(2)) }
    }

    static func attemptOutcomes(_ connection: Connection, endpoint: String = "site") throws -> [String] {
        try connection.query("""
            SELECT a.outcome FROM webhook_attempts AS a JOIN webhook_deliveries AS d ON d.id = a.delivery_id
            WHERE d.endpoint_id = $1 ORDER BY a.id
            """, [.text(endpoint)]).rows.map { row throws(PostgresError) in try row.decode(0) }
    }

    /// A busy thread's turn is one round trip: its answers finished, fenced by the lease of
    /// that attempt, and new deliveries claimed in the same transaction. A worker whose leases
    /// ran out and were taken over gets its late finishes refused and logged, and claims
    /// nothing that another holds.
    @Test func finishAndClaimIsOneRoundTripAndFencedByTheLease() throws {
        let database = try TestDatabase.create()
        let connection = try database.connect()
        try DeliveryStore.syncEndpoints([try Self.endpoint("site", port: 9)], on: connection)
        for index in 0..<3 { _ = try Self.pay("W-F\(index)", on: connection) }
        let late = DeliveryStore(workerID: "late", leaseSeconds: 0.2)
        let other = DeliveryStore(workerID: "other", leaseSeconds: 30)
        let lateConnection = try database.connect()
        let otherConnection = try database.connect()

        let first = try late.claim(room: ["site": 2], on: lateConnection)
        #expect(first.map(\.attempt) == [1, 1])
        Thread.sleep(forTimeInterval: 0.4)
        let (_, takenOver) = try other.finishAndClaim([], disableAfterFailingSeconds: 3600, room: ["site": 5], on: otherConnection)
        #expect(takenOver.count == 3, "the two expired leases and the third, pending one")
        #expect(Set(first.map(\.id)).isSubset(of: takenOver.map(\.id)))
        #expect(takenOver.filter { first.map(\.id).contains($0.id) }.map(\.attempt) == [2, 2])

        func delivered(_ delivery: ClaimedDelivery) -> DeliveryStore.Finish {
            DeliveryStore.Finish(delivery: delivery, startedAt: Date(), outcome: .delivered, statusCode: 200, latencyMilliseconds: 3)
        }
        let trips = lateConnection.roundTrips
        let (refusedLate, claimedLate) = try late.finishAndClaim(first.map(delivered), disableAfterFailingSeconds: 3600,
                                                                 room: ["site": 5], on: lateConnection)
        #expect(lateConnection.roundTrips == trips + 1, "the finish and the claim went in one round trip")
        #expect(refusedLate.refused == Set(first.map(\.id)))
        #expect(claimedLate.isEmpty, "the other worker holds every delivery")
        #expect(try Self.attemptOutcomes(connection) == ["lease_lost", "lease_lost"])
        #expect(try Self.deliveries(connection).map(\.state) == ["processing", "processing", "processing"])

        let (accepted, claimedAgain) = try other.finishAndClaim(takenOver.map(delivered), disableAfterFailingSeconds: 3600,
                                                                room: ["site": 5], on: otherConnection)
        #expect(accepted.refused.isEmpty)
        #expect(claimedAgain.isEmpty)
        #expect(try Self.deliveries(connection).map(\.state) == ["delivered", "delivered", "delivered"])
        let attempts = try connection.query("""
            SELECT a.worker, a.attempt, a.outcome FROM webhook_attempts a ORDER BY a.id
            """).rows.map { row throws(PostgresError) in "\(try row.decode(0, as: String.self)) \(try row.decode(1, as: Int32.self)) \(try row.decode(2, as: String.self))" }
        #expect(attempts.sorted() == ["late 1 lease_lost", "late 1 lease_lost", "other 1 delivered", "other 2 delivered", "other 2 delivered"])
    }

    @Test(.timeLimit(.minutes(1))) func aDeliveryIsSignedAsTheSpecificationSays() async throws {
        let database = try TestDatabase.create()
        let sink = Sink()
        try await sink.application().test(.live) { client in
            let port = try #require(client.port)
            let connection = try database.connect()
            let deliverer = try Self.deliverer([try Self.endpoint("site", port: port)], database: database)
            deliverer.start()
            try #require(try await Self.eventually { try connection.query("SELECT count(*) FROM webhook_endpoints")[0].decode(0, as: Int.self) == 1 })
            let eventID = try Self.pay("W-1", on: connection)
            #expect(try await Self.eventually { sink.received.count == 1 })
            await deliverer.shutdown()

            let received = try #require(sink.received.first)
            #expect(received.id == eventID, "webhook-id is the event id")
            let timestamp = try #require(Int64(received.timestamp))
            #expect(abs(Double(timestamp) - Date().timeIntervalSince1970) < 30)
            // Recomputed here from the specification, not with Payhook's signer.
            let key = SymmetricKey(data: Data(base64Encoded: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")!)
            let mac = HMAC<SHA256>.authenticationCode(for: Array("\(received.id).\(received.timestamp).".utf8) + received.body,
                                                      using: key)
            #expect(received.signature == "v1," + Data(mac).base64EncodedString())
            #expect(received.body == Array(try #require(try OrderOutbox.list(outTradeNo: "W-1", on: connection).first).payload.utf8))
            #expect(try Self.deliveries(connection).map(\.state) == ["delivered"])
            let attempt = try connection.query("SELECT outcome, status_code, latency_ms, response_excerpt FROM webhook_attempts")[0]
            #expect(try attempt.decode(0, as: String.self) == "delivered")
            #expect(try attempt.decode(1, as: Int32.self) == 200)
            #expect(try attempt.decode(2, as: Int32.self) >= 0)
            #expect(try attempt.decode(3, as: String.self) == "ok")
        }
    }

    @Test(.timeLimit(.minutes(1))) func anEndpointDownThenUpGetsItAfterRetries() async throws {
        let database = try TestDatabase.create()
        let sink = Sink(script: [503, 500])
        try await sink.application().test(.live) { client in
            let connection = try database.connect()
            let deliverer = try Self.deliverer([try Self.endpoint("site", port: try #require(client.port))], database: database)
            deliverer.start()
            try #require(try await Self.eventually { try connection.query("SELECT count(*) FROM webhook_endpoints")[0].decode(0, as: Int.self) == 1 })
            let eventID = try Self.pay("W-2", on: connection)
            #expect(try await Self.eventually { try Self.deliveries(connection).map(\.state) == ["delivered"] })
            await deliverer.shutdown()
            #expect(try Self.attemptOutcomes(connection) == ["retry", "retry", "delivered"])
            #expect(sink.received.map(\.id) == [eventID, eventID, eventID], "one event id across the retries")
            let statuses = try connection.query("SELECT status_code FROM webhook_attempts ORDER BY id").rows
                .map { row throws(PostgresError) in try row.decode(0, as: Int32.self) }
            #expect(statuses == [503, 500, 200])
        }
    }

    @Test(.timeLimit(.minutes(1))) func pastTheScheduleItIsDeadAndAReplayDeliversTheSameID() async throws {
        let database = try TestDatabase.create()
        let sink = Sink(script: [500, 500, 500])
        try await sink.application().test(.live) { client in
            let connection = try database.connect()
            let deliverer = try Self.deliverer([try Self.endpoint("site", port: try #require(client.port))], database: database,
                                               waits: [0.1, 0.1])
            deliverer.start()
            try #require(try await Self.eventually { try connection.query("SELECT count(*) FROM webhook_endpoints")[0].decode(0, as: Int.self) == 1 })
            let eventID = try Self.pay("W-3", on: connection)
            #expect(try await Self.eventually { try Self.deliveries(connection).map(\.state) == ["dead"] })
            #expect(try Self.attemptOutcomes(connection) == ["retry", "retry", "dead"])

            #expect(try DeliveryStore.replay(eventIDs: [eventID], on: connection) == 1)
            #expect(try await Self.eventually { try Self.deliveries(connection).map(\.state) == ["delivered"] })
            await deliverer.shutdown()
            #expect(sink.received.map(\.id) == Array(repeating: eventID, count: 4))
            #expect(try Self.attemptOutcomes(connection).last == "delivered")
        }
    }

    @Test(.timeLimit(.minutes(1))) func goneDisablesTheEndpointAndEnablingResumes() async throws {
        let database = try TestDatabase.create()
        let sink = Sink(script: [410])
        try await sink.application().test(.live) { client in
            let connection = try database.connect()
            let deliverer = try Self.deliverer([try Self.endpoint("site", port: try #require(client.port))], database: database)
            deliverer.start()
            try #require(try await Self.eventually { try connection.query("SELECT count(*) FROM webhook_endpoints")[0].decode(0, as: Int.self) == 1 })
            _ = try Self.pay("W-4", on: connection)
            #expect(try await Self.eventually { try DeliveryStore.disabledEndpoints(on: connection) == ["site": "gone"] })
            _ = try Self.pay("W-5", on: connection)
            try await Task.sleep(for: .milliseconds(500))
            #expect(sink.received.count == 1, "nothing more is sent to a disabled endpoint")
            #expect(try Self.deliveries(connection).map(\.state) == ["pending", "pending"], "the deliveries wait")

            #expect(try DeliveryStore.enable(endpointID: "site", on: connection))
            #expect(try await Self.eventually { try Self.deliveries(connection).map(\.state) == ["delivered", "delivered"] })
            await deliverer.shutdown()
        }
    }

    @Test(.timeLimit(.minutes(1))) func anEndpointFailingTooLongIsDisabled() async throws {
        let database = try TestDatabase.create()
        let sink = Sink(script: Array(repeating: 500, count: 100))
        try await sink.application().test(.live) { client in
            let connection = try database.connect()
            let deliverer = try Self.deliverer([try Self.endpoint("site", port: try #require(client.port))], database: database,
                                               waits: Array(repeating: 0.2, count: 50), disableAfterFailing: .seconds(1))
            deliverer.start()
            try #require(try await Self.eventually { try connection.query("SELECT count(*) FROM webhook_endpoints")[0].decode(0, as: Int.self) == 1 })
            _ = try Self.pay("W-6", on: connection)
            #expect(try await Self.eventually { try DeliveryStore.disabledEndpoints(on: connection) == ["site": "failing"] })
            await deliverer.shutdown()
            #expect(try Self.deliveries(connection).map(\.state) == ["pending"], "still waiting for the endpoint")
        }
    }

    /// An endpoint that answers after its timeout holds only its own slots: the other
    /// endpoint's deliveries go out meanwhile, and the slow one's attempts fail by timeout.
    @Test(.timeLimit(.minutes(1))) func aSlowEndpointHoldsBackNoOther() async throws {
        let database = try TestDatabase.create()
        let sink = Sink()
        try await sink.application().test(.live) { client in
            let port = try #require(client.port)
            let connection = try database.connect()
            let deliverer = try Self.deliverer([
                try Self.endpoint("slow", port: port, path: "/slow", timeout: .milliseconds(1500)),
                try Self.endpoint("site", port: port),
            ], database: database, waits: [30])
            deliverer.start()
            try #require(try await Self.eventually { try connection.query("SELECT count(*) FROM webhook_endpoints")[0].decode(0, as: Int.self) == 2 })
            for index in 0..<5 { _ = try Self.pay("W-S\(index)", on: connection) }
            #expect(try await Self.eventually(10) { sink.received.filter { $0.path == "/hook" }.count == 5 })
            #expect(try await Self.eventually { try Self.attemptOutcomes(connection, endpoint: "slow").count == 5 })
            // Every fast delivery was done while the slow endpoint's requests still hung.
            let order = try connection.query("""
                SELECT (SELECT max(delivered_at) FROM webhook_deliveries WHERE endpoint_id = 'site')
                     < (SELECT min(a.finished_at) FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
                        WHERE d.endpoint_id = 'slow')
                """)[0]
            #expect(try order.decode(0, as: Bool.self), "the other endpoint did not wait for the slow one")
            await deliverer.shutdown()
            #expect(try Self.attemptOutcomes(connection, endpoint: "slow") == Array(repeating: "retry", count: 5))
            let errors = try connection.query("""
                SELECT a.error FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.endpoint_id = 'slow'
                """).rows.map { row throws(PostgresError) in try row.decode(0, as: String.self) }
            #expect(errors.allSatisfy { $0.contains("deadline") || $0.contains("imeout") }, "\(errors)")
        }
    }
}

/// The site's endpoint: records what it gets; answers by a script of statuses, then 200.
final class Sink: Sendable {
    struct Received: Sendable {
        let path: String
        let id: String
        let timestamp: String
        let signature: String
        let body: [UInt8]
    }

    private let state: Mutex<(script: [Int], received: [Received])>

    init(script: [Int] = []) {
        state = Mutex((script, []))
    }

    var received: [Received] { state.withLock { $0.received } }

    func application() -> some ApplicationProtocol {
        let router = Router()
        router.post("/hook") { request, _ in try await self.answer(request) }
        router.post("/slow") { request, _ in
            try await Task.sleep(for: .seconds(3))
            return try await self.answer(request)
        }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }

    private func answer(_ request: Request) async throws -> Response {
        let body = try await request.body.collect(upTo: 1 << 20)
        let status = state.withLock { state in
            state.received.append(Received(
                path: request.uri.path, id: request.headers[HTTPField.Name("webhook-id")!] ?? "",
                timestamp: request.headers[HTTPField.Name("webhook-timestamp")!] ?? "",
                signature: request.headers[HTTPField.Name("webhook-signature")!] ?? "", body: Array(buffer: body)))
            return state.script.isEmpty ? 200 : state.script.removeFirst()
        }
        return Response(status: .init(code: status), body: .init(byteBuffer: ByteBuffer(string: status == 200 ? "ok" : "no")))
    }
}

/// The database goes down while requests are in flight and comes back: the answers that
/// came in meanwhile are written after the reconnect, and every event is delivered.
@Suite(.serialized) struct DeliveryOutageTests {
    @Test(.timeLimit(.minutes(2))) func aDatabaseOutageLosesNoDelivery() async throws {
        let cluster = try TestCluster.start()
        defer { cluster.remove() }
        let database = try TestDatabase.create(adminURL: cluster.url())
        let sink = Sink()
        try await sink.application().test(.live) { client in
            let connection = try database.connect()
            let deliverer = try DeliveryTests.deliverer(
                [try DeliveryTests.endpoint("site", port: try #require(client.port), path: "/slow", timeout: .seconds(10))],
                database: database)
            deliverer.start()
            try #require(try await DeliveryTests.eventually {
                try connection.query("SELECT count(*) FROM webhook_endpoints")[0].decode(0, as: Int.self) == 1
            })
            var events: [String] = []
            for index in 0..<10 { events.append(try DeliveryTests.pay("O-\(index)", on: connection)) }
            #expect(try await DeliveryTests.eventually {
                try DeliveryTests.deliveries(connection).filter { $0.state == "processing" }.count == 10
            })
            try cluster.crash()  // the requests are at the endpoint, answering in 3 s
            try await Task.sleep(for: .seconds(4))
            try cluster.restart()
            let again = try database.connect()
            #expect(try await DeliveryTests.eventually(40) {
                (try? DeliveryTests.deliveries(again).allSatisfy { $0.state == "delivered" }) == true
            })
            await deliverer.shutdown()
            #expect(Set(sink.received.map(\.id)) == Set(events), "every event reached the endpoint")
            #expect(try DeliveryTests.deliveries(again).count == 10)
        }
    }
}
