public import PayhookCore
import Channels
public import Foundation

/// One notify ready to send: `POST /notify/{channel}` with these headers and body.
public struct SimulatedNotify: Sendable {
    public var channel: String
    public var headers: [HeaderField]
    public var body: [UInt8]

    public init(channel: String, headers: [HeaderField], body: [UInt8]) {
        self.channel = channel
        self.headers = headers
        self.body = body
    }

    /// The notify as the receiver would store it, for checking with an adapter directly.
    public func rawCallback(receivedAt: Date = Date(), sourceIP: String = "127.0.0.1") -> RawCallback {
        RawCallback(kind: .notify, method: "POST", path: "/notify/\(channel)", headers: headers, body: body,
                    sourceIP: sourceIP, receivedAt: receivedAt)
    }
}

/// Builds the notifies of every ``NotifyKind`` with the simulated channels' keys. Signing is
/// slow (RSA-2048, about 0.25 ms), so the load generator builds all of them before it sends.
public struct NotifyFactory: Sendable {
    public let channels: SimulatedChannels
    private let alipay: AlipayChannelSide
    private let wechatPay: WeChatPayChannelSide
    private let points: PointsChannelSide
    /// The same channels' sides with keys that are not theirs (forged notifies).
    private let forgedAlipay: AlipayChannelSide
    private let forgedWeChatPay: WeChatPayChannelSide
    private let forgedPoints: PointsChannelSide
    /// Bytes the oversize body is padded past. Default 65536, the receiver's default `max_body_bytes`.
    public var oversizeBytes: Int

    public init(channels: SimulatedChannels, oversizeBytes: Int = 65536) {
        self.channels = channels
        alipay = channels.alipaySide
        wechatPay = channels.wechatPaySide
        points = channels.pointsSide
        let forgerKey = RSAPrivateKey.generate()
        var forged = channels
        forged.alipayKey = forgerKey
        forged.wechatPlatformKey = forgerKey
        forged.pointsSecret = Nonce.random(48)
        forgedAlipay = forged.alipaySide
        forgedWeChatPay = forged.wechatPaySide
        forgedPoints = forged.pointsSide
        self.oversizeBytes = oversizeBytes
    }

    /// The kinds a channel can carry: stale timestamps and probes are WeChat Pay's.
    public static func kinds(for channelID: String) -> [NotifyKind] {
        channelID == SimulatedChannels.wechatPayID
            ? NotifyKind.allCases : NotifyKind.allCases.filter { $0 != .stale && $0 != .probe }
    }

    /// A notify of `kind` for `order` (which should be paid: the notify says what the order
    /// says), sent at `now`. `eventID` is the channel's event id (Alipay `notify_id`).
    public func notify(_ kind: NotifyKind, channel: String, order: ChannelOrder, eventID: String, now: Date = Date()) -> SimulatedNotify {
        switch kind {
        case .valid, .duplicate:
            return genuine(channel: channel, order: order, eventID: eventID, at: now)
        case .forged:
            return signed(channel: channel, order: order, eventID: eventID, at: now, forged: true)
        case .tampered:
            return tampered(channel: channel, order: order, eventID: eventID, at: now)
        case .stale:
            precondition(channel == SimulatedChannels.wechatPayID, "stale notifies are WeChat Pay's")
            return genuine(channel: channel, order: order, eventID: eventID, at: now.addingTimeInterval(-3600))
        case .probe:
            precondition(channel == SimulatedChannels.wechatPayID, "probe notifies are WeChat Pay's")
            var notify = genuine(channel: channel, order: order, eventID: eventID, at: now)
            notify.headers = notify.headers.map {
                $0.name == "Wechatpay-Signature" ? HeaderField(name: $0.name, value: "WECHATPAY/SIGNTEST/" + Nonce.random(64)) : $0
            }
            return notify
        case .oversize:
            var notify = genuine(channel: channel, order: order, eventID: eventID, at: now)
            padPastLimit(&notify)
            return notify
        }
    }

    private func genuine(channel: String, order: ChannelOrder, eventID: String, at time: Date) -> SimulatedNotify {
        signed(channel: channel, order: order, eventID: eventID, at: time, forged: false)
    }

