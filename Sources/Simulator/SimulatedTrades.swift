import PayhookCore
import Channels
public import Foundation
import Synchronization

/// Why the buyer (or `POST /_sim/pay`) could not pay a trade.
public enum PaymentRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    /// The channel has no such trade (or, at Alipay, it does not exist yet).
    case noSuchTrade
    case alreadyPaid
    case closed

    public var description: String {
        switch self {
        case .noSuchTrade: "no such trade"
        case .alreadyPaid: "the trade is paid already"
        case .closed: "the trade is closed"
        }
    }
}

/// A trade the buyer paid: the order as the books now hold it and, for Alipay page and
/// wap, where the browser goes next.
public struct SimulatedPayment: Sendable {
    public var order: ChannelOrder
    /// Alipay page and wap: `return_url` with the signed sync-return parameters; nil
    /// without a `return_url` and for the other channels.
    public var returnURL: String?
}

/// The simulated channels' order creation and close calls, and the buyer's side of paying.
extension ChannelSimulator {
    // MARK: Controls

    /// The next creation or close calls for this order take these behaviours, one step per
    /// call; after the last step the default applies again.
    public func scriptCalls(channel: String, outTradeNo: String, _ steps: [CallBehaviour]) {
        state.withLock { $0.callScripts[OrderKey(channel: channel, outTradeNo: outTradeNo)] = steps }
    }

    /// What unscripted creation and close calls get: the error and timeout rates, the added
    /// latency and the hold, read as for queries. Default: no faults.
    public var defaultCallBehaviour: DefaultQueryBehaviour {
        get { state.withLock { $0.callDefaults } }
        set { state.withLock { $0.callDefaults = newValue } }
    }

    /// Creation and close calls received by the channel, refused ones included.
    public func callCount(channel: String) -> Int {
        state.withLock { $0.channelCalls[channel, default: 0] }
    }

    /// How the points partner answers this member's next deducts (nil: ``DeductOutcome/paid``).
    public func setDeductOutcome(userID: String, _ outcome: DeductOutcome?) {
        state.withLock { $0.deductOutcomes[userID] = outcome }
    }

    /// The base of absolute links the simulator hands out (QR codes, `h5_url`) when a
    /// request names no `Host`. ``ChannelSimulatorServer`` sets it to its own base URL.
    public var linkBaseURL: String {
        get { state.withLock { $0.baseURL } }
        set { state.withLock { $0.baseURL = SimulatedChannels.trimmed(newValue) } }
    }

    // MARK: Paying

    /// Pays the trade as its buyer would: the books say paid, the channel's notify goes to
    /// the order's `notify_url` (subject to the notify faults), and for Alipay page and wap
    /// the browser's signed return URL is made. A precreated Alipay trade comes to exist.
    public func pay(channel: String, outTradeNo: String, now: Date = Date()) throws(PaymentRefusal) -> SimulatedPayment {
        // Whole seconds: the channels state times to the second, so notify and query agree.
        let paidAt = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        let result = state.withLock { state -> Result<ChannelOrder, PaymentRefusal> in
            guard var order = state.books[channel]?[outTradeNo] else { return .failure(.noSuchTrade) }
            switch order.status {
            case .paid: return .failure(.alreadyPaid)
            case .closed: return .failure(.closed)
            default: break
            }
            order.status = .paid
            order.paidAt = paidAt
            order.existsAtChannel = true
            if channel == SimulatedChannels.pointsID { order.points = order.amountMinor }
            state.books[channel]?[outTradeNo] = order
            return .success(order)
        }
        let order = try result.get()
        sendNotify(channel: channel, order: order, now: paidAt)
        var returnURL: String?
        if channel == SimulatedChannels.alipayID, order.scene == .page || order.scene == .wap, let base = order.returnURL {
            returnURL = base + (base.contains("?") ? "&" : "?") + alipay.returnQuery(for: order, timestamp: paidAt)
        }
        return SimulatedPayment(order: order, returnURL: returnURL)
    }

    // MARK: Faults for calls

