import CallbackQueue
import Channels
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Orders
import PayhookCore
import Postgres
import PostgresTestSupport
import Prometheus
import Receiver
import Simulator
import SiteOrders
import Testing

/// `GET /return/{channel}`: verified like a notify, never evidence of payment on its own.
@Suite(.serialized) struct ReturnPageTests {
    /// The receiver with return pages, on the harness's database.
    static func receiver(_ harness: APIHarness) -> (Receiver, Enqueuer) {
        var settings = Enqueuer.Configuration(connection: .init(conninfo: harness.database.url))
        settings.commitTimeout = .seconds(2)
        let enqueuer = Enqueuer(configuration: settings, logger: Logger(label: "test"))
        enqueuer.start()
        var configuration = Receiver.Configuration()
        for id in SimulatedChannels.channelIDs { configuration.channels[id] = SimulatedChannels.channelType(id) }
        let adapters = harness.simulator.channels.configurations(baseURL: harness.server.baseURL).map { $0.makeAdapter() }
        let returns = ReturnPages(adapters: adapters, database: SerialConnection(configuration: .init(conninfo: harness.database.url)),
                                  logger: Logger(label: "test"))
        let registry = PrometheusCollectorRegistry()
        let receiver = Receiver(configuration: configuration, enqueuer: enqueuer,
                                readiness: Readiness(connection: .init(conninfo: harness.database.url)), returns: returns,
                                registry: registry, metrics: ReceiverMetrics(factory: PrometheusMetricsFactory(registry: registry)),
                                logger: Logger(label: "test"))
        return (receiver, enqueuer)
    }

    static func signedReturn(_ outTradeNo: String, amount: Int64) -> String {
        sharedChannels.alipaySide.returnQuery(
            for: ChannelOrder(outTradeNo: outTradeNo, channelTradeNo: "2026120222001", status: .paid, amountMinor: amount),
            timestamp: Date())
    }

    @Test func thePageSaysPaidOnlyWhenTheOrderIsAndStoresTheReturnOncePerInterval() async throws {
        try await APIHarness.with { harness in
            _ = try await harness.desk.create(body: Array(#"{"out_trade_no":"RET_1","channel":"alipay","scene":"page","amount":"12.34","subject":"x","return_url":"https://shop.example/done?o=1"}"#.utf8))
            let (receiver, enqueuer) = Self.receiver(harness)
            let query = Self.signedReturn("RET_1", amount: 1234)
            try await receiver.buildApplication().test(.router) { client in
                // A genuine return is not a payment: "being confirmed", reloading, with the shop's link.
                for _ in 0..<2 {
                    try await client.execute(uri: "/return/alipay?" + query, method: .get) { response in
                        #expect(response.status == .ok)
                        let page = String(buffer: response.body)
                        #expect(page.contains(#"<h1 id="status">Being confirmed</h1>"#))
                        #expect(page.contains(#"http-equiv="refresh""#))
                        #expect(page.contains(#"href="https://shop.example/done?o=1""#))
                    }
                }
                // Stored once for a worker to confirm by query, not once per reload.
                #expect(try harness.count("SELECT count(*) FROM callbacks WHERE kind = 'return'") == 1)
                #expect(try SiteOrderStore.find("RET_1", on: harness.database.connect())?.status == .created)

                // Once a notify (or that query) paid it, the same link says so.
                let evidence = OrderEvidence(channel: "alipay", outTradeNo: "RET_1", channelTradeNo: "2026120222001",
                                             status: .paid, amountMinor: 1234, currency: "CNY", paidAt: Date())
                _ = try harness.database.connect().transaction { connection throws(PostgresError) in
                    try OrderStore.apply([ApplyItem(source: .callback, callbackID: nil, evidence: evidence)], on: connection)
                }
                try await client.execute(uri: "/return/alipay?" + query, method: .get) { response in
                    let page = String(buffer: response.body)
                    #expect(page.contains(#"<h1 id="status">Paid</h1>"#))
                    #expect(!page.contains("refresh"))
                    #expect(page.contains(#"id="continue""#))
                }

                // A tampered return proves nothing and links nowhere.
                let tampered = query.replacingOccurrences(of: "total_amount=12.34", with: "total_amount=0.01")
                #expect(tampered != query)
                try await client.execute(uri: "/return/alipay?" + tampered, method: .get) { response in
                    #expect(response.status == .badRequest)
                    let page = String(buffer: response.body)
                    #expect(page.contains("Not confirmed"))
                    #expect(!page.contains("shop.example"))
                }
                // WeChat Pay signs no browser return.
                try await client.execute(uri: "/return/wechatpay?out_trade_no=RET_1", method: .get) { response in
                    #expect(response.status == .badRequest)
                }
            }
            await enqueuer.shutdown()
        }
    }

    @Test func theRateLimitIsPerOrderAndPerInterval() throws {
        let pages = ReturnPages(adapters: [], database: SerialConnection(configuration: .init(conninfo: "postgres://x@127.0.0.1:1/x")),
                                storeEvery: 30, logger: Logger(label: "test"))
        let start = Date()
        #expect(pages.shouldStore(channel: "alipay", outTradeNo: "A", now: start))
        #expect(!pages.shouldStore(channel: "alipay", outTradeNo: "A", now: start.addingTimeInterval(29)))
        #expect(pages.shouldStore(channel: "alipay", outTradeNo: "B", now: start.addingTimeInterval(29)))
        #expect(pages.shouldStore(channel: "wechatpay", outTradeNo: "A", now: start.addingTimeInterval(29)))
        #expect(pages.shouldStore(channel: "alipay", outTradeNo: "A", now: start.addingTimeInterval(31)))
    }
}
