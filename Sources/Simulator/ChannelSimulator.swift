public import PayhookCore
import Channels
import Foundation
import Synchronization

/// The simulated channels: an order book per channel, the order creation, close and query
/// APIs answering from it, the buyer's pages (cashier, scanned QR code, phone) that pay its
/// trades and send the signed notifies, scriptable faults for queries, calls and notifies,
/// counts, and a cache of signed query answers. Requests are read and answers signed by
/// the channel sides of ``SimulatedChannels``, exactly as the real channels would.
///
/// Serve it over HTTP with ``ChannelSimulatorServer``, or call ``respond(method:path:query:headers:body:)`` in-process.
public final class ChannelSimulator: Sendable {
    public let channels: SimulatedChannels
    let alipay: AlipayChannelSide
    let wechatPay: WeChatPayChannelSide
    let points: PointsChannelSide
    let state: Mutex<State>

    /// WeChat Pay and points answers carry a signed timestamp checked against a 300 s skew,
    /// so a cached answer is re-signed once it is this old. Alipay answers carry none.
    static let timestampedAnswerLifetime: TimeInterval = 240

    struct OrderKey: Hashable {
        var channel: String
        var outTradeNo: String
    }

    struct CachedAnswer {
        var order: ChannelOrder?
        var response: ChannelResponse
        var signedAt: Date
    }

    struct State {
        var books: [String: [String: ChannelOrder]] = [:]
        var scripts: [OrderKey: [QueryBehaviour]] = [:]
        var orderQueries: [OrderKey: Int] = [:]
        var channelQueries: [String: Int] = [:]
        var answers: [OrderKey: CachedAnswer] = [:]
        var defaults = DefaultQueryBehaviour()
        var signatures = 0
        var stopping = false
        /// Creation and close calls: scripts, defaults (rates, latency, hold) and counts.
        var callScripts: [OrderKey: [CallBehaviour]] = [:]
        var callDefaults = DefaultQueryBehaviour()
        var channelCalls: [String: Int] = [:]
        /// What the buyer's pages are reached by: a QR code's or code_url's token, a prepay_id, an h5 ticket.
        var tickets: [String: OrderKey] = [:]
        /// The QR code a precreate answered, repeated for a repeat of the same precreate.
        var qrCodes: [OrderKey: String] = [:]
        /// The first answer to each deduct, repeated (signed afresh) for the same body.
        var deductAnswers: [OrderKey: [UInt8]] = [:]
        var deductOutcomes: [String: DeductOutcome] = [:]
        var notifyScripts: [OrderKey: [NotifyFault]] = [:]
        var notifyDefaults = DefaultNotifyBehaviour()
        var notifyCounts: [OrderKey: NotifyCounts] = [:]
        var deliveries: [Int: Task<Void, Never>] = [:]
        var nextDelivery = 0
        /// `http://host:port` for absolute links (QR codes, h5_url) when a request names no Host.
        var baseURL = "http://127.0.0.1"
    }

    public init(channels: SimulatedChannels, defaultBehaviour: DefaultQueryBehaviour = DefaultQueryBehaviour()) {
        self.channels = channels
        alipay = channels.alipaySide
        wechatPay = channels.wechatPaySide
        points = channels.pointsSide
        var initial = State()
        initial.defaults = defaultBehaviour
        state = Mutex(initial)
    }

    // MARK: Order book

    /// Adds the order to `channel`'s book, or replaces the one with its `outTradeNo`.
    public func setOrder(channel: String, _ order: ChannelOrder) {
        state.withLock { $0.books[channel, default: [:]][order.outTradeNo] = order }
    }

    /// Adds or replaces many orders at once.
    public func setOrders(channel: String, _ orders: [ChannelOrder]) {
        state.withLock { state in
            for order in orders { state.books[channel, default: [:]][order.outTradeNo] = order }
        }
    }

    /// The book's order, if any.
    public func order(channel: String, outTradeNo: String) -> ChannelOrder? {
        state.withLock { $0.books[channel]?[outTradeNo] }
    }

    /// Takes the order out of the book (queries then answer "not found").
    public func removeOrder(channel: String, outTradeNo: String) {
        _ = state.withLock { $0.books[channel]?.removeValue(forKey: outTradeNo) }
    }