    /// Runs a creation or close call under its scripted or drawn behaviour; `work` changes
    /// the books and makes the answer (it does not run for an error or a timeout).
    func performCall(channel: String, outTradeNo: String, _ work: () -> ChannelResponse) async -> ChannelResponse {
        let key = OrderKey(channel: channel, outTradeNo: outTradeNo)
        let uniform = Double.random(in: 0..<1)
        let (behaviour, defaults) = state.withLock { state -> (CallBehaviour, DefaultQueryBehaviour) in
            state.channelCalls[channel, default: 0] += 1
            if var steps = state.callScripts[key], !steps.isEmpty {
                let step = steps.removeFirst()
                state.callScripts[key] = steps.isEmpty ? nil : steps
                return (step, state.callDefaults)
            }
            return (state.callDefaults.drawCall(uniform), state.callDefaults)
        }
        if defaults.latency > .zero { try? await Task.sleep(for: defaults.latency) }
        switch behaviour {
        case .normal:
            return work()
        case .latency(let delay):
            try? await Task.sleep(for: delay)
            return work()
        case .httpError(let status):
            return Self.systemError(channel: channel, status: status)
        case .timeout:
            await hold(for: defaults.holdDuration)
            return Self.systemError(channel: channel, status: 504)
        case .lostAnswer:
            _ = work()
            await hold(for: defaults.holdDuration)
            return Self.systemError(channel: channel, status: 504)
        }
    }

    /// A call refused before its order was known (bad signature, bad field) still counts.
    func refusedCall(channel: String, _ refusal: ChannelResponseError) -> ChannelResponse {
        state.withLock { $0.channelCalls[channel, default: 0] += 1 }
        return refusal.response
    }

    // MARK: Alipay

    /// `/alipay/gateway.do`: the query, precreate and close calls, and the page and wap
    /// cashier (GET of `pay_url`, or the POSTed form).
    func alipayGateway(_ request: ReceivedRequest, now: Date) async -> ChannelResponse {
        let channel = SimulatedChannels.alipayID
        let read: AlipayGatewayRequest
        switch alipay.readGatewayRequest(request) {
        case .failure(let refusal): return await answer(channel: channel, read: .failure(refusal), now: now)
        case .success(let request): read = request
        }
        switch read.method {
        case AlipayQuery.method:
            return await answer(channel: channel, read: alipay.queryOutTradeNo(read), now: now)
        case "alipay.trade.page.pay", "alipay.trade.wap.pay":
            return alipayCashier(read, scene: read.method == "alipay.trade.page.pay" ? .page : .wap, now: now)
        case "alipay.trade.precreate":
            switch readAlipayOrder(read, productCode: nil) {
            case .failure(let refusal): return refusedCall(channel: channel, refusal)
            case .success(let order):
                let base = linkBase(request)
                return await performCall(channel: channel, outTradeNo: order.outTradeNo) {
                    alipayPrecreate(read, order: order, linkBase: base, now: now)
                }
            }
        case AlipayRefund.queryMethod:
            guard let outTradeNo = read.biz["out_trade_no"]?.stringValue, let refundNo = read.biz["out_request_no"]?.stringValue else {
                return refusedCall(channel: channel, alipay.error("40002", "isv.missing-biz-content", node: read.node))
            }
            let book = state.withLock { state -> ChannelOrder? in
                state.channelQueries[channel, default: 0] += 1
                return state.books[channel]?[outTradeNo]
            }
            return alipay.refundQueryResponse(for: book, outTradeNo: outTradeNo, refundNo: refundNo)
        case AlipayRefund.refundMethod:
            return await alipayRefund(read, now: now)
        case "alipay.trade.close":
            guard let outTradeNo = read.biz["out_trade_no"]?.stringValue, !outTradeNo.isEmpty else {
                return refusedCall(channel: channel, alipay.error("40002", "isv.invalid-parameter", node: read.node, subMsg: "out_trade_no"))
            }
            return await performCall(channel: channel, outTradeNo: outTradeNo) { alipayClose(read, outTradeNo: outTradeNo, now: now) }
        case AlipayAdapter.certificateDownloadMethod:
            return alipay.certificateDownload(read)
        default:
            return alipay.error("40002", "isv.invalid-method", node: read.node).response
        }
    }

