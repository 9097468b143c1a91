import CallbackQueue
import Foundation
import PayhookCore
import Orders
import Postgres
import PostgresTestSupport
import Simulator
import Testing
import Webhooks

/// The operator's commands against a database the pipeline has worked on: `status`,
/// `dlq list`, `dlq replay`, `orders show`, as a shell would run them.
@Suite(.timeLimit(.minutes(3))) struct OperationsCommandTests {
    @Test func statusDeadLettersReplayAndOrderHistory() async throws {
        let harness = try await PipelineHarness()
        defer { Task { await harness.tearDown() } }
        let order = try harness.order("OPS-1", channel: "points")
        let duplicate = try harness.order("OPS-2", channel: "alipay")
        harness.simulator.script(channel: "points", outTradeNo: "OPS-1", Array(repeating: .httpError(503), count: 4))
        try await harness.withPipeline { sender in
            try await sender.send(harness.notifies.notify(.valid, channel: "points", order: order, eventID: "o1"))
            for _ in 0..<2 {
                try await sender.send(harness.notifies.notify(.valid, channel: "alipay", order: duplicate, eventID: "o2"))
            }
            try await harness.waitForDrain()
        }
        let config = ["--config", harness.directory.configurationFile]

        let status = try await ChildProcess.payhookAsync(["status"] + config)
        #expect(status.status == 0)
        #expect(status.output.contains("points"))
        #expect(status.output.contains("dead:              1"))
        // The partitions, the one holding today's callbacks with its dead one, and the
        // workers' maintainer's last run.
        #expect(status.output.contains("queue partitions (received time, UTC):"))
        #expect(status.output.contains(/\d{4}-\d\d-\d\d 00:00:00 \.\. \d{4}-\d\d-\d\d 00:00:00 +(~\d+ callbacks|not analyzed yet), [\d.]+ \w+; 1 dead/),
                "\(status.output)")
        #expect(status.output.contains("retention:         keep 7 days of finished callbacks"))
        #expect(status.output.contains(/last maintenance:  \d{4}-\d\d-\d\d [\d:]+ UTC \(\d+ s ago\)/), "\(status.output)")
        #expect(status.output.contains(/queue tables: +[\d.]+ \w+ \(indexes/))

        let list = try await ChildProcess.payhookAsync(["dlq", "list"] + config)
        #expect(list.status == 0)
        #expect(list.output.contains("query_unavailable"))
        #expect(list.output.contains("OPS-1"))
        let id = try harness.database.connect().query(
            "SELECT callback_id FROM callback_jobs WHERE state = 'dead'")[0].decode(0, as: Int64.self)

        let replay = try await ChildProcess.payhookAsync(["dlq", "replay", String(id), "999999"] + config)
        #expect(replay.status == 1)  // 999999 is not dead
        #expect(replay.output.contains("replayed 1 of 2"))
        #expect(replay.output.contains("not dead, left alone: 999999"))
        #expect(try harness.callbackStates("OPS-1") == ["pending"])
        let replayed = try harness.database.connect().query(
            "SELECT count(*) FROM callback_attempts WHERE callback_id = $1 AND outcome = 'replayed'", [.int64(id)])
        #expect(try replayed[0].decode(0, as: Int.self) == 1)

        let show = try await ChildProcess.payhookAsync(["orders", "show", "CT-OPS-2"] + config)  // by the channel's number
        #expect(show.status == 0)
        #expect(show.output.contains("order           OPS-2"))
        #expect(show.output.contains("status          paid"))
        #expect(show.output.contains("transition"))
        #expect(show.output.contains("duplicate"))

        let missing = try await ChildProcess.payhookAsync(["orders", "show", "NO-SUCH"] + config)
        #expect(missing.status == 1)
        let usage = try await ChildProcess.payhookAsync(["dlq", "replay"] + config)
        #expect(usage.status == 2)
    }

    /// `orders create` and `orders close` run the site API's code: the order is made at the
    /// (simulated) channel, a bad request is refused with its code, the close reaches the channel.
    @Test func ordersCreateAndCloseGoThroughTheChannels() async throws {
        // The other suites fill both cores meanwhile: the simulator may take seconds to answer.
        let harness = try await PipelineHarness(queryTimeoutMilliseconds: 15_000)
        defer { Task { await harness.tearDown() } }
        let config = ["--config", harness.directory.configurationFile]
        let create = try await ChildProcess.payhookAsync(["orders", "create", "--channel", "wechatpay", "--scene", "native",
                                               "--amount", "12.50", "--subject", "CLI tea", "--out-trade-no", "CLI_100001"] + config)
        #expect(create.status == 0, "\(create.output)")
        #expect(create.output.contains(#""code_url":"weixin://"#))
        #expect(harness.simulator.order(channel: "wechatpay", outTradeNo: "CLI_100001")?.amountMinor == 1250)
        let refused = try await ChildProcess.payhookAsync(["orders", "create", "--channel", "wechatpay", "--scene", "page",
                                                "--amount", "1.00", "--subject", "x"] + config)
        #expect(refused.status == 1)
        #expect(refused.output.contains("unsupported_scene"))
        let close = try await ChildProcess.payhookAsync(["orders", "close", "CLI_100001"] + config)
        #expect(close.status == 0, "\(close.output)")
        #expect(close.output.contains(#""status":"closed""#))
        #expect(harness.simulator.order(channel: "wechatpay", outTradeNo: "CLI_100001")?.status == .closed)
        let status: String = try harness.database.connect().query(
            "SELECT status FROM orders WHERE out_trade_no = 'CLI_100001'")[0].decode(0)
        #expect(status == "closed")
    }

    /// The site API refuses to start without its bearer token: exit 2 naming the key.
    @Test func theSiteAPIWithoutATokenIsExitTwoNamingTheKey() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("payhook-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try """
            database: {url: "postgres://nobody@127.0.0.1:1/none"}
            api: {listen: "127.0.0.1:0"}
            site: {public_base_url: "https://pay.example.com"}
            admin: {token_file: /nonexistent/admin.token}
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let serve = try ChildProcess.payhook(["serve", "--config", file])
        #expect(serve.status == 2)
        #expect(serve.output.contains("admin.token_file"), "\(serve.output)")
    }

    /// A webhook endpoint whose secret file is missing stops `payhook work` at start with
    /// exit 2 naming the key, before it touches the database.
    @Test func aMissingWebhookSecretIsExitTwoNamingTheKey() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("payhook-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try """
            database: {url: "postgres://nobody@127.0.0.1:1/none"}
            webhooks: [{id: shop, url: "https://shop.example/payhook", secret_file: /nonexistent/shop.secret}]
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let work = try ChildProcess.payhook(["work", "--config", file])
        #expect(work.status == 2)
        #expect(work.output.contains("webhooks[0].secret_file"), "\(work.output)")
    }

    /// An unknown `cross_check` stops `payhook work` at start with exit 2 naming the key,
    /// before it touches the database; so does `when_unverified` on Alipay without `seller_id`.
    @Test func aBadCrossCheckIsExitTwoNamingTheKey() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("payhook-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        let points = "{id: p, type: points, partner_id: p, hmac_secret_file: /nonexistent/p.secret, api_base_url: \"https://p.example\""
        try """
            database: {url: "postgres://nobody@127.0.0.1:1/none"}
            channels: [\(points), cross_check: sometimes}]
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let work = try ChildProcess.payhook(["work", "--config", file])
        #expect(work.status == 2)
        #expect(work.output.contains("channels[0].cross_check"), "\(work.output)")
        #expect(work.output.contains("always or when_unverified"), "\(work.output)")
        try """
            database: {url: "postgres://nobody@127.0.0.1:1/none"}
            channels: [{id: a, type: alipay, app_id: a, alipay_public_key_file: /nonexistent/a.pem,
                        app_private_key_file: /nonexistent/b.pem, gateway_url: "https://a.example", cross_check: when_unverified}]
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let alipay = try ChildProcess.payhook(["work", "--config", file])
        #expect(alipay.status == 2)
        #expect(alipay.output.contains("channels[0].seller_id"), "\(alipay.output)")
    }

    /// `events list`, `events replay` (by id and by endpoint and time), `webhooks test` and
    /// `webhooks enable` against a real database and the simulated site.
    @Test func eventsAndWebhookCommands() async throws {
        let database = try TestDatabase.create()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("payhook-ev-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let directory = SimulatorDirectory(path: folder)
        let site = SimulatedSite(signer: try directory.siteSigner())
        let server = try await site.start()
        defer { Task { await server.stop() } }
        let file = folder + "/payhook.yaml"
        try """
            database: {url: "\(database.url)"}
            webhooks: [{id: site, url: "\(server.webhookURL)", secret_file: "\(directory.siteSecretFile)"}]
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let config = ["--config", file]
        let connection = try database.connect()
        try connection.query("INSERT INTO webhook_endpoints (id, url, kinds) VALUES ('site', $1, '{order.paid}')",
                             [.text(server.webhookURL)])
        try connection.query("INSERT INTO orders (out_trade_no, channel, amount_minor, currency) VALUES ('EV-1', 'alipay', 100, 'CNY')")
        _ = try connection.transaction { connection throws(PostgresError) in
            try OrderStore.apply([ApplyItem(source: .callback, callbackID: nil, evidence: OrderEvidence(
                channel: "alipay", outTradeNo: "EV-1", channelTradeNo: "T-EV-1", status: .paid, amountMinor: 100,
                currency: "CNY", paidAt: Date()))], on: connection)
        }
        let eventID = try #require(try OrderOutbox.list(outTradeNo: "EV-1", on: connection).first).eventID

        let list = try await ChildProcess.payhookAsync(["events", "list", "--order", "EV-1"] + config)
        #expect(list.status == 0)
        #expect(list.output.contains(eventID) && list.output.contains("order.paid") && list.output.contains("pending"))
        try connection.query("UPDATE webhook_deliveries SET state = 'dead', attempts = 8")
        let dead = try await ChildProcess.payhookAsync(["events", "list", "--state", "dead"] + config)
        #expect(dead.output.contains(eventID))

        let replay = try await ChildProcess.payhookAsync(["events", "replay", eventID] + config)
        #expect(replay.status == 0 && replay.output.contains("queued 1 deliveries of 1 events"))
        let state = try connection.query("SELECT state, attempts FROM webhook_deliveries")[0]
        #expect(try state.decode(0, as: String.self) == "pending" && state.decode(1, as: Int32.self) == 0, "the same id, a fresh budget")
        let none = try await ChildProcess.payhookAsync(["events", "replay", "evt_nosuchevent"] + config)
        #expect(none.status == 1)
        let since = try await ChildProcess.payhookAsync(["events", "replay", "--endpoint", "site", "--since", "2020-01-01T00:00:00Z"] + config)
        #expect(since.status == 0 && since.output.contains("queued 1 deliveries to site"))
        let usage = try await ChildProcess.payhookAsync(["events", "replay", "--endpoint", "site"] + config)
        #expect(usage.status == 2, "--endpoint needs --since")

        let test = try await ChildProcess.payhookAsync(["webhooks", "test", "site"] + config)
        #expect(test.status == 0 && test.output.contains("HTTP 204"), "\(test.output)")
        #expect(site.tally.events.contains { $0.type == "webhook.test" }, "the site verified the signed test event")

        try connection.query("UPDATE webhook_endpoints SET disabled_at = now(), disabled_reason = 'gone'")
        let status = try await ChildProcess.payhookAsync(["status"] + config)
        #expect(status.output.contains("disabled (gone)"))
        let enable = try await ChildProcess.payhookAsync(["webhooks", "enable", "site"] + config)
        #expect(enable.status == 0 && enable.output.contains("enabled site"))
        #expect(try DeliveryStore.disabledEndpoints(on: connection).isEmpty)
        #expect(try await ChildProcess.payhookAsync(["webhooks", "enable", "other"] + config).status == 1)
    }
}