    private func signed(channel: String, order: ChannelOrder, eventID: String, at time: Date, forged: Bool) -> SimulatedNotify {
        switch channel {
        case SimulatedChannels.alipayID:
            let side = forged ? forgedAlipay : alipay
            return SimulatedNotify(
                channel: channel,
                headers: [HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded; charset=utf-8")],
                body: side.notifyBody(for: order, notifyID: eventID, notifyTime: time))
        case SimulatedChannels.wechatPayID:
            let (headers, body) = (forged ? forgedWeChatPay : wechatPay).notify(for: order, eventID: eventID, timestamp: time)
            return SimulatedNotify(channel: channel, headers: headers, body: body)
        default:
            let (headers, body) = (forged ? forgedPoints : points).notify(for: order, eventID: eventID, timestamp: time)
            return SimulatedNotify(channel: channel, headers: headers, body: body)
        }
    }

    /// The order's genuine signature over a body whose amount was raised afterwards.
    private func tampered(channel: String, order: ChannelOrder, eventID: String, at time: Date) -> SimulatedNotify {
        var raised = order
        raised.amountMinor = order.amountMinor + 100_00
        switch channel {
        case SimulatedChannels.wechatPayID:
            // The amount sits in the encrypted resource: the original's signed headers, a body re-encrypted with the new amount.
            let nonce = Nonce.random(32)
            let original = wechatPay.notify(for: order, eventID: eventID, timestamp: time, nonce: nonce)
            let changed = wechatPay.notify(for: raised, eventID: eventID, timestamp: time, nonce: nonce)
            return SimulatedNotify(channel: channel, headers: original.headers, body: changed.body)
        default:
            var notify = genuine(channel: channel, order: order, eventID: eventID, at: time)
            let before = Money.format(minorUnits: order.amountMinor)
            let after = Money.format(minorUnits: raised.amountMinor)
            let patterns = channel == SimulatedChannels.alipayID
                ? [("total_amount=" + before, "total_amount=" + after)]
                : [("\"amount\":\"" + before + "\"", "\"amount\":\"" + after + "\"")]
            var text = String(decoding: notify.body, as: UTF8.self)
            for (from, to) in patterns { text = text.replacingOccurrences(of: from, with: to) }
            notify.body = Array(text.utf8)
            return notify
        }
    }

    /// A refund notify for `refund` of `order` (the order as the channel's books hold it
    /// after the refund): Alipay's `trade_status_sync` with `refund_fee`/`gmt_refund`/
    /// `out_biz_no`, WeChat Pay's `REFUND.*`. `forged`: signed with a key that is not the channel's.
    public func refundNotify(channel: String, order: ChannelOrder, refund: SimulatedRefund, eventID: String,
                             forged: Bool = false, now: Date = Date()) -> SimulatedNotify {
        switch channel {
        case SimulatedChannels.alipayID:
            return SimulatedNotify(
                channel: channel,
                headers: [HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded; charset=utf-8")],
                body: (forged ? forgedAlipay : alipay).refundNotifyBody(for: order, refund: refund, notifyID: eventID, notifyTime: now))
        default:
            precondition(channel == SimulatedChannels.wechatPayID, "the points partner sends no refund notify")
            let (headers, body) = (forged ? forgedWeChatPay : wechatPay).refundNotify(for: order, refund: refund, eventID: eventID, timestamp: now)
            return SimulatedNotify(channel: channel, headers: headers, body: body)
        }
    }

    /// Pads the body past ``oversizeBytes`` in the channel's own syntax (an extra form field or JSON member).
    private func padPastLimit(_ notify: inout SimulatedNotify) {
        let padding = String(repeating: "x", count: max(0, oversizeBytes + 1 - notify.body.count) + 16)
        if notify.channel == SimulatedChannels.alipayID {
            notify.body += Array("&padding=\(padding)".utf8)
        } else if notify.body.last == UInt8(ascii: "}") {
            notify.body.removeLast()
            notify.body += Array(",\"padding\":\"\(padding)\"}".utf8)
        }
    }
}