    /// The order a page, wap or precreate request describes, as a pending trade; or the
    /// parameter error Alipay gives for a missing or malformed field.
    func readAlipayOrder(_ read: AlipayGatewayRequest, productCode: String?) -> Result<ChannelOrder, ChannelResponseError> {
        func invalid(_ field: String) -> Result<ChannelOrder, ChannelResponseError> {
            .failure(alipay.error("40002", "isv.invalid-parameter", node: read.node, subMsg: field))
        }
        let biz = read.biz
        guard let outTradeNo = biz["out_trade_no"]?.stringValue, OrderRules.outTradeNoProblem(outTradeNo, type: .alipay) == nil else {
            return invalid("out_trade_no")
        }
        guard let amountText = biz["total_amount"]?.stringValue, let amount = Money.parseMinorUnits(amountText),
            OrderRules.amountRange(type: .alipay).contains(amount)
        else { return invalid("total_amount") }
        guard let subject = biz["subject"]?.stringValue, !subject.isEmpty else { return invalid("subject") }
        if let productCode, biz["product_code"]?.stringValue != productCode { return invalid("product_code") }
        if let expire = biz["time_expire"]?.stringValue, Timestamps.parseAlipay(expire) == nil { return invalid("time_expire") }
        let notifyURL = read.fields.ascii("notify_url")
        if let notifyURL, !notifyURL.hasPrefix("http") { return invalid("notify_url") }
        return .success(ChannelOrder(
            outTradeNo: outTradeNo, channelTradeNo: "", status: .pending, amountMinor: amount, subject: subject,
            notifyURL: notifyURL, returnURL: read.fields.ascii("return_url"),
            attach: biz["passback_params"]?.stringValue, creationBody: read.bizBytes))
    }

    private enum Opening {
        case opened(ChannelOrder)
        case paid(ChannelOrder)
        case closed(ChannelOrder)
        case inconsistent
    }

    /// Opens the trade at Alipay (page and wap trades exist from here on) and answers the cashier page.
    private func alipayCashier(_ read: AlipayGatewayRequest, scene: PaymentScene, now: Date) -> ChannelResponse {
        var asked: ChannelOrder
        switch readAlipayOrder(read, productCode: scene == .page ? "FAST_INSTANT_TRADE_PAY" : "QUICK_WAP_WAY") {
        case .failure(let refusal): return refusal.response
        case .success(let order): asked = order
        }
        asked.scene = scene
        asked.channelTradeNo = Self.alipayTradeNo(now)
        let opening = state.withLock { state -> Opening in
            let book = state.books[SimulatedChannels.alipayID, default: [:]]
            if var order = book[asked.outTradeNo] {
                // Reopening the cashier is fine; changing what is sold is not.
                guard order.amountMinor == asked.amountMinor, order.subject == asked.subject else { return .inconsistent }
                switch order.status {
                case .paid: return .paid(order)
                case .closed: return .closed(order)
                default: break
                }
                order.existsAtChannel = true
                order.scene = scene
                order.notifyURL = asked.notifyURL ?? order.notifyURL
                order.returnURL = asked.returnURL ?? order.returnURL
                state.books[SimulatedChannels.alipayID, default: [:]][order.outTradeNo] = order
                return .opened(order)
            }
            state.books[SimulatedChannels.alipayID, default: [:]][asked.outTradeNo] = asked
            return .opened(asked)
        }
        switch opening {
        case .opened(let order):
            return BuyerPages.cashier(title: "Alipay cashier (simulated)", order: order, payAction: "/alipay/_cashier/pay",
                                      cancelAction: "/alipay/_cashier/cancel")
        case .paid(let order):
            return BuyerPages.message(title: "Already paid", text: "ACQ.TRADE_HAS_SUCCESS: this order is paid already.",
                                      link: order.returnURL.map { ("Back to the shop", $0) })
        case .closed(let order):
            return BuyerPages.message(title: "Trade closed", text: "ACQ.TRADE_HAS_CLOSE: this trade is closed.",
                                      link: order.returnURL.map { ("Back to the shop", $0) })
        case .inconsistent:
            return alipay.businessFailure(node: read.node, subCode: "ACQ.CONTEXT_INCONSISTENT", subMsg: "交易信息被篡改",
                                          outTradeNo: asked.outTradeNo)
        }
    }

