public import ChannelClients
public import Channels
public import Foundation
public import Logging
public import Orders
public import PayhookCore
public import Postgres

/// Where the channels call Payhook back: `{public_base_url}/notify/{channel}` and
/// `/return/{channel}`, so each channel calls the route that verifies it.
public struct SiteURLs: Sendable, Equatable {
    public var publicBaseURL: String

    public init(publicBaseURL: String) {
        var base = publicBaseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.publicBaseURL = base
    }

    public func notifyURL(channel: String) -> String { "\(publicBaseURL)/notify/\(channel)" }
    public func returnURL(channel: String) -> String { "\(publicBaseURL)/return/\(channel)" }
}

/// Runs a statement on some connection. `SerialConnection` and `SerialConnections` do.
public protocol OrderDatabase: Sendable {
    func run<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T
}

extension SerialConnection: OrderDatabase {}
extension SerialConnections: OrderDatabase {}

/// The site's side of orders: create at the channel, close, look up. The API, the
/// `payhook orders` commands and the expiry sweeper all go through here, so an order is
/// made and closed one way only.
public struct OrderDesk: Sendable {
    public let clients: [String: ChannelClient]
    public let urls: SiteURLs
    let database: any OrderDatabase
    let inserts: OrderInserts
    let logger: Logger

    public init(clients: [ChannelClient], urls: SiteURLs, database: any OrderDatabase, logger: Logger) {
        self.clients = Dictionary(clients.map { ($0.channelID, $0) }, uniquingKeysWith: { first, _ in first })
        self.urls = urls
        self.database = database
        inserts = OrderInserts(database: database)
        self.logger = logger
    }

    public var channelTypes: [String: ChannelType] { clients.mapValues(\.adapter.channelType) }

    /// What a creation answered.
    public struct Created: Sendable {
        public enum Kind: Sendable, Equatable {
            /// Written now (`201`).
            case new
            /// The same request again (`200`).
            case repeated
        }

        public var kind: Kind
        public var order: SiteOrderStore.StoredOrder
        /// What the front end needs; nil once the order is paid or closed.
        public var pay: FrontEndParameters?
        /// The channel took the order but has not said how it ended (points `PROCESSING`,
        /// or no answer): Payhook asks again (`202`).
        public var confirming: Bool
    }

    // MARK: Create

    public func create(body: [UInt8], now: Date = Date()) async throws(OrderError) -> Created {
        let request = try OrderRequest.parse(body, channels: channelTypes, now: now)
        return try await create(request, now: now)
    }

    public func create(_ request: OrderRequest, now: Date = Date()) async throws(OrderError) -> Created {
        guard let client = clients[request.channel] else { throw .unknownChannel(request.channel) }
        let outTradeNo = request.outTradeNo ?? OrderRules.makeOutTradeNo(now: now)
        let expiresAt = request.expiresAt ?? request.expiresInSeconds.map { now.addingTimeInterval(TimeInterval($0)) }
        let new = SiteOrderStore.NewOrder(
            outTradeNo: outTradeNo, channel: request.channel, scene: request.scene.rawValue,
            amountMinor: request.amountMinor, currency: request.currency, subject: request.subject,
            description: request.description, expiresAt: expiresAt, returnURL: request.returnURL,
            attach: request.attach, payerJSON: request.payerJSON, requestDigest: request.digest)
        let outcome: SiteOrderStore.CreateOutcome
        do { outcome = try await inserts.create(new) } catch {
            logger.error("order database call failed", metadata: ["error": "\(error)"])
            throw .databaseUnavailable()
        }
        let order: SiteOrderStore.StoredOrder
        let kind: Created.Kind
        switch outcome {
        case .created(let stored): (order, kind) = (stored, .new)
        case .repeated(let stored): (order, kind) = (stored, .repeated)
        case .conflict: throw .orderConflict()
        }
        guard order.status == .created else { return Created(kind: kind, order: order, pay: nil, confirming: false) }
        return try await askChannel(order, kind: kind, client: client, now: now)
    }

