public import Foundation
public import PayhookCore
/// The configuration of one channel of any type, as the `channels:` list in `payhook.yaml`
/// describes it (keys already loaded).
public enum ChannelConfiguration: Sendable {
    case alipay(AlipayConfiguration)
    case wechatPay(WeChatPayConfiguration)
    case points(PointsConfiguration)

    public var channelID: String {
        switch self {
        case .alipay(let c): c.channelID
        case .wechatPay(let c): c.channelID
        case .points(let c): c.channelID
        }
    }

    public var channelType: ChannelType {
        switch self {
        case .alipay: .alipay
        case .wechatPay: .wechatpayV3
        case .points: .points
        }
    }

    /// The adapter for this channel.
    public func makeAdapter() -> AnyChannelAdapter {
        switch self {
        case .alipay(let c): .alipay(AlipayAdapter(configuration: c))
        case .wechatPay(let c): .wechatPay(WeChatPayAdapter(configuration: c))
        case .points(let c): .points(PointsAdapter(configuration: c))
        }
    }
}

/// Any channel adapter, as a closed enum (no existential on the hot path).
public enum AnyChannelAdapter: ChannelAdapter {
    case alipay(AlipayAdapter)
    case wechatPay(WeChatPayAdapter)
    case points(PointsAdapter)

    public var channelID: String {
        switch self {
        case .alipay(let a): a.channelID
        case .wechatPay(let a): a.channelID
        case .points(let a): a.channelID
        }
    }

    public var channelType: ChannelType {
        switch self {
        case .alipay: .alipay
        case .wechatPay: .wechatpayV3
        case .points: .points
        }
    }

    public var allowedIPs: [CIDR] {
        switch self {
        case .alipay(let a): a.allowedIPs
        case .wechatPay(let a): a.allowedIPs
        case .points(let a): a.allowedIPs
        }
    }

    public var merchant: MerchantIdentity {
        switch self {
        case .alipay(let a): a.merchant
        case .wechatPay(let a): a.merchant
        case .points(let a): a.merchant
        }
    }

    public func verify(_ raw: RawCallback) throws(Rejection) -> PaymentNotification {
        switch self {
        case .alipay(let a): try a.verify(raw)
        case .wechatPay(let a): try a.verify(raw)
        case .points(let a): try a.verify(raw)
        }
    }

    public func queryRequest(outTradeNo: String, now: Date) throws(QueryError) -> ChannelRequest {
        switch self {
        case .alipay(let a): try a.queryRequest(outTradeNo: outTradeNo, now: now)
        case .wechatPay(let a): try a.queryRequest(outTradeNo: outTradeNo, now: now)
        case .points(let a): try a.queryRequest(outTradeNo: outTradeNo, now: now)
        }
    }

    public func queryResult(_ response: ChannelResponse, outTradeNo: String, now: Date) throws(QueryError) -> OrderQueryResult {
        switch self {
        case .alipay(let a): try a.queryResult(response, outTradeNo: outTradeNo, now: now)
        case .wechatPay(let a): try a.queryResult(response, outTradeNo: outTradeNo, now: now)
        case .points(let a): try a.queryResult(response, outTradeNo: outTradeNo, now: now)
        }
    }

    public var queryTimeout: Duration {
        switch self {
        case .alipay(let a): a.queryTimeout
        case .wechatPay(let a): a.queryTimeout
        case .points(let a): a.queryTimeout
        }
    }

    public func unverifiedOutTradeNo(_ raw: RawCallback) -> String? {
        switch self {
        case .alipay(let a): a.unverifiedOutTradeNo(raw)
        case .wechatPay(let a): a.unverifiedOutTradeNo(raw)
        case .points(let a): a.unverifiedOutTradeNo(raw)
        }
    }
}