    private enum Precreation {
        case code(String)
        case paid, closed, inconsistent
    }

    /// `alipay.trade.precreate`: the trade is booked but exists at Alipay only once its QR code is scanned.
    private func alipayPrecreate(_ read: AlipayGatewayRequest, order asked: ChannelOrder, linkBase: String, now: Date) -> ChannelResponse {
        var asked = asked
        asked.scene = .qr
        asked.channelTradeNo = Self.alipayTradeNo(now)
        asked.existsAtChannel = false
        let key = OrderKey(channel: SimulatedChannels.alipayID, outTradeNo: asked.outTradeNo)
        let ticket = Nonce.random(24).lowercased()
        let outcome = state.withLock { state -> Precreation in
            if let order = state.books[key.channel]?[key.outTradeNo] {
                guard order.amountMinor == asked.amountMinor, order.subject == asked.subject else { return .inconsistent }
                switch order.status {
                case .paid: return .paid
                case .closed: return .closed
                default: break
                }
                if let code = state.qrCodes[key] { return .code(code) }
            } else {
                state.books[key.channel, default: [:]][key.outTradeNo] = asked
            }
            let code = linkBase + "/alipay/_qr/" + ticket
            state.tickets[ticket] = key
            state.qrCodes[key] = code
            return .code(code)
        }
        switch outcome {
        case .code(let code):
            return alipay.answer(node: read.node, [
                .init(key: "code", value: .string("10000")), .init(key: "msg", value: .string("Success")),
                .init(key: "out_trade_no", value: .string(asked.outTradeNo)), .init(key: "qr_code", value: .string(code)),
            ])
        case .paid:
            return alipay.businessFailure(node: read.node, subCode: "ACQ.TRADE_HAS_SUCCESS", subMsg: "交易已被支付", outTradeNo: asked.outTradeNo)
        case .closed:
            return alipay.businessFailure(node: read.node, subCode: "ACQ.TRADE_HAS_CLOSE", subMsg: "交易已经关闭", outTradeNo: asked.outTradeNo)
        case .inconsistent:
            return alipay.businessFailure(node: read.node, subCode: "ACQ.CONTEXT_INCONSISTENT", subMsg: "交易信息被篡改",
                                          outTradeNo: asked.outTradeNo)
        }
    }

    private enum Closing {
        case closed(ChannelOrder)
        case notExisting, paid, closedAlready
    }

    /// Closes a pending trade; the books' state decides the answer.
    private func close(channel: String, outTradeNo: String) -> Closing {
        state.withLock { state in
            guard var order = state.books[channel]?[outTradeNo], order.existsAtChannel else { return .notExisting }
            switch order.status {
            case .paid: return .paid
            case .closed: return .closedAlready
            default: break
            }
            order.status = .closed
            state.books[channel]?[outTradeNo] = order
            return .closed(order)
        }
    }

    /// `alipay.trade.close`: a WAIT_BUYER_PAY trade closes and its TRADE_CLOSED notify goes out.
    private func alipayClose(_ read: AlipayGatewayRequest, outTradeNo: String, now: Date) -> ChannelResponse {
        switch close(channel: SimulatedChannels.alipayID, outTradeNo: outTradeNo) {
        case .closed(let order):
            sendNotify(channel: SimulatedChannels.alipayID, order: order, now: now)
            return alipay.answer(node: read.node, [
                .init(key: "code", value: .string("10000")), .init(key: "msg", value: .string("Success")),
                .init(key: "trade_no", value: .string(order.channelTradeNo)), .init(key: "out_trade_no", value: .string(outTradeNo)),
            ])
        case .notExisting:
            return alipay.businessFailure(node: read.node, subCode: "ACQ.TRADE_NOT_EXIST", subMsg: "交易不存在", outTradeNo: outTradeNo)
        case .paid, .closedAlready:
            return alipay.businessFailure(node: read.node, subCode: "ACQ.TRADE_STATUS_ERROR", subMsg: "交易状态不合法",
                                          outTradeNo: outTradeNo)
        }
    }