    /// The creation call (or local signing) for an order that is written and still `created`.
    /// A repeat asks again, so the front end gets fresh parameters where the channel allows.
    private func askChannel(_ order: SiteOrderStore.StoredOrder, kind: Created.Kind, client: ChannelClient,
                            now: Date) async throws(OrderError) -> Created {
        let channelOrder = channelRequest(order)
        let step: CreationStep
        do { step = try client.adapter.creationStep(channelOrder, now: now) } catch {
            throw Self.refusal(error)
        }
        switch step {
        case .ready(let pay):
            return Created(kind: kind, order: order, pay: pay, confirming: false)
        case .call(let request):
            let result: CreationResult
            do {
                let response = try await client.send(request)
                result = try client.adapter.creationResult(response, order: channelOrder, now: Date())
            } catch where error.isTransient {
                logger.warning("order creation call failed", metadata: [
                    "channel": "\(order.channel)", "out_trade_no": "\(order.outTradeNo)", "error": "\(error)",
                ])
                // A deduct that timed out may have happened: never "failed", ask the channel.
                guard order.scene == PaymentScene.deduct.rawValue else { throw .channelUnavailable(error.description) }
                let settled = try await confirmByQuery(order, client: client)
                return Created(kind: kind, order: settled, pay: nil, confirming: settled.status == .created)
            } catch {
                logger.error("channel refused the order", metadata: [
                    "channel": "\(order.channel)", "out_trade_no": "\(order.outTradeNo)", "error": "\(error)",
                ])
                throw Self.refusal(error)
            }
            switch result {
            case .created(let pay):
                return Created(kind: kind, order: order, pay: pay, confirming: false)
            case .processing(let pay):
                return Created(kind: kind, order: order, pay: pay, confirming: true)
            case .settled(let evidence, let pay):
                let after = try await apply(evidence, source: .api, note: "the channel settled the order when it was made")
                return Created(kind: kind, order: after ?? order, pay: after?.status == .created ? pay : nil,
                               confirming: false)
            }
        }
    }

    /// The order as the channel builders take it, from what is stored (so a repeat sends the
    /// same body: WeChat Pay then answers a fresh prepay id for the same order).
    func channelRequest(_ order: SiteOrderStore.StoredOrder) -> ChannelOrderRequest {
        let scene = PaymentScene(rawValue: order.scene ?? "") ?? .page
        let browserReturns: Set<PaymentScene> = [.page, .wap]
        return ChannelOrderRequest(
            outTradeNo: order.outTradeNo, scene: scene, amountMinor: order.amountMinor, currency: order.currency,
            subject: order.subject ?? order.outTradeNo, description: order.description, expiresAt: order.expiresAt,
            notifyURL: urls.notifyURL(channel: order.channel),
            returnURL: browserReturns.contains(scene) ? urls.returnURL(channel: order.channel) : nil,
            attach: order.attach, payer: OrderRequest.payer(fromJSON: order.payerJSON))
    }

    // MARK: Close

    /// The channel's close call, then a query; the order is `closed` only when the channel
    /// confirms, or says it never had the trade. A payment that the channel reports (or a
    /// notify that committed first) wins: the order ends `paid`, and close answers `order_paid`.
    public func close(_ id: String, source: EvidenceSource = .api) async throws(OrderError) -> SiteOrderStore.StoredOrder {
        guard let order = try await db({ try SiteOrderStore.find(id, on: $0) }) else { throw .orderNotFound() }
        switch order.status {
        case .paid, .refunded: throw .orderPaid()
        case .closed: return order
        case .created: break
        }
        guard let client = clients[order.channel] else { throw .unknownChannel(order.channel) }
        var closeResult: CloseResult?
        do {
            if let request = try client.adapter.closeRequest(outTradeNo: order.outTradeNo, now: Date()) {
                let response = try await client.send(request)
                closeResult = try client.adapter.closeResult(response, outTradeNo: order.outTradeNo, now: Date())
            }
        } catch where error.isTransient {
            throw .channelUnavailable(error.description)
        } catch {
            throw Self.refusal(error)
        }
        // Always ask after closing: the buyer may have paid just before the close.
        let answer: Result<OrderQueryResult, QueryError>
        do { answer = .success(try await client.queryOrder(outTradeNo: order.outTradeNo)) } catch { answer = .failure(error) }
        let why = source == .expiry ? "expired" : "closed through the site API"
        switch (answer, closeResult) {
        case (.success(.found(let evidence)), _) where evidence.status == .paid:
            let after = try await apply(evidence, source: source, note: "paid before the close reached the channel")
            if after?.status == .paid { throw .orderPaid() }
            return after ?? order
        case (.success(.found(let evidence)), _) where evidence.status == .closed:
            return try await closeLocally(order, source: source, detail: "\(why); the channel confirms it closed")
        case (.success(.notFound), .closed?), (.success(.notFound), .notFound?), (.success(.notFound), nil):
            return try await closeLocally(order, source: source, detail: "\(why); the channel never had the trade")
        case (.failure, .closed?):
            return try await closeLocally(order, source: source, detail: "\(why); the channel confirmed the close")
        case (.success(.found), .notClosable?), (.success(.found), nil):
            throw .orderPaying()
        case (.success(.found), _):
            // Closed at the channel, yet its query still says it is open: try again later.
            throw .channelUnavailable("the channel closed the trade but its query still reports it open")
        case (.failure(let error), _):
            throw error.isTransient ? .channelUnavailable(error.description) : Self.refusal(error)
        case (.success(.notFound), .notClosable?):
            throw .channelUnavailable("the channel refused the close yet has no such trade")
        }
    }

