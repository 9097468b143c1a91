import ChannelClients
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
import Simulator
import SiteAPI
import SiteOrders
import Testing

/// Keys are slow to generate; every test shares one set.
let sharedChannels = SimulatedChannels.generate()

/// The site API over a real PostgreSQL, its channels the simulator over loopback HTTP.
struct APIHarness {
    static let token = "site-api-test-token-7f3e"
    static let auth: HTTPFields = [.authorization: "Bearer \(token)", .contentType: "application/json"]

    let database: TestDatabase
    let simulator: ChannelSimulator
    let server: ChannelSimulatorServer
    let desk: OrderDesk

    static func start(databaseURL: String? = nil, channelBaseURL: String? = nil) async throws -> APIHarness {
        let database = try TestDatabase.create()
        let simulator = ChannelSimulator(channels: sharedChannels)
        let server = try await ChannelSimulatorServer.start(simulator)
        // Generous: on two cores the concurrent suites can hold an answer back for seconds.
        let clients = simulator.channels.configurations(baseURL: channelBaseURL ?? server.baseURL, queryTimeout: .seconds(8))
            .map { $0.makeClient() }
        let connection = SerialConnection(configuration: .init(conninfo: databaseURL ?? database.url))
        let desk = OrderDesk(clients: clients, urls: SiteURLs(publicBaseURL: "http://127.0.0.1:8080"),
                             database: connection, logger: Logger(label: "test"))
        return APIHarness(database: database, simulator: simulator, server: server, desk: desk)
    }