    /// The buyer's side at Alipay: the scanned QR code's page and the cashier's Pay and Cancel.
    func alipayBuyer(_ request: ReceivedRequest, now: Date) -> ChannelResponse {
        let channel = SimulatedChannels.alipayID
        if request.method == "GET", request.path.hasPrefix("/alipay/_qr/") {
            let ticket = String(request.path.dropFirst("/alipay/_qr/".count))
            // Scanning makes the trade Alipay's.
            let scanned = state.withLock { state -> ChannelOrder? in
                guard let key = state.tickets[ticket], var order = state.books[key.channel]?[key.outTradeNo] else { return nil }
                order.existsAtChannel = true
                state.books[key.channel]?[key.outTradeNo] = order
                return order
            }
            guard let order = scanned else { return BuyerPages.message(title: "Unknown QR code", text: "This QR code is not valid.", status: 404) }
            if let refusal = Self.unpayable(order) { return BuyerPages.message(title: "Cannot pay", text: refusal.description) }
            return BuyerPages.cashier(title: "Alipay on the buyer's phone (simulated scan)", order: order,
                                      payAction: "/alipay/_cashier/pay", cancelAction: "/alipay/_cashier/cancel")
        }
        guard request.method == "POST", let outTradeNo = Self.formValue(request.body, "out_trade_no") else {
            return BuyerPages.message(title: "Not found", text: "No such page.", status: 404)
        }
        switch request.path {
        case "/alipay/_cashier/pay":
            do {
                let payment = try pay(channel: channel, outTradeNo: outTradeNo, now: now)
                if let url = payment.returnURL { return BuyerPages.redirect(to: url) }
                return BuyerPages.message(title: "Paid", text: "The payment succeeded (TRADE_SUCCESS).")
            } catch {
                return BuyerPages.message(title: "Cannot pay", text: error.description, status: 409)
            }
        case "/alipay/_cashier/cancel":
            let back = order(channel: channel, outTradeNo: outTradeNo)?.returnURL
            return BuyerPages.message(title: "Payment cancelled", text: "The order was not paid.",
                                      link: back.map { ("Back to the shop", $0) })
        default:
            return BuyerPages.message(title: "Not found", text: "No such page.", status: 404)
        }
    }

    // MARK: WeChat Pay

    /// `POST /v3/pay/transactions/{native|jsapi|app|h5}` and `…/out-trade-no/{no}/close`
    /// (path without the base URL's own path).
    func wechatPayCall(_ request: ReceivedRequest, now: Date) async -> ChannelResponse {
        let channel = SimulatedChannels.wechatPayID
        if request.path.hasPrefix("/v3/pay/transactions/out-trade-no/") {
            switch wechatPay.readCloseRequest(request, now: now) {
            case .failure(let refusal): return refusedCall(channel: channel, refusal)
            case .success(let outTradeNo):
                return await performCall(channel: channel, outTradeNo: outTradeNo) { wechatPayClose(outTradeNo, now: now) }
            }
        }
        let scenes: [String: PaymentScene] = ["native": .native, "jsapi": .jsapi, "app": .app, "h5": .h5]
        let prefix = "/v3/pay/transactions/"
        guard request.path.hasPrefix(prefix), let scene = scenes[String(request.path.dropFirst(prefix.count))] else {
            return wechatPay.error(404, "NOT_FOUND", "no such resource", now: now).response
        }
        switch wechatPay.readPrepayRequest(request, scene: scene, now: now) {
        case .failure(let refusal): return refusedCall(channel: channel, refusal)
        case .success(let prepay):
            let base = linkBase(request)
            return await performCall(channel: channel, outTradeNo: prepay.outTradeNo) { wechatPayPrepay(prepay, linkBase: base, now: now) }
        }
    }