    // MARK: Behaviour

    /// The next queries of this order take these behaviours, one step per query; after the
    /// last step the default applies again. Replaces an earlier script for the order.
    public func script(channel: String, outTradeNo: String, _ steps: [QueryBehaviour]) {
        state.withLock { $0.scripts[OrderKey(channel: channel, outTradeNo: outTradeNo)] = steps }
    }

    /// What unscripted queries get.
    public var defaultBehaviour: DefaultQueryBehaviour {
        get { state.withLock { $0.defaults } }
        set { state.withLock { $0.defaults = newValue } }
    }

    // MARK: Counts

    /// Queries read for this order (every behaviour counts, a timed-out one too).
    public func queryCount(channel: String, outTradeNo: String) -> Int {
        state.withLock { $0.orderQueries[OrderKey(channel: channel, outTradeNo: outTradeNo), default: 0] }
    }

    /// Every request to the channel's query API, unreadable ones included.
    public func queryCount(channel: String) -> Int {
        state.withLock { $0.channelQueries[channel, default: 0] }
    }

    /// Answers signed so far (cached answers are signed once).
    public var signatureCount: Int { state.withLock { $0.signatures } }

    // MARK: Warm-up

    /// Signs the answer of every order in the books (or only the given ones) as queries with
    /// the default behaviour would get it, so a benchmark's timed window measures Payhook,
    /// not the simulator's RSA signing. Spreads the work over the cores.
    public func prepare(only keys: [(channel: String, outTradeNo: String)]? = nil) async {
        let work: [(OrderKey, ChannelOrder)] = state.withLock { state in
            if let keys {
                return keys.compactMap { key in
                    state.books[key.channel]?[key.outTradeNo].map { (OrderKey(channel: key.channel, outTradeNo: key.outTradeNo), $0) }
                }
            }
            return state.books.flatMap { channel, book in book.map { (OrderKey(channel: channel, outTradeNo: $0.key), $0.value) } }
        }
        let lanes = max(1, ProcessInfo.processInfo.activeProcessorCount)
        await withTaskGroup(of: Void.self) { group in
            for lane in 0..<lanes {
                group.addTask {
                    var index = lane
                    while index < work.count {
                        _ = self.signedAnswer(key: work[index].0, order: work[index].1, now: Date())
                        index += lanes
                    }
                }
            }
        }
    }

    // MARK: Answering

    /// Lets every held (``QueryBehaviour/timeout``) request go now; later ones are not held.
    public func releaseHeldRequests() {
        let deliveries = state.withLock { state in
            state.stopping = true
            return state.deliveries.values
        }
        for delivery in deliveries { delivery.cancel() }
    }

    /// The answer to a request to the simulator's query APIs, or nil when no channel serves
    /// `path` (the caller answers 404). `path` is as sent, percent-encoded; `query` has no `?`.
    public func respond(method: String, path: String, query: String, headers: [HeaderField], body: [UInt8]) async -> ChannelResponse? {
        let now = Date()
        let request = ReceivedRequest(method: method, path: path, query: query, headers: headers, body: body)
        if path == "/alipay/gateway.do" {
            return await alipayGateway(request, now: now)
        }
        if path.hasPrefix("/alipay/_") {
            return alipayBuyer(request, now: now)
        }
        if path.hasPrefix("/wechatpay/_phone") {
            return wechatPayPhone(request, now: now)
        }
        if path.hasPrefix("/wechatpay/") {
            // The merchant signs the target without the base URL's path, as for api.mch.weixin.qq.com.
            var request = request
            request.path = String(path.dropFirst("/wechatpay".count))
            if request.path.hasPrefix(WeChatPayRefund.refundsPath) {
                return await wechatPayRefunds(request, now: now)
            }
            if method == "POST" { return await wechatPayCall(request, now: now) }
            return await answer(channel: SimulatedChannels.wechatPayID, read: wechatPay.readQueryRequest(request, now: now), now: now)
        }
        if path.hasPrefix("/points/api/") {
            // Points requests sign the whole target, base path included.
            if method == "POST" { return await pointsCall(request, now: now) }
            return await answer(channel: SimulatedChannels.pointsID, read: points.readQueryRequest(request, now: now), now: now)
        }
        return nil
    }

