public import PayhookCore
import Channels
import Synchronization
public import Foundation

/// The simulated channels' refunds: recorded in the books, answered by the refund calls
/// (`alipay.trade.refund`, `POST /v3/refund/domestic/refunds`, the points reverse) and the
/// refund queries, and announced by refund notifies (Alipay and WeChat Pay; the points
/// partner answers its reverse call synchronously and sends none).
extension ChannelSimulator {
    public enum RefundRefusal: Error, Sendable, Hashable {
        case noSuchTrade, notPaid, exceedsPaid
        /// The refund number is taken by another amount.
        case conflict
    }

    /// Records a refund in the books as the channel would after its refund call, without
    /// sending a notify (tests send theirs). A repeat of a known number returns it as it is.
    @discardableResult
    public func refund(channel: String, outTradeNo: String, refundNo: String, amountMinor: Int64,
                       status: RefundStatus = .succeeded, now: Date = Date()) throws(RefundRefusal) -> (ChannelOrder, SimulatedRefund) {
        try recordRefund(channel: channel, outTradeNo: outTradeNo, refundNo: refundNo, amountMinor: amountMinor,
                         status: status, body: nil, now: now).get()
    }

    func recordRefund(channel: String, outTradeNo: String, refundNo: String, amountMinor: Int64, status: RefundStatus,
                      body: [UInt8]?, now: Date) -> Result<(ChannelOrder, SimulatedRefund), RefundRefusal> {
        let at = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        return state.withLock { state in
            guard var order = state.books[channel]?[outTradeNo] else { return .failure(.noSuchTrade) }
            if let known = order.refunds.first(where: { $0.refundNo == refundNo }) {
                guard known.amountMinor == amountMinor else { return .failure(.conflict) }
                return .success((order, known))
            }
            guard order.paidAt != nil else { return .failure(.notPaid) }
            guard amountMinor > 0, order.refundedMinor + amountMinor <= order.amountMinor else { return .failure(.exceedsPaid) }
            let refund = SimulatedRefund(refundNo: refundNo, refundID: "50" + Self.digits(30), amountMinor: amountMinor,
                                         status: status, refundedAt: status == .succeeded ? at : nil, requestBody: body)
            order.refunds.append(refund)
            // What the payment queries then say: Alipay closes a trade refunded in full; WeChat Pay says REFUND.
            switch channel {
            case SimulatedChannels.alipayID where order.refundedMinor >= order.amountMinor: order.status = .closed
            case SimulatedChannels.wechatPayID: order.status = .other("REFUND")
            default: break
            }
            state.books[channel]?[outTradeNo] = order
            return .success((order, refund))
        }
    }