    private enum Prepaying {
        case ticket(String)
        case conflict, paid, closed
    }

    /// A prepay: the order exists from here on (NOTPAY); every call, a repeat too, gets a fresh
    /// ticket (code_url token, prepay_id or h5 ticket) for the buyer's phone.
    private func wechatPayPrepay(_ prepay: WeChatPrepay, linkBase: String, now: Date) -> ChannelResponse {
        let key = OrderKey(channel: SimulatedChannels.wechatPayID, outTradeNo: prepay.outTradeNo)
        let ticket = prepay.scene == .jsapi || prepay.scene == .app
            ? "wx" + Self.digits(14) + Nonce.random(18).lowercased() : Nonce.random(24).lowercased()
        let outcome = state.withLock { state -> Prepaying in
            if let order = state.books[key.channel]?[key.outTradeNo] {
                guard order.creationBody == prepay.body else { return .conflict }
                switch order.status {
                case .paid: return .paid
                case .closed: return .closed
                default: break
                }
            } else {
                state.books[key.channel, default: [:]][key.outTradeNo] = ChannelOrder(
                    outTradeNo: prepay.outTradeNo, channelTradeNo: "4200" + Self.digits(24), status: .pending,
                    amountMinor: prepay.amountMinor, currency: prepay.currency, subject: prepay.description, scene: prepay.scene,
                    notifyURL: prepay.notifyURL, attach: prepay.attach, payerID: prepay.openid, creationBody: prepay.body)
            }
            state.tickets[ticket] = key
            return .ticket(ticket)
        }
        switch outcome {
        case .ticket(let ticket):
            switch prepay.scene {
            case .native: return wechatPay.prepayResponse(key: "code_url", value: "weixin://wxpay/bizpayurl?pr=" + ticket, now: now)
            case .h5: return wechatPay.prepayResponse(key: "h5_url", value: linkBase + "/wechatpay/_phone?ticket=" + ticket, now: now)
            default: return wechatPay.prepayResponse(key: "prepay_id", value: ticket, now: now)
            }
        case .conflict:
            return wechatPay.error(400, "INVALID_REQUEST", "out_trade_no was used with other parameters", now: now).response
        case .paid:
            return wechatPay.error(400, "ORDER_PAID", "该订单已支付", now: now).response
        case .closed:
            return wechatPay.error(400, "ORDER_CLOSED", "订单已关闭", now: now).response
        }
    }

    private func wechatPayClose(_ outTradeNo: String, now: Date) -> ChannelResponse {
        switch close(channel: SimulatedChannels.wechatPayID, outTradeNo: outTradeNo) {
        case .closed: wechatPay.closedResponse(now: now)
        case .notExisting: wechatPay.error(404, "ORDER_NOT_EXIST", "订单不存在", now: now).response
        case .paid: wechatPay.error(400, "ORDER_PAID", "该订单已支付", now: now).response
        case .closedAlready: wechatPay.error(400, "ORDER_CLOSED", "订单已关闭", now: now).response
        }
    }

