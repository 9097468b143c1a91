import AsyncHTTPClient
import CallbackQueue
import ChannelClients
import Channels
import Foundation
import PayhookCore
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import PayhookConfig
import Postgres
import PostgresTestSupport
import Prometheus
import Receiver
import Simulator
import Testing
import Workers

/// The whole pipeline against one migrated database: the simulated channels' query APIs on
/// a loopback port (HTTPS under a CA the test makes, the channels' `ca_file`, unless
/// `plainHTTP`), the receiver on another, and workers in this process or as
/// `payhook work` children.
final class PipelineHarness: @unchecked Sendable {
    // @unchecked because the harness is set up once and then only read; tests own it.
    let database: TestDatabase
    let channels: SimulatedChannels
    let simulator: ChannelSimulator
    let server: ChannelSimulatorServer
    let directory: SimulatorDirectory
    let notifies: NotifyFactory
    var configuration: PayhookConfiguration

    /// Fast settings for tests: retries after 50-200 ms, two threads, small batches.
    static let testOverrides: [String: String] = [
        "PAYHOOK_WORKER_THREADS": "2", "PAYHOOK_WORKER_BATCH_SIZE": "16", "PAYHOOK_WORKER_POLL_INTERVAL_MS": "50",
        "PAYHOOK_WORKER_UNKNOWN_ORDER_ATTEMPTS": "2", "PAYHOOK_RETRY_BASE_SECONDS": "0.1",
        "PAYHOOK_RETRY_MAX_DELAY_SECONDS": "0.2", "PAYHOOK_RETRY_MAX_ATTEMPTS": "4",
        "PAYHOOK_RECONCILE_AFTER_SECONDS": "600", "PAYHOOK_RECONCILE_EVERY_SECONDS": "600",
    ]

    /// `crossCheck`: every channel's `cross_check` in the written `payhook.yaml` (nil: left out, `always`).
    /// `tls`: the certificates the simulator serves (default: a new CA and a loopback
    /// certificate from it); `trustedCAPEM`: what the channels' `ca_file` holds (default:
    /// that CA); `plainHTTP`: no TLS at all (`insecure_http: true`).
    /// `alipayCertMode`: Alipay in certificate mode, with certificates the simulator makes.
    init(database: TestDatabase? = nil, queryTimeoutMilliseconds: Int = 1000, crossCheck: String? = nil,
         tls: SimulatorTLS? = nil, trustedCAPEM: String? = nil, plainHTTP: Bool = false,
         alipayCertMode: Bool = false) async throws {
        self.database = try database ?? TestDatabase.create()
        var channels = SimulatedChannels.generate()
        if alipayCertMode {
            channels.alipayCertificates = try SimulatedAlipayCertificates(appKey: channels.alipayAppKey, alipayKey: channels.alipayKey)
        }
        self.channels = channels
        simulator = ChannelSimulator(channels: channels)
        let served = try plainHTTP ? nil : (tls ?? SimulatorTLS.generate())
        server = try await ChannelSimulatorServer.start(simulator, tls: served)
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("payhook-e2e-\(UUID().uuidString.prefix(8))").path
        directory = SimulatorDirectory(path: folder)
        try directory.writeKeys(channels, baseURL: server.baseURL)
        if let served {
            try directory.writeCA(served)
            if let trustedCAPEM { try trustedCAPEM.write(toFile: directory.caFile, atomically: true, encoding: .utf8) }
        }
        try directory.writeConfiguration(channels, baseURL: server.baseURL, options: .init(
            databaseURL: self.database.url, receiverListen: "127.0.0.1:0", queryTimeoutMilliseconds: queryTimeoutMilliseconds,
            crossCheck: crossCheck))
        configuration = try PayhookConfiguration.load(path: directory.configurationFile, environment: Self.testOverrides)
        // The tests send some callbacks "through a proxy" to pick their client address.
        configuration.receiver.trustedProxies = [CIDR.parse("127.0.0.1/32")!]
        notifies = NotifyFactory(channels: channels, oversizeBytes: configuration.receiver.maxBodyBytes)
    }

    /// The simulator's CA file when it serves HTTPS, for calls to its control API.
    var caFile: String? { server.tls == nil ? nil : directory.caFile }

    func tearDown() async {
        await server.stop()
        try? FileManager.default.removeItem(atPath: directory.path)
    }

    // MARK: Orders on both sides

    /// Creates the site's order and the channel's record of it (paid unless told otherwise).
    @discardableResult
    func order(_ number: String, channel: String, amountMinor: Int64 = 8888, siteAmountMinor: Int64? = nil,
               currency: String = "CNY", channelStatus: PaymentStatus = .paid, createdSecondsAgo: Int = 0) throws -> ChannelOrder {
        let order = ChannelOrder(
            outTradeNo: number, channelTradeNo: "CT-\(number)", status: channelStatus, amountMinor: amountMinor,
            currency: currency, paidAt: channelStatus == .paid ? Date(timeIntervalSince1970: 1_800_000_000) : nil,
            subject: "Order \(number)")
        simulator.setOrder(channel: channel, order)
        try database.connect().query("""
            INSERT INTO orders (out_trade_no, channel, amount_minor, currency, created_at)
            VALUES ($1, $2, $3, $4, now() - $5 * interval '1 second')
            """, [.text(number), .text(channel), .int64(siteAmountMinor ?? amountMinor), .text(currency),
                  .int64(Int64(createdSecondsAgo))])
        return order
    }