    /// The refund's notify to the order's `notify_url` (WeChat Pay: the refund call's own, if it named one).
    func sendRefundNotify(channel: String, order: ChannelOrder, refund: SimulatedRefund, url: String?, now: Date) {
        guard let url = url ?? order.notifyURL else { return }
        let message: (headers: [HeaderField], body: [UInt8])
        switch channel {
        case SimulatedChannels.alipayID:
            message = ([HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded; charset=utf-8")],
                       alipay.refundNotifyBody(for: order, refund: refund, notifyID: Nonce.random(32).lowercased(), notifyTime: now))
        case SimulatedChannels.wechatPayID:
            message = wechatPay.refundNotify(for: order, refund: refund, eventID: UUID().uuidString.lowercased(), timestamp: now)
        default:
            return
        }
        let sender = NotifySender(url: url, headers: message.headers, body: message.body, acknowledgement: .init(channel: channel))
        let behaviour = state.withLock { $0.notifyDefaults }
        state.withLock { state in
            guard !state.stopping else { return }
            let id = state.nextDelivery
            state.nextDelivery += 1
            state.deliveries[id] = Task {
                _ = await sender.deliver(behaviour)
                _ = self.state.withLock { $0.deliveries.removeValue(forKey: id) }
            }
        }
    }

    /// `alipay.trade.refund`: synchronous; `fund_change: Y` when money moved now, `N` for a repeat.
    func alipayRefund(_ read: AlipayGatewayRequest, now: Date) async -> ChannelResponse {
        let channel = SimulatedChannels.alipayID
        guard let outTradeNo = read.biz["out_trade_no"]?.stringValue,
              let amount = read.biz["refund_amount"]?.stringValue.flatMap({ Money.parseMinorUnits($0) }) else {
            return refusedCall(channel: channel, alipay.error("40002", "isv.invalid-parameter", node: read.node, subMsg: "refund_amount"))
        }
        let refundNo = read.biz["out_request_no"]?.stringValue ?? outTradeNo
        return await performCall(channel: channel, outTradeNo: outTradeNo) {
            let repeated = state.withLock { $0.books[channel]?[outTradeNo]?.refunds.contains { $0.refundNo == refundNo } } ?? false
            switch recordRefund(channel: channel, outTradeNo: outTradeNo, refundNo: refundNo, amountMinor: amount,
                                status: .succeeded, body: read.bizBytes, now: now) {
            case .success(let (order, refund)):
                if !repeated { sendRefundNotify(channel: channel, order: order, refund: refund, url: nil, now: now) }
                return alipay.answer(node: read.node, [
                    .init(key: "code", value: .string("10000")), .init(key: "msg", value: .string("Success")),
                    .init(key: "trade_no", value: .string(order.channelTradeNo)),
                    .init(key: "out_trade_no", value: .string(order.outTradeNo)),
                    .init(key: "buyer_user_id", value: .string(AlipayChannelSide.buyerID)),
                    .init(key: "fund_change", value: .string(repeated ? "N" : "Y")),
                    .init(key: "refund_fee", value: .string(Money.format(minorUnits: order.refundedMinor))),
                    .init(key: "gmt_refund_pay", value: .string(Timestamps.formatAlipay(refund.refundedAt ?? now))),
                ])
            case .failure(.noSuchTrade):
                return alipay.businessFailure(node: read.node, subCode: "ACQ.TRADE_NOT_EXIST", subMsg: "交易不存在", outTradeNo: outTradeNo)
            case .failure(.notPaid):
                return alipay.businessFailure(node: read.node, subCode: "ACQ.TRADE_STATUS_ERROR", subMsg: "交易状态不合法", outTradeNo: outTradeNo)
            case .failure(.exceedsPaid):
                return alipay.businessFailure(node: read.node, subCode: "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", subMsg: "退款金额超限", outTradeNo: outTradeNo)
            case .failure(.conflict):
                return alipay.businessFailure(node: read.node, subCode: "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", subMsg: "退款金额与原请求不一致", outTradeNo: outTradeNo)
            }
        }
    }

    /// `GET /v3/refund/domestic/refunds/{out_refund_no}` and `POST /v3/refund/domestic/refunds`.
    func wechatPayRefunds(_ request: ReceivedRequest, now: Date) async -> ChannelResponse {
        let channel = SimulatedChannels.wechatPayID
        if request.method == "GET" {
            switch wechatPay.readRefundQueryRequest(request, now: now) {
            case .failure(let refusal): return refusedCall(channel: channel, refusal)
            case .success(let refundNo):
                let found = state.withLock { state -> (ChannelOrder, SimulatedRefund)? in
                    state.channelQueries[channel, default: 0] += 1
                    for order in (state.books[channel] ?? [:]).values {
                        if let refund = order.refunds.first(where: { $0.refundNo == refundNo }) { return (order, refund) }
                    }
                    return nil
                }
                return wechatPay.refundResponse(for: found, now: now)
            }
        }
        guard request.path == WeChatPayRefund.refundsPath else {
            return wechatPay.error(404, "NOT_FOUND", "no such resource", now: now).response
        }
        if let refusal = wechatPay.checkAuthorization(request, now: now) { return refusedCall(channel: channel, refusal) }
        guard let json = try? JSONValue.parse(request.body), let outTradeNo = json["out_trade_no"]?.stringValue,
              let refundNo = json["out_refund_no"]?.stringValue, let amount = json["amount"]?["refund"]?.int64Value,
              let total = json["amount"]?["total"]?.int64Value else {
            return refusedCall(channel: channel, wechatPay.error(400, "PARAM_ERROR", "out_trade_no, out_refund_no, amount", now: now))
        }
        let notifyURL = json["notify_url"]?.stringValue
        return await performCall(channel: channel, outTradeNo: outTradeNo) {
            if let order = state.withLock({ $0.books[channel]?[outTradeNo] }), order.amountMinor != total {
                return wechatPay.error(400, "PARAM_ERROR", "amount.total differs from the order", now: now).response
            }
            let repeated = state.withLock { $0.books[channel]?[outTradeNo]?.refunds.contains { $0.refundNo == refundNo } } ?? false
            switch recordRefund(channel: channel, outTradeNo: outTradeNo, refundNo: refundNo, amountMinor: amount,
                                status: .succeeded, body: request.body, now: now) {
            case .success(let (order, refund)):
                if !repeated { sendRefundNotify(channel: channel, order: order, refund: refund, url: notifyURL, now: now) }
                return wechatPay.refundResponse(for: (order, refund), now: now)
            case .failure(.noSuchTrade): return wechatPay.error(404, "RESOURCE_NOT_EXISTS", "订单不存在", now: now).response
            case .failure(.notPaid): return wechatPay.error(400, "INVALID_REQUEST", "订单未支付", now: now).response
            case .failure(.exceedsPaid): return wechatPay.error(403, "NOT_ENOUGH", "退款金额超过可退金额", now: now).response
            case .failure(.conflict): return wechatPay.error(400, "INVALID_REQUEST", "out_refund_no used with another amount", now: now).response
            }
        }
    }

    /// `POST {base}/v2/deducts/{out_trade_no}/reverse`: decided at once, `REVERSED`; the same
    /// `reverse_no` again answers the same reversal.
    func pointsReverse(_ request: ReceivedRequest, now: Date) async -> ChannelResponse {
        let channel = SimulatedChannels.pointsID
        if let refusal = points.checkSignature(request, now: now) { return refusedCall(channel: channel, refusal) }
        guard let json = try? JSONValue.parse(request.body), json["partner_id"]?.stringValue == points.partnerID,
              let outTradeNo = json["out_trade_no"]?.stringValue, let reverseNo = json["reverse_no"]?.stringValue,
              let amount = json["amount"]?.stringValue.flatMap({ Money.parseMinorUnits($0) }) else {
            return refusedCall(channel: channel, points.error(400, "PARAM_ERROR", "partner_id, out_trade_no, reverse_no, amount", now: now))
        }
        return await performCall(channel: channel, outTradeNo: outTradeNo) {
            let status: String
            switch recordRefund(channel: channel, outTradeNo: outTradeNo, refundNo: reverseNo, amountMinor: amount,
                                status: .succeeded, body: request.body, now: now) {
            case .success: status = "REVERSED"
            case .failure(.noSuchTrade): return points.error(404, "ORDER_NOT_FOUND", "no such deduct", now: now).response
            case .failure(.conflict): return points.error(409, "IDEMPOTENCY_CONFLICT", "reverse_no was used with another body", now: now).response
            case .failure(.notPaid), .failure(.exceedsPaid): status = "FAILED"
            }
            let body = Array(JSONValue.object([
                .init(key: "partner_id", value: .string(points.partnerID)), .init(key: "out_trade_no", value: .string(outTradeNo)),
                .init(key: "reverse_no", value: .string(reverseNo)), .init(key: "status", value: .string(status)),
                .init(key: "amount", value: .string(Money.format(minorUnits: amount))),
            ]).serialized().utf8)
            return points.signedAnswer(body: body, now: now)
        }
    }
}