    /// The buyer's phone: `GET /wechatpay/_phone?code_url=…` (native, as if scanned),
    /// `?prepay_id=…` (jsapi, app), `?ticket=…` (the h5_url) with an optional `redirect_url`;
    /// its Pay button posts to `/wechatpay/_phone/pay`.
    func wechatPayPhone(_ request: ReceivedRequest, now: Date) -> ChannelResponse {
        let channel = SimulatedChannels.wechatPayID
        if request.method == "POST", request.path == "/wechatpay/_phone/pay" {
            guard let outTradeNo = Self.formValue(request.body, "out_trade_no") else {
                return BuyerPages.message(title: "Bad request", text: "out_trade_no is missing.", status: 400)
            }
            do {
                _ = try pay(channel: channel, outTradeNo: outTradeNo, now: now)
            } catch {
                return BuyerPages.message(title: "Cannot pay", text: error.description, status: 409)
            }
            if let redirect = Self.formValue(request.body, "redirect_url"), !redirect.isEmpty { return BuyerPages.redirect(to: redirect) }
            return BuyerPages.message(title: "Paid", text: "The payment succeeded (SUCCESS).")
        }
        guard request.method == "GET", request.path == "/wechatpay/_phone" else {
            return BuyerPages.message(title: "Not found", text: "No such page.", status: 404)
        }
        let query = Self.form(request.query)
        var ticket = query["ticket"] ?? query["prepay_id"]
        if let codeURL = query["code_url"], let range = codeURL.range(of: "pr=") { ticket = String(codeURL[range.upperBound...]) }
        let found = state.withLock { state -> ChannelOrder? in
            guard let ticket, let key = state.tickets[ticket] else { return nil }
            return state.books[key.channel]?[key.outTradeNo]
        }
        guard let order = found else { return BuyerPages.message(title: "Unknown payment", text: "This payment link is not valid.", status: 404) }
        if let refusal = Self.unpayable(order) { return BuyerPages.message(title: "Cannot pay", text: refusal.description) }
        let redirect = query["redirect_url"].map { [("redirect_url", $0)] } ?? []
        return BuyerPages.cashier(title: "WeChat Pay on the buyer's phone (simulated)", order: order, payAction: "/wechatpay/_phone/pay",
                                  cancelAction: nil, extra: redirect)
    }

    // MARK: Points

    /// `POST {base}/v2/deducts` and `…/{out_trade_no}/reverse` (protocol version 2).
    func pointsCall(_ request: ReceivedRequest, now: Date) async -> ChannelResponse {
        let channel = SimulatedChannels.pointsID
        if request.path.hasPrefix("/points/api/v2/deducts/"), request.path.hasSuffix("/reverse") {
            return await pointsReverse(request, now: now)
        }
        guard request.path == "/points/api/v2/deducts" else {
            return points.error(404, "NOT_FOUND", "no such resource", now: now).response
        }
        switch points.readDeductRequest(request, now: now) {
        case .failure(let refusal): return refusedCall(channel: channel, refusal)
        case .success(let deduct):
            return await performCall(channel: channel, outTradeNo: deduct.outTradeNo) { pointsDeduct(deduct, now: now) }
        }
    }

    private enum Deducting {
        case answered([UInt8], notify: ChannelOrder?)
        case conflict
    }

    /// A deduct decided at once by the member's outcome; its first answer is kept for repeats.
    private func pointsDeduct(_ deduct: PointsDeduct, now: Date) -> ChannelResponse {
        let key = OrderKey(channel: SimulatedChannels.pointsID, outTradeNo: deduct.outTradeNo)
        let paidAt = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        let outcome = state.withLock { state -> Deducting in
            if let order = state.books[key.channel]?[key.outTradeNo] {
                guard order.creationBody == deduct.body, let answer = state.deductAnswers[key] else { return .conflict }
                return .answered(answer, notify: nil)
            }
            let decided = state.deductOutcomes[deduct.userID] ?? .paid
            let status: PaymentStatus = switch decided {
            case .paid: .paid
            case .failed: .closed
            case .processing: .pending
            }
            let order = ChannelOrder(
                outTradeNo: deduct.outTradeNo, channelTradeNo: "PT" + Self.digits(20), status: status, amountMinor: deduct.amountMinor,
                currency: deduct.currency, paidAt: decided == .paid ? paidAt : nil, subject: deduct.subject,
                points: decided == .paid ? deduct.amountMinor : 0, scene: .deduct, notifyURL: deduct.notifyURL,
                payerID: deduct.userID, creationBody: deduct.body)
            let answer = switch decided {
            case .paid: points.deductAnswerBody(order, status: "PAID")
            case .failed: points.deductAnswerBody(order, status: "FAILED", code: "INSUFFICIENT_POINTS", message: "not enough points")
            case .processing: points.deductAnswerBody(order, status: "PROCESSING")
            }
            state.books[key.channel, default: [:]][key.outTradeNo] = order
            state.deductAnswers[key] = answer
            return .answered(answer, notify: decided == .processing ? nil : order)
        }
        switch outcome {
        case .answered(let body, let notify):
            if let notify { sendNotify(channel: key.channel, order: notify, now: paidAt) }
            return points.signedAnswer(body: body, now: now)
        case .conflict:
            return points.error(409, "IDEMPOTENCY_CONFLICT", "out_trade_no was used with another body", now: now).response
        }
    }