    // MARK: The receiver

    func receiver() throws -> (Receiver, Enqueuer) {
        var settings = Enqueuer.Configuration(connection: .init(conninfo: database.url))
        settings.commitTimeout = .seconds(2)
        let enqueuer = Enqueuer(configuration: settings, logger: Logger(label: "e2e"))
        enqueuer.start()
        let registry = PrometheusCollectorRegistry()
        let receiver = Receiver(
            configuration: configuration.receiver, enqueuer: enqueuer, readiness: Readiness(connection: .init(conninfo: database.url)),
            returns: nil, registry: registry,
            metrics: ReceiverMetrics(factory: PrometheusMetricsFactory(registry: registry)), logger: Logger(label: "e2e"))
        return (receiver, enqueuer)
    }

    /// Runs `body` with a live receiver and (unless `workers` is false) a worker pool in this process.
    func withPipeline(workers: Bool = true, metrics: WorkerMetrics = WorkerMetrics(),
                      _ body: @escaping @Sendable (Sender) async throws -> Void) async throws {
        let (receiver, enqueuer) = try receiver()
        let pool = workers ? try workerPool(metrics: metrics) : nil
        pool?.start()
        do {
            try await receiver.buildApplication().test(.live) { client in
                try await body(Sender(client: client))
            }
        } catch {
            await pool?.shutdown()
            await enqueuer.shutdown()
            throw error
        }
        await pool?.shutdown()
        await enqueuer.shutdown()
    }

    func workerPool(metrics: WorkerMetrics = WorkerMetrics()) throws -> WorkerPool {
        let clients = try configuration.loadClients(logger: Logger(label: "e2e"))
        return WorkerPool(configuration: configuration.worker, clients: clients, metrics: metrics,
                          logger: Logger(label: "e2e"))
    }

    /// Sends notifies to the live receiver.
    struct Sender: Sendable {
        let client: any TestClientProtocol

        /// POSTs the notify; returns the HTTP status. `clientIP` is sent as X-Forwarded-For
        /// (the loopback peer is a trusted proxy in these tests).
        @discardableResult
        func send(_ notify: SimulatedNotify, clientIP: String? = nil) async throws -> Int {
            var headers = HTTPFields()
            for field in notify.headers {
                if let name = HTTPField.Name(field.name) { headers.append(HTTPField(name: name, value: field.value)) }
            }
            if let clientIP { headers.append(HTTPField(name: HTTPField.Name("X-Forwarded-For")!, value: clientIP)) }
            return try await client.execute(uri: "/notify/\(notify.channel)", method: .post, headers: headers,
                                            body: ByteBuffer(bytes: notify.body)) { Int($0.status.code) }
        }

        func sendRaw(channel: String, body: String, headers: [(String, String)] = []) async throws -> Int {
            var fields = HTTPFields()
            for (name, value) in headers { fields.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
            return try await client.execute(uri: "/notify/\(channel)", method: .post, headers: fields,
                                            body: ByteBuffer(string: body)) { Int($0.status.code) }
        }
    }

    // MARK: What the database says

    func waitUntil(timeout: Duration = .seconds(30), _ what: String,
                   _ condition: () throws -> Bool) async throws {
        let end = ContinuousClock.now + timeout
        while ContinuousClock.now < end {
            if try condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("timed out waiting until \(what)")
    }

    /// Waits until no callback is pending or processing.
    func waitForDrain(timeout: Duration = .seconds(60)) async throws {
        let connection = try database.connect()
        try await waitUntil(timeout: timeout, "the queue drains") {
            try connection.query("SELECT count(*) FROM callback_jobs WHERE state IN ('pending', 'processing')")[0]
                .decode(0, as: Int.self) == 0
        }
    }

    func orderStatus(_ number: String) throws -> String? {
        let result = try database.connect().query("SELECT status FROM orders WHERE out_trade_no = $1", [.text(number)])
        return result.isEmpty ? nil : try result[0].decode(0, as: String.self)
    }

    /// `state/reason` of every callback naming the order, oldest first.
    func callbackStates(_ number: String) throws -> [String] {
        try database.connect().query("""
            SELECT state || coalesce('/' || reason, '') FROM callbacks WHERE out_trade_no = $1 ORDER BY id
            """, [.text(number)]).rows.map { row throws(PostgresError) in try row.decode(0, as: String.self) }
    }

    func allCallbackStates() throws -> [String] {
        try database.connect().query("SELECT state || coalesce('/' || reason, '') FROM callbacks ORDER BY id")
            .rows.map { row throws(PostgresError) in try row.decode(0, as: String.self) }
    }

    /// `kind[/flagged]/source` of the order's events, in order.
    func events(_ number: String) throws -> [String] {
        try database.connect().query("""
            SELECT kind || CASE WHEN flagged THEN '/flagged' ELSE '' END || '/' || source
            FROM order_events WHERE out_trade_no = $1 ORDER BY id
            """, [.text(number)]).rows.map { row throws(PostgresError) in try row.decode(0, as: String.self) }
    }

    func eventDetails(_ number: String) throws -> [String] {
        try database.connect().query(
            "SELECT coalesce(detail, '') FROM order_events WHERE out_trade_no = $1 ORDER BY id", [.text(number)]
        ).rows.map { row throws(PostgresError) in try row.decode(0, as: String.self) }
    }
}