    func answer(channel: String, read: Result<String, ChannelResponseError>, now: Date) async -> ChannelResponse {
        let outTradeNo: String
        switch read {
        case .failure(let refusal):
            state.withLock { $0.channelQueries[channel, default: 0] += 1 }
            return refusal.response
        case .success(let no): outTradeNo = no
        }
        let key = OrderKey(channel: channel, outTradeNo: outTradeNo)
        let uniform = Double.random(in: 0..<1)
        let (behaviour, book, defaults) = state.withLock { state -> (QueryBehaviour, ChannelOrder?, DefaultQueryBehaviour) in
            state.channelQueries[channel, default: 0] += 1
            state.orderQueries[key, default: 0] += 1
            var behaviour: QueryBehaviour
            if var steps = state.scripts[key], !steps.isEmpty {
                behaviour = steps.removeFirst()
                state.scripts[key] = steps.isEmpty ? nil : steps
            } else {
                behaviour = state.defaults.draw(uniform)
            }
            // A precreated trade nobody scanned is not Alipay's yet.
            let book = state.books[channel]?[outTradeNo].flatMap { $0.existsAtChannel ? $0 : nil }
            return (behaviour, book, state.defaults)
        }
        if defaults.latency > .zero { try? await Task.sleep(for: defaults.latency) }
        switch behaviour {
        case .normal:
            return signedAnswer(key: key, order: book, now: Date())
        case .notFound:
            return signedAnswer(key: key, order: nil, now: Date())
        case .status(let status):
            var changed = book
            changed?.status = status
            return signedAnswer(key: key, order: changed, now: Date())
        case .amount(let amount):
            var changed = book
            changed?.amountMinor = amount
            return signedAnswer(key: key, order: changed, now: Date())
        case .latency(let delay):
            try? await Task.sleep(for: delay)
            return signedAnswer(key: key, order: book, now: Date())
        case .httpError(let status):
            return Self.systemError(channel: channel, status: status)
        case .timeout:
            await hold(for: defaults.holdDuration)
            return Self.systemError(channel: channel, status: 504)
        }
    }

    /// Sleeps in short steps so that stopping the server lets held requests go promptly.
    func hold(for duration: Duration) async {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: duration)
        while clock.now < deadline, !state.withLock({ $0.stopping }) {
            do { try await Task.sleep(for: .milliseconds(50)) } catch { return }
        }
    }

    /// The signed answer for `order` as this channel states it, from the cache when the
    /// same order state was signed recently enough.
    func signedAnswer(key: OrderKey, order: ChannelOrder?, now: Date) -> ChannelResponse {
        let timestamped = key.channel != SimulatedChannels.alipayID
        let cached = state.withLock { $0.answers[key] }
        if let cached, cached.order == order,
           !timestamped || now.timeIntervalSince(cached.signedAt) < Self.timestampedAnswerLifetime {
            return cached.response
        }
        let response: ChannelResponse
        switch key.channel {
        case SimulatedChannels.alipayID: response = alipay.queryResponse(for: order, outTradeNo: key.outTradeNo)
        case SimulatedChannels.wechatPayID: response = wechatPay.queryResponse(for: order, outTradeNo: key.outTradeNo, now: now)
        default: response = points.queryResponse(for: order, outTradeNo: key.outTradeNo, now: now)
        }
        state.withLock { state in
            state.answers[key] = CachedAnswer(order: order, response: response, signedAt: now)
            state.signatures += 1
        }
        return response
    }

    /// The channel's "try again later" answer (unsigned, as the adapters read a 5xx before any signature).
    static func systemError(channel: String, status: Int) -> ChannelResponse {
        if channel == SimulatedChannels.alipayID {
            return ChannelResponse(status: status, headers: [HeaderField(name: "Content-Type", value: "text/html;charset=utf-8")],
                                   body: Array("<html><body>system busy</body></html>".utf8))
        }
        let body = #"{"code":"SYSTEM_ERROR","message":"simulated system error"}"#
        return ChannelResponse(status: status, headers: [HeaderField(name: "Content-Type", value: "application/json")],
                               body: Array(body.utf8))
    }
}