    /// Runs `body` with a started harness, then stops its server and drops its database.
    static func with(databaseURL: String? = nil, channelBaseURL: String? = nil,
                     _ body: (APIHarness) async throws -> Void) async throws {
        let harness = try await start(databaseURL: databaseURL, channelBaseURL: channelBaseURL)
        do { try await body(harness) } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    func stop() async {
        await server.stop()
        database.drop()
    }

    var api: SiteAPI {
        SiteAPI(configuration: .init(), desk: desk, access: AdminAccess(token: Self.token), logger: Logger(label: "test"))
    }

    func test(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let application = Application(router: api.buildRouter())
        try await application.test(.router, body)
    }

    func count(_ sql: String) throws -> Int64 {
        try database.connect().query(sql)[0].decode(0)
    }
}

/// The JSON answer of a response.
func json(_ response: TestResponse) throws -> [String: Any] {
    let value = try JSONSerialization.jsonObject(with: Data(Array(buffer: response.body)))
    guard let object = value as? [String: Any] else { throw TestSupportError("the answer is not a JSON object") }
    return object
}

/// The `code` of an error answer.
func code(_ response: TestResponse) throws -> String? { try json(response)["code"] as? String }

/// A member of the answer's `order`.
func orderField(_ response: TestResponse, _ key: String) throws -> Any? { order(try json(response))[key] }

func order(_ body: [String: Any]) -> [String: Any] { body["order"] as? [String: Any] ?? [:] }

@Suite(.serialized) struct SiteAPITests {
    @Test func everyRouteNeedsTheTokenAndNothingIsWrittenWithoutIt() async throws {
        try await APIHarness.with { harness in
            let body = ByteBuffer(string: #"{"channel":"alipay","scene":"page","amount":"1.00","subject":"x"}"#)
            try await harness.test { client in
                for headers: HTTPFields in [[.contentType: "application/json"],
                                            [.authorization: "Bearer wrong", .contentType: "application/json"],
                                            [.authorization: APIHarness.token, .contentType: "application/json"]] {
                    try await client.execute(uri: "/v1/orders", method: .post, headers: headers, body: body) { response in
                        #expect(response.status == .unauthorized)
                        let answerCode = try code(response)
                        #expect(answerCode == "unauthorized")
                        #expect(response.headers[.wwwAuthenticate] == "Bearer")
                    }
                }
                try await client.execute(uri: "/v1/orders/X", method: .get) { #expect($0.status == .unauthorized) }
                try await client.execute(uri: "/v1/orders/X/close", method: .post) { #expect($0.status == .unauthorized) }
            }
            #expect(try harness.count("SELECT count(*) FROM orders") == 0)
        }
    }

    @Test func badRequestsAreRefusedWithTheirCodeAndWriteNothing() async throws {
        try await APIHarness.with { harness in
            let cases: [(String, HTTPFields, HTTPResponse.Status, String)] = [
                (#"{"channel":"alipay","scene":"page","amount":"1e3","subject":"x"}"#, APIHarness.auth, .badRequest, "invalid_amount"),
                (#"{"channel":"alipay","scene":"page","amount":1.5,"subject":"x"}"#, APIHarness.auth, .badRequest, "invalid_amount"),
                (#"{"channel":"alipay","scene":"page","amount":"200000000","subject":"x"}"#, APIHarness.auth, .badRequest, "amount_out_of_range"),
                (#"{"channel":"paypal","scene":"page","amount":"1.00","subject":"x"}"#, APIHarness.auth, .badRequest, "unknown_channel"),
                (#"{"channel":"wechatpay","scene":"page","amount":"1.00","subject":"x"}"#, APIHarness.auth, .badRequest, "unsupported_scene"),
                (#"{"channel":"wechatpay","scene":"native","amount":"1.00","subject":"x","out_trade_no":"a b"}"#, APIHarness.auth, .badRequest, "invalid_out_trade_no"),
                (#"{"channel":"wechatpay","scene":"jsapi","amount":"1.00","subject":"x"}"#, APIHarness.auth, .badRequest, "missing_payer_field"),
                ("{not json", APIHarness.auth, .badRequest, "invalid_json"),
                (String(repeating: " ", count: 20_000), APIHarness.auth, .contentTooLarge, "body_too_large"),
                (#"{"channel":"alipay"}"#, [.authorization: "Bearer \(APIHarness.token)", .contentType: "text/plain"],
                 .unsupportedMediaType, "unsupported_media_type"),
            ]
            try await harness.test { client in
                for (body, headers, status, code) in cases {
                    try await client.execute(uri: "/v1/orders", method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
                        #expect(response.status == status, "\(code)")
                        let answer = try json(response)
                        #expect(answer["code"] as? String == code)
                        #expect((answer["message"] as? String)?.isEmpty == false)
                    }
                }
                for (uri, method, allowed) in [("/v1/orders", HTTPRequest.Method.get, "POST"), ("/v1/orders", .delete, "POST"),
                                               ("/v1/orders/X1", .put, "GET"), ("/v1/orders/X1", .post, "GET"),
                                               ("/v1/orders/X1/close", .get, "POST"), ("/v1/orders/X1/close", .trace, "POST")] {
                    try await client.execute(uri: uri, method: method, headers: APIHarness.auth) { response in
                        #expect(response.status == .methodNotAllowed, "\(method) \(uri)")
                        #expect(response.headers[.allow] == allowed)
                        let answerCode = try code(response)
                        #expect(answerCode == "method_not_allowed")
                    }
                }
                try await client.execute(uri: "/v1/nothing", method: .get, headers: APIHarness.auth) { response in
                    #expect(response.status == .notFound)
                    let answerCode = try code(response)
                        #expect(answerCode == "not_found")
                }
                try await client.execute(uri: "/v1/orders/NOPE", method: .get, headers: APIHarness.auth) { response in
                    #expect(response.status == .notFound)
                    let answerCode = try code(response)
                        #expect(answerCode == "order_not_found")
                }
                try await client.execute(uri: "/v1/orders/NOPE/close", method: .post, headers: APIHarness.auth) {
                    #expect($0.status == .notFound)
                }
            }
            #expect(try harness.count("SELECT count(*) FROM orders") == 0)
            #expect(try harness.count("SELECT count(*) FROM order_events") == 0)
        }
    }

    @Test func anAlipayPagePayOrderIsSignedOnceAndRepeatsAreRecognised() async throws {
        try await APIHarness.with { harness in
            let body = #"{"out_trade_no":"SHOP_1001","channel":"alipay","scene":"page","amount":"88.88","subject":"Tea","return_url":"https://shop.example/done","expires_in_seconds":900}"#
            try await harness.test { client in
                try await client.execute(uri: "/v1/orders", method: .post, headers: APIHarness.auth, body: ByteBuffer(string: body)) { response in
                    #expect(response.status == .created)
                    let answer = try json(response)
                    #expect(order(answer)["status"] as? String == "created")
                    #expect(order(answer)["amount"] as? String == "88.88")
                    #expect(order(answer)["amount_minor"] as? Int == 8888)
                    let pay = try #require(answer["pay"] as? [String: Any])
                    let url = try #require(pay["pay_url"] as? String)
                    #expect(url.hasPrefix(harness.server.baseURL + "/alipay/gateway.do?"))
                    // Payhook builds notify_url and return_url itself, from site.public_base_url.
                    let query = try #require(URLComponents(string: url)?.queryItems)
                    #expect(query.first { $0.name == "notify_url" }?.value == "http://127.0.0.1:8080/notify/alipay")
                    #expect(query.first { $0.name == "return_url" }?.value == "http://127.0.0.1:8080/return/alipay")
                    #expect((pay["form_html"] as? String)?.contains("<form") == true)
                }
                // The same request again: the same order, freshly signed parameters.
                try await client.execute(uri: "/v1/orders", method: .post, headers: APIHarness.auth, body: ByteBuffer(string: body)) { response in
                    #expect(response.status == .ok)
                    let field = try orderField(response, "out_trade_no") as? String
                        #expect(field == "SHOP_1001")
                }
                // The same number with another body is a conflict, and changes nothing.
                let other = body.replacingOccurrences(of: "88.88", with: "99.99")
                try await client.execute(uri: "/v1/orders", method: .post, headers: APIHarness.auth, body: ByteBuffer(string: other)) { response in
                    #expect(response.status == .conflict)
                    let answerCode = try code(response)
                        #expect(answerCode == "order_conflict")
                }
                try await client.execute(uri: "/v1/orders/SHOP_1001", method: .get, headers: APIHarness.auth) { response in
                    #expect(response.status == .ok)
                    let answer = try json(response)
                    #expect(order(answer)["amount_minor"] as? Int == 8888)
                    let events = try #require(answer["events"] as? [[String: Any]])
                    #expect(events.count == 1)
                    #expect(events.first?["to_status"] as? String == "created")
                    #expect(events.first?["source"] as? String == "api")
                }
            }
            #expect(try harness.count("SELECT count(*) FROM orders") == 1)
        }
    }

    @Test func concurrentOrdersAreWrittenTogetherAndEachGetsItsOwnOutcome() async throws {
        try await APIHarness.with { harness in
            // 60 distinct orders, each sent twice at once, and a conflicting body for one of them.
            let bodies = (0..<60).flatMap { index -> [String] in
                let body = #"{"out_trade_no":"BATCH_\#(index)","channel":"alipay","scene":"app","amount":"\#(index + 1).00","subject":"x"}"#
                return [body, body]
            } + [#"{"out_trade_no":"BATCH_7","channel":"alipay","scene":"app","amount":"99.00","subject":"x"}"#]
            let results = await withTaskGroup(of: (String, Result<OrderDesk.Created.Kind, OrderError>).self) { group in
                for body in bodies {
                    group.addTask {
                        do { return (body, .success(try await harness.desk.create(body: Array(body.utf8)).kind)) }
                        catch let error as OrderError { return (body, .failure(error)) }
                        catch { return (body, .failure(OrderError(500, "unexpected", "\(error)"))) }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            let created = results.filter { if case .success(.new) = $0.1 { true } else { false } }.count
            let repeated = results.filter { if case .success(.repeated) = $0.1 { true } else { false } }.count
            let conflicts = results.filter { if case .failure(let error) = $0.1 { error.code == "order_conflict" } else { false } }
            // BATCH_7's first writer decides which of its three bodies conflict; the others are one each.
            #expect(created == 60)
            #expect(repeated + conflicts.count == 61)
            #expect(conflicts.count == 1 || conflicts.count == 2)
            #expect(try harness.count("SELECT count(*) FROM orders") == 60)
            #expect(try harness.count("SELECT count(*) FROM order_events WHERE to_status = 'created'") == 60)
            let expectedSum = (1...60).filter { $0 != 8 }.reduce(Int64(0)) { $0 + Int64($1) * 100 }
            let sum = try harness.count("SELECT sum(amount_minor)::bigint FROM orders WHERE out_trade_no <> 'BATCH_7'")
            #expect(sum == expectedSum)
        }
    }

    @Test func payhookMakesANumberWhenTheSiteGivesNone() async throws {
        try await APIHarness.with { harness in
            let created = try await harness.desk.create(body: Array(#"{"channel":"alipay","scene":"app","amount":"0.01","subject":"x"}"#.utf8))
            #expect(created.kind == .new)
            #expect(created.order.outTradeNo.hasPrefix("PH"))
            #expect(created.pay?["order_string"]?.contains("sign=") == true)
            let again = try await harness.desk.create(body: Array(#"{"channel":"alipay","scene":"app","amount":"0.01","subject":"x"}"#.utf8))
            #expect(again.order.outTradeNo != created.order.outTradeNo)
        }
    }

    @Test func weChatPayJSAPIAnswersTheSignedInvocation() async throws {
        try await APIHarness.with { harness in
            let created = try await harness.desk.create(body: Array(#"{"out_trade_no":"WX100001","channel":"wechatpay","scene":"jsapi","amount":"12.30","subject":"Tea","payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}}"#.utf8))
            let pay = try #require(created.pay)
            #expect(pay["appId"] == sharedChannels.wechatAppID)
            #expect(pay["signType"] == "RSA")
            let package = try #require(pay["package"])
            #expect(package.hasPrefix("prepay_id="))
            let message = "\(pay["appId"]!)\n\(pay["timeStamp"]!)\n\(pay["nonceStr"]!)\n\(package)\n"
            let signature = try #require(Data(base64Encoded: pay["paySign"] ?? ""))
            #expect(sharedChannels.wechatMerchantKey.publicKey.isValidSHA256Signature(Array(signature), for: Array(message.utf8)))
            // The prepay made the order at the channel: its query knows it, unpaid.
            let answer = try await harness.desk.clients["wechatpay"]!.queryOrder(outTradeNo: "WX100001")
            guard case .found(let evidence) = answer else { Issue.record("not found at the channel"); return }
            #expect(evidence.status == .pending)
            #expect(evidence.amountMinor == 1230)
        }
    }

    @Test func aPointsDeductPaysTheOrderAtOnce() async throws {
        try await APIHarness.with { harness in
            let created = try await harness.desk.create(body: Array(#"{"out_trade_no":"PT-1","channel":"points","scene":"deduct","amount":"5.00","subject":"Voucher","payer":{"user_id":"member-7"}}"#.utf8))
            #expect(created.order.status == .paid)
            #expect(created.order.payer == "member-7")
            #expect(created.pay == nil)
            #expect(try harness.count("SELECT count(*) FROM order_outbox WHERE kind = 'order.paid'") == 1)
        }
    }

    @Test func closeBeforeTheBuyerOpenedTheCashierClosesTheOrder() async throws {
        try await APIHarness.with { harness in
            _ = try await harness.desk.create(body: Array(#"{"out_trade_no":"CLOSE_1","channel":"alipay","scene":"page","amount":"1.00","subject":"x"}"#.utf8))
            try await harness.test { client in
                try await client.execute(uri: "/v1/orders/CLOSE_1/close", method: .post, headers: APIHarness.auth) { response in
                    #expect(response.status == .ok)
                    let field = try orderField(response, "status") as? String
                        #expect(field == "closed")
                }
                // Closing again is the same answer.
                try await client.execute(uri: "/v1/orders/CLOSE_1/close", method: .post, headers: APIHarness.auth) { response in
                    #expect(response.status == .ok)
                    let field = try orderField(response, "status") as? String
                        #expect(field == "closed")
                }
            }
            #expect(try harness.count("SELECT count(*) FROM order_outbox WHERE kind = 'order.closed'") == 1)
            // A payment that arrives after the close is still handled as today: flagged, never lost.
            let evidence = OrderEvidence(channel: "alipay", outTradeNo: "CLOSE_1", channelTradeNo: "2026T1", status: .paid,
                                         amountMinor: 100, currency: "CNY", paidAt: Date())
            let plan = try harness.database.connect().transaction { connection throws(PostgresError) in
                try OrderStore.apply([ApplyItem(source: .callback, callbackID: nil, evidence: evidence)], on: connection)
            }
            #expect(plan.decisions == [.conflict(.paidAfterClose, detail: "payment for a closed order")])
        }
    }

    @Test func aPaymentThatWinsTheRaceLeavesTheOrderPaid() async throws {
        try await APIHarness.with { harness in
            _ = try await harness.desk.create(body: Array(#"{"out_trade_no":"RACE_1","channel":"wechatpay","scene":"native","amount":"3.00","subject":"x"}"#.utf8))
            // The buyer pays at the channel just before the close reaches it.
            harness.simulator.setOrder(channel: "wechatpay", ChannelOrder(outTradeNo: "RACE_1", channelTradeNo: "4200001", status: .paid,
                                                                          amountMinor: 300, paidAt: Date()))
            do {
                _ = try await harness.desk.close("RACE_1")
                Issue.record("closed a paid order")
            } catch let error as OrderError {
                #expect(error.code == "order_paid")
            }
            let stored = try #require(try SiteOrderStore.find("RACE_1", on: harness.database.connect()))
            #expect(stored.status == .paid)
            #expect(stored.channelTradeNo == "4200001")
            // And a notify that committed before the close's own write keeps the order paid.
            let connection = try harness.database.connect()
            let after = try SiteOrderStore.close("RACE_1", source: .api, detail: "late", on: connection)
            #expect(after?.status == .paid)
            #expect(try harness.count("SELECT count(*) FROM order_events WHERE to_status = 'closed'") == 0)
        }
    }

    @Test func expiredOrdersAreClosedByTheSweeperThroughTheSamePath() async throws {
        try await APIHarness.with { harness in
            _ = try await harness.desk.create(body: Array(#"{"out_trade_no":"EXP_1","channel":"alipay","scene":"page","amount":"1.00","subject":"x","expires_in_seconds":60}"#.utf8))
            _ = try await harness.desk.create(body: Array(#"{"out_trade_no":"LIVE_1","channel":"alipay","scene":"page","amount":"1.00","subject":"x","expires_in_seconds":3600}"#.utf8))
            // Nothing has expired yet: "trade does not exist" before expiry is never read as unpaid.
            #expect(try await harness.desk.closeExpired(limit: 10, everySeconds: 600) == 0)
            try harness.database.connect().query("UPDATE orders SET expires_at = now() - interval '1 second' WHERE out_trade_no = 'EXP_1'")
            #expect(try await harness.desk.closeExpired(limit: 10, everySeconds: 600) == 1)
            let connection = try harness.database.connect()
            #expect(try SiteOrderStore.find("EXP_1", on: connection)?.status == .closed)
            #expect(try SiteOrderStore.find("LIVE_1", on: connection)?.status == .created)
            #expect(try harness.count("SELECT count(*) FROM order_events WHERE source = 'expiry' AND to_status = 'closed'") == 1)
        }
    }

    @Test func aChannelThatIsDownLeavesTheOrderCreatedAndSaysSo() async throws {
        // Nothing listens on port 1: every channel call fails to connect.
        try await APIHarness.with(channelBaseURL: "http://127.0.0.1:1") { harness in
            do {
                _ = try await harness.desk.create(body: Array(#"{"out_trade_no":"DOWN_1","channel":"wechatpay","scene":"native","amount":"1.00","subject":"x"}"#.utf8))
                Issue.record("created without the channel")
            } catch let error as OrderError {
                #expect(error.code == "channel_unavailable")
                #expect(error.status == 503)
            }
            #expect(try SiteOrderStore.find("DOWN_1", on: harness.database.connect())?.status == .created)
            do {
                _ = try await harness.desk.close("DOWN_1")
                Issue.record("closed without the channel")
            } catch let error as OrderError {
                #expect(error.code == "channel_unavailable")
            }
            #expect(try SiteOrderStore.find("DOWN_1", on: harness.database.connect())?.status == .created)
            // A deduct whose answer is lost is unknown, never failed: the order stays created, confirming.
            let deduct = try await harness.desk.create(body: Array(#"{"out_trade_no":"DOWN_2","channel":"points","scene":"deduct","amount":"1.00","subject":"x","payer":{"user_id":"m"}}"#.utf8))
            #expect(deduct.confirming)
            #expect(deduct.order.status == .created)
        }
    }

    @Test func theDatabaseDownIsA503AndNoChannelIsCalled() async throws {
        try await APIHarness.with(databaseURL: "postgres://postgres@127.0.0.1:1/none?connect_timeout=1") { harness in
            try await harness.test { client in
                try await client.execute(uri: "/v1/orders", method: .post, headers: APIHarness.auth,
                                         body: ByteBuffer(string: #"{"channel":"wechatpay","scene":"native","amount":"1.00","subject":"x"}"#)) { response in
                    #expect(response.status == .serviceUnavailable)
                    let answerCode = try code(response)
                        #expect(answerCode == "database_unavailable")
                }
            }
            #expect(harness.simulator.queryCount(channel: "wechatpay") == 0)
        }
    }

    @Test func adminAccessIsOffWithoutAToken() {
        #expect(!AdminAccess(token: nil).allows(authorization: "Bearer "))
        #expect(!AdminAccess(token: "").allows(authorization: "Bearer "))
        #expect(!AdminAccess(tokenFile: "/nonexistent").isEnabled)
        #expect(AdminAccess(token: "t").allows(authorization: "Bearer t"))
        #expect(!AdminAccess(token: "t").allows(authorization: "bearer t"))
        #expect(!AdminAccess(token: "t").allows(authorization: "Bearer tt"))
    }
}
