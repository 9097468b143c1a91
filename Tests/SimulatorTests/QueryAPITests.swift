import AsyncHTTPClient
import ChannelClients
import Channels
import Foundation
import PayhookCore
import NIOCore
import NIOHTTP1
import Simulator
import Testing

/// Keys are slow to generate; every test shares one set.
let sharedChannels = SimulatedChannels.generate()

/// A simulator served on an ephemeral loopback port, and our own adapters pointed at it.
struct LiveSimulator {
    let simulator: ChannelSimulator
    let server: ChannelSimulatorServer

    static func start(defaultBehaviour: DefaultQueryBehaviour = DefaultQueryBehaviour()) async throws -> LiveSimulator {
        let simulator = ChannelSimulator(channels: sharedChannels, defaultBehaviour: defaultBehaviour)
        return LiveSimulator(simulator: simulator, server: try await ChannelSimulatorServer.start(simulator))
    }

    func adapter(_ channelID: String, queryTimeout: Duration = .seconds(3)) -> ChannelClient {
        simulator.channels.configuration(channelID, baseURL: server.baseURL, queryTimeout: queryTimeout)!
            .makeClient()
    }
}

func paidOrder(_ outTradeNo: String, amount: Int64 = 8888) -> ChannelOrder {
    ChannelOrder(outTradeNo: outTradeNo, channelTradeNo: "T" + outTradeNo.filter(\.isNumber), status: .paid, amountMinor: amount,
                 paidAt: Date(timeIntervalSince1970: 1_790_000_000))
}

func found(_ result: OrderQueryResult) -> OrderEvidence? {
    if case .found(let order) = result { return order }
    return nil
}

func queryError(_ body: () async throws(QueryError) -> OrderQueryResult) async -> QueryError? {
    do {
        _ = try await body()
        return nil
    } catch {
        return error
    }
}

@Suite struct QueryAPITests {
    @Test(arguments: SimulatedChannels.channelIDs)
    func ourAdaptersReadTheSimulatorsSignedAnswers(channel: String) async throws {
        let live = try await LiveSimulator.start()
        // A path-unsafe order number: the query path is percent-encoded and signed as sent.
        let number = "ORDER/2026 11-27#1"
        live.simulator.setOrder(channel: channel, paidOrder(number, amount: 12_345))
        let adapter = live.adapter(channel)

        let order = try #require(found(try await adapter.queryOrder(outTradeNo: number)))
        #expect(order.outTradeNo == number)
        #expect(order.status == .paid)
        #expect(order.amountMinor == 12_345)
        #expect(order.currency == "CNY")
        #expect(order.channelTradeNo == "T202611271")

        #expect(try await adapter.queryOrder(outTradeNo: "NO-SUCH-ORDER") == .notFound(outTradeNo: "NO-SUCH-ORDER"))
        #expect(live.simulator.queryCount(channel: channel, outTradeNo: number) == 1)
        #expect(live.simulator.queryCount(channel: channel) == 2)
        await live.server.stop()
    }

    @Test(arguments: SimulatedChannels.channelIDs)
    func scriptedServerErrorThenNormal(channel: String) async throws {
        let live = try await LiveSimulator.start()
        live.simulator.setOrder(channel: channel, paidOrder("ORDER-500"))
        live.simulator.script(channel: channel, outTradeNo: "ORDER-500", [.httpError(500), .httpError(503)])
        let adapter = live.adapter(channel)

        for _ in 0..<2 {
            let error = try #require(await queryError { () throws(QueryError) in try await adapter.queryOrder(outTradeNo: "ORDER-500") })
            #expect(error.isTransient)
        }
        #expect(found(try await adapter.queryOrder(outTradeNo: "ORDER-500"))?.status == .paid)
        #expect(live.simulator.queryCount(channel: channel, outTradeNo: "ORDER-500") == 3)
        await live.server.stop()
    }

    @Test(arguments: SimulatedChannels.channelIDs)
    func heldQueryTimesOutAsTransient(channel: String) async throws {
        let live = try await LiveSimulator.start()
        live.simulator.setOrder(channel: channel, paidOrder("ORDER-SLOW"))
        live.simulator.script(channel: channel, outTradeNo: "ORDER-SLOW", [.timeout])
        let adapter = live.adapter(channel, queryTimeout: .milliseconds(300))

        let started = ContinuousClock.now
        let error = try #require(await queryError { () throws(QueryError) in try await adapter.queryOrder(outTradeNo: "ORDER-SLOW") })
        #expect(error.isTransient)
        #expect(error.code == .timeout)
        #expect(ContinuousClock.now - started < .seconds(5))
        // The script is used up; a normal timeout leaves room for a busy test machine.
        #expect(found(try await live.adapter(channel).queryOrder(outTradeNo: "ORDER-SLOW"))?.status == .paid)

        // Stopping lets the held request go at once instead of after 30 s.
        let stopping = ContinuousClock.now
        await live.server.stop()
        #expect(ContinuousClock.now - stopping < .seconds(5))
    }