    // MARK: Trade state

    /// The trade as `GET /_sim/trades/{channel}/{out_trade_no}` shows it; nil when the books have none.
    func tradeJSON(channel: String, outTradeNo: String) -> String? {
        let key = OrderKey(channel: channel, outTradeNo: outTradeNo)
        let (book, counts) = state.withLock { ($0.books[channel]?[outTradeNo], $0.notifyCounts[key] ?? NotifyCounts()) }
        guard let order = book else { return nil }
        let status = switch order.status {
        case .paid: "paid"
        case .closed: "closed"
        case .pending: "pending"
        case .other(let raw): raw
        }
        let channelStatus = switch channel {
        case SimulatedChannels.alipayID: AlipaySignature.tradeStatus(order.status)
        case SimulatedChannels.wechatPayID: WeChatPaySignature.tradeState(order.status)
        default: PointsSignature.statusText(order.status)
        }
        func optional(_ text: String?) -> JSONValue { text.map { .string($0) } ?? .null }
        return JSONValue.object([
            "channel": .string(channel), "out_trade_no": .string(order.outTradeNo), "channel_trade_no": .string(order.channelTradeNo),
            "scene": optional(order.scene?.rawValue), "status": .string(status), "channel_status": .string(channelStatus),
            "exists": .bool(order.existsAtChannel), "amount": .string(Money.format(minorUnits: order.amountMinor)),
            "amount_minor": .number(String(order.amountMinor)), "currency": .string(order.currency), "subject": .string(order.subject),
            "paid_at": optional(order.paidAt.map { Timestamps.formatRFC3339China($0) }), "notify_url": optional(order.notifyURL),
            "return_url": optional(order.returnURL),
            "notifies": .object([
                "scheduled": .number(String(counts.scheduled)), "never_sent": .number(String(counts.neverSent)),
                "attempts": .number(String(counts.attempts)), "acknowledged": .number(String(counts.acknowledged)),
                "abandoned": .number(String(counts.abandoned)),
            ]),
        ]).serialized()
    }

    // MARK: Helpers

    /// Why a trade the buyer looks at cannot be paid, if it cannot.
    static func unpayable(_ order: ChannelOrder) -> PaymentRefusal? {
        switch order.status {
        case .paid: .alreadyPaid
        case .closed: .closed
        default: nil
        }
    }

    /// `http://` and the request's Host, else ``linkBaseURL``: links work for whoever reached the simulator.
    func linkBase(_ request: ReceivedRequest) -> String {
        if let host = request.headers.first(named: "Host"), !host.isEmpty { return "http://" + host }
        return state.withLock { $0.baseURL }
    }

    /// An Alipay-like trade number: the Beijing date and 20 digits (28 in all).
    static func alipayTradeNo(_ now: Date) -> String {
        String(Timestamps.formatAlipay(now).filter(\.isNumber).prefix(8)) + digits(20)
    }

    static func digits(_ count: Int) -> String {
        String((0..<count).map { _ in Character(String(Int.random(in: 0...9))) })
    }

    /// Form fields as UTF-8 text (first occurrence wins).
    static func form(_ encoded: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in FormEncoding.parse(encoded) ?? [] where fields[pair.key] == nil {
            if let value = Bytes.utf8String(pair.value) { fields[pair.key] = value }
        }
        return fields
    }

    static func formValue(_ body: [UInt8], _ name: String) -> String? {
        form(String(decoding: body, as: UTF8.self))[name]
    }
}