    private func closeLocally(_ order: SiteOrderStore.StoredOrder, source: EvidenceSource,
                              detail: String) async throws(OrderError) -> SiteOrderStore.StoredOrder {
        let after = try await db { try SiteOrderStore.close(order.outTradeNo, source: source, detail: detail, on: $0) }
        guard let after else { throw .orderNotFound() }
        if after.status == .paid { throw .orderPaid() }
        logger.notice("order closed", metadata: [
            "channel": "\(order.channel)", "out_trade_no": "\(order.outTradeNo)", "source": "\(source.rawValue)",
        ])
        return after
    }

    /// Closes orders past `expires_at` (the sweeper's second task); returns how many it asked about.
    public func closeExpired(limit: Int, everySeconds: Int) async throws(OrderError) -> Int {
        let expired = try await db { try SiteOrderStore.claimExpired(limit: limit, everySeconds: everySeconds, on: $0) }
        for order in expired {
            do { _ = try await close(order.outTradeNo, source: .expiry) } catch {
                if error.code != "order_paid" {
                    logger.warning("expired order not closed yet", metadata: [
                        "channel": "\(order.channel)", "out_trade_no": "\(order.outTradeNo)", "error": "\(error)",
                    ])
                }
            }
        }
        return expired.count
    }

    // MARK: Look up

    public func find(_ id: String) async throws(OrderError) -> (SiteOrderStore.StoredOrder, [OrderLookup.Event])? {
        try await db { connection in
            guard let order = try SiteOrderStore.find(id, on: connection) else { return nil }
            return (order, try OrderLookup.events(order.outTradeNo, on: connection))
        }
    }

    // MARK: Helpers

    /// After a deduct whose answer was lost: one query; a final answer is applied.
    private func confirmByQuery(_ order: SiteOrderStore.StoredOrder,
                                client: ChannelClient) async throws(OrderError) -> SiteOrderStore.StoredOrder {
        guard case .found(let evidence)? = try? await client.queryOrder(outTradeNo: order.outTradeNo),
              evidence.status.isFinal else { return order }
        return try await apply(evidence, source: .api, note: "confirmed by query after the creation call failed") ?? order
    }

    /// Applies the channel's own statement through the same state machine as a callback.
    private func apply(_ evidence: OrderEvidence, source: EvidenceSource,
                       note: String) async throws(OrderError) -> SiteOrderStore.StoredOrder? {
        try await db { connection in
            try connection.transaction { connection throws(PostgresError) in
                _ = try OrderStore.apply([ApplyItem(source: source, callbackID: nil, evidence: evidence, note: note)],
                                         on: connection)
            }
            return try SiteOrderStore.find(evidence.outTradeNo, on: connection)
        }
    }

    func db<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws(OrderError) -> T {
        do { return try await database.run(body) } catch {
            logger.error("order database call failed", metadata: ["error": "\(error)"])
            throw .databaseUnavailable()
        }
    }

    static func refusal(_ error: QueryError) -> OrderError {
        .channelRefused(error.description)
    }
}