    @Test(arguments: SimulatedChannels.channelIDs)
    func scriptedAnswersDifferFromTheBook(channel: String) async throws {
        let live = try await LiveSimulator.start()
        live.simulator.setOrder(channel: channel, paidOrder("ORDER-X", amount: 1000))
        live.simulator.script(channel: channel, outTradeNo: "ORDER-X",
                              [.amount(999), .notFound, .status(.closed), .latency(.milliseconds(200)), .status(.pending)])
        let adapter = live.adapter(channel)

        #expect(found(try await adapter.queryOrder(outTradeNo: "ORDER-X"))?.amountMinor == 999)
        #expect(try await adapter.queryOrder(outTradeNo: "ORDER-X") == .notFound(outTradeNo: "ORDER-X"))
        #expect(found(try await adapter.queryOrder(outTradeNo: "ORDER-X"))?.status == .closed)
        let started = ContinuousClock.now
        #expect(found(try await adapter.queryOrder(outTradeNo: "ORDER-X"))?.amountMinor == 1000)
        #expect(ContinuousClock.now - started >= .milliseconds(200))
        #expect(found(try await adapter.queryOrder(outTradeNo: "ORDER-X"))?.status == .pending)
        // The script is used up: the book's answer again.
        let order = try #require(found(try await adapter.queryOrder(outTradeNo: "ORDER-X")))
        #expect(order.status == .paid && order.amountMinor == 1000)
        #expect(live.simulator.queryCount(channel: channel, outTradeNo: "ORDER-X") == 6)
        await live.server.stop()
    }

    @Test func errorRateAppliesToUnscriptedQueries() async throws {
        let live = try await LiveSimulator.start(defaultBehaviour: DefaultQueryBehaviour(errorRate: 1))
        live.simulator.setOrder(channel: "points", paidOrder("ORDER-R"))
        let adapter = live.adapter("points")
        let error = try #require(await queryError { () throws(QueryError) in try await adapter.queryOrder(outTradeNo: "ORDER-R") })
        #expect(error.isTransient)
        live.simulator.defaultBehaviour = DefaultQueryBehaviour()
        #expect(found(try await adapter.queryOrder(outTradeNo: "ORDER-R")) != nil)
        await live.server.stop()
    }

    @Test func unchangedOrdersAreSignedOnceAndPrepareSignsAhead() async throws {
        let live = try await LiveSimulator.start()
        for channel in SimulatedChannels.channelIDs {
            for i in 0..<5 { live.simulator.setOrder(channel: channel, paidOrder("ORDER-C\(i)")) }
        }
        await live.simulator.prepare()
        #expect(live.simulator.signatureCount == 15)
        for channel in SimulatedChannels.channelIDs {
            let adapter = live.adapter(channel)
            for _ in 0..<3 { #expect(found(try await adapter.queryOrder(outTradeNo: "ORDER-C0")) != nil) }
        }
        #expect(live.simulator.signatureCount == 15)
        // A changed order is signed anew.
        var changed = paidOrder("ORDER-C0")
        changed.status = .closed
        live.simulator.setOrder(channel: "alipay", changed)
        #expect(found(try await live.adapter("alipay").queryOrder(outTradeNo: "ORDER-C0"))?.status == .closed)
        #expect(live.simulator.signatureCount == 16)
        await live.server.stop()
    }

    @Test func requestsSignedWithOtherKeysAreRefused() async throws {
        let live = try await LiveSimulator.start()
        var stranger = sharedChannels
        stranger.alipayAppKey = RSAPrivateKey.generate()
        stranger.wechatMerchantKey = RSAPrivateKey.generate()
        stranger.pointsSecret = "another-secret-0123456789-0123456789"
        live.simulator.setOrder(channel: "wechatpay", paidOrder("ORDER-K"))
        for channel in SimulatedChannels.channelIDs {
            let adapter = stranger.configuration(channel, baseURL: live.server.baseURL)!.makeClient()
            let error = try #require(await queryError { () throws(QueryError) in try await adapter.queryOrder(outTradeNo: "ORDER-K") })
            #expect(!error.isTransient, "\(channel): \(error)")
        }
        await live.server.stop()
    }

    @Test func controlRouteAddsOrders() async throws {
        let live = try await LiveSimulator.start()
        let record = SimulatedOrderRecord(channel: "alipay", order: paidOrder("ORDER-CTL", amount: 4200))
        var request = HTTPClientRequest(url: live.server.baseURL + "/_sim/orders?prepare=1")
        request.method = .POST
        request.body = .bytes(Array(try JSONEncoder().encode([record])))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        #expect(response.status.code == 200)
        #expect(live.simulator.signatureCount == 1)
        #expect(found(try await live.adapter("alipay").queryOrder(outTradeNo: "ORDER-CTL"))?.amountMinor == 4200)
        #expect(live.simulator.signatureCount == 1)
        await live.server.stop()
    }
}
