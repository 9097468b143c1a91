import Foundation
import Orders
import PayhookCore
import Postgres
import PostgresTestSupport
import Simulator
import Testing
import Webhooks

/// `payhook work` delivering webhooks to the simulated site, killed with SIGKILL while its
/// requests are in flight: another worker delivers them after the lease, with the same
/// event ids; the site sees at most a repeat of an id, never a missing one.
@Suite(.serialized, .timeLimit(.minutes(3))) struct WebhookProcessTests {
    @Test func aWorkerKilledMidDeliveryLosesNoEvent() async throws {
        let database = try TestDatabase.create()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("payhook-wh-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let directory = SimulatorDirectory(path: folder)
        var faults = SimulatedSite.Faults()
        faults.slowMilliseconds = 1500  // every request is in flight long enough to kill its sender
        let site = SimulatedSite(signer: try directory.siteSigner(), faults: faults)
        let server = try await site.start()
        defer { Task { await server.stop() } }
        let config = folder + "/payhook.yaml"
        try """
            database: {url: "\(database.url)"}
            reconcile: {enabled: false}
            webhooks: [{id: site, url: "\(server.webhookURL)", secret_file: "\(directory.siteSecretFile)", timeout_ms: 4000}]
            webhook_delivery: {lease_seconds: 5, poll_interval_ms: 100, retry_schedule_seconds: [1, 1, 1]}
            """.write(toFile: config, atomically: true, encoding: .utf8)

        let connection = try database.connect()
        let first = try ChildProcess(executable: ChildProcess.payhookExecutable, arguments: ["work", "--config", config],
                                     environment: [:], outputFile: folder + "/first.log")
        #expect(try await Self.eventually { try Self.count("SELECT count(*) FROM webhook_endpoints", connection) == 1 })
        var events: [String] = []
        for index in 0..<20 { events.append(try Self.pay("K-\(index)", on: connection)) }
        #expect(try await Self.eventually { try Self.count("SELECT count(*) FROM webhook_deliveries WHERE state = 'processing'", connection) == 20 })
        try await Task.sleep(for: .milliseconds(300))  // the requests are at the site, waiting for their answer
        first.signal(SIGKILL)
        _ = first.wait()

        let second = try ChildProcess(executable: ChildProcess.payhookExecutable, arguments: ["work", "--config", config],
                                      environment: [:], outputFile: folder + "/second.log")
        defer {
            second.signal(SIGTERM)
            _ = second.wait()
        }
        #expect(try await Self.eventually(30) {
            try Self.count("SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'", connection) == 20
        })
        let received = site.tally.events
        #expect(Set(received.map(\.id)) == Set(events), "every event arrived, under its own id")
        // Sent at most once per attempt: the killed worker's attempt and the one that delivered.
        var attempts: [String: Int] = [:]
        for row in try connection.query("SELECT event_id, attempts FROM webhook_deliveries").rows {
            attempts[try row.decode(0, as: String.self)] = Int(try row.decode(1, as: Int32.self))
        }
        #expect(received.allSatisfy { $0.deliveries >= 1 && $0.deliveries <= attempts[$0.id, default: 0] },
                "\(received.map(\.deliveries)) for \(attempts.values.sorted())")
        // The killed worker wrote no finish for the attempts it had in flight.
        let killed = try connection.query("SELECT count(*) FROM webhook_attempts WHERE worker LIKE $1 AND outcome = 'delivered'",
                                          [.text("%:\(first.pid)/%")])[0]
        #expect(try killed.decode(0, as: Int.self) == 0)
    }

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

    static func count(_ sql: String, _ connection: Connection) throws -> Int {
        try connection.query(sql)[0].decode(0, as: Int.self)
    }

    static func eventually(_ seconds: Double = 15, _ condition: () throws -> Bool) async throws -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if try condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try condition()
    }
}
