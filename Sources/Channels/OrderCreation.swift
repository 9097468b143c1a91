public import Foundation
public import PayhookCore

/// How the buyer pays. Each channel type offers its own scenes (`scenes(for:)`).
public enum PaymentScene: String, Sendable, Hashable, CaseIterable, Codable {
    /// Alipay: `page` (PC web), `wap` (mobile web), `app` (native SDK), `qr` (precreate).
    case page, wap, qr
    /// Alipay `alipay.trade.app.pay`, or WeChat Pay's APP prepay.
    case app
    /// WeChat Pay v3: `native` (code_url), `jsapi` (in WeChat), `h5` (mobile browser).
    case native, jsapi, h5
    /// The points partner's deduct call.
    case deduct

    public static func scenes(for type: ChannelType) -> [PaymentScene] {
        switch type {
        case .alipay: [.page, .wap, .app, .qr]
        case .wechatpayV3: [.native, .jsapi, .app, .h5]
        case .points: [.deduct]
        }
    }
}

/// What a scene needs to know about the payer.
public struct PayerDetails: Sendable, Hashable, Codable {
    /// WeChat Pay `jsapi`: the buyer's `openid` under the configured `appid`.
    public var openid: String?
    /// WeChat Pay `h5`: `scene_info.payer_client_ip`.
    public var clientIP: String?
    /// WeChat Pay `h5`: `scene_info.h5_info.type` (`Wap`, `iOS`, `Android`). Default `Wap`.
    public var h5Type: String?
    /// Points `deduct`: the partner's id of the member whose points pay.
    public var userID: String?

    public init(openid: String? = nil, clientIP: String? = nil, h5Type: String? = nil, userID: String? = nil) {
        self.openid = openid
        self.clientIP = clientIP
        self.h5Type = h5Type
        self.userID = userID
    }

    enum CodingKeys: String, CodingKey {
        case openid, clientIP = "client_ip", h5Type = "h5_type", userID = "user_id"
    }
}

/// An order Payhook asks a channel to create, already checked (amount, number, scene, payer).
public struct ChannelOrderRequest: Sendable, Hashable {
    public var outTradeNo: String
    public var scene: PaymentScene
    public var amountMinor: Int64
    public var currency: String
    /// Alipay `subject`; WeChat Pay `description`; points `subject`.
    public var subject: String
    /// Alipay `body`; unused elsewhere.
    public var description: String?
    /// Alipay `time_expire`, WeChat Pay `time_expire`, points `expires_at`.
    public var expiresAt: Date?
    /// Payhook's own `/notify/{channel}` for this channel.
    public var notifyURL: String
    /// Payhook's own `/return/{channel}` (Alipay page and wap; WeChat h5 `redirect_url`).
    public var returnURL: String?
    /// Echoed by the channel: Alipay `passback_params`, WeChat Pay `attach`.
    public var attach: String?
    public var payer: PayerDetails

    public init(outTradeNo: String, scene: PaymentScene, amountMinor: Int64, currency: String = "CNY", subject: String,
                description: String? = nil, expiresAt: Date? = nil, notifyURL: String, returnURL: String? = nil,
                attach: String? = nil, payer: PayerDetails = PayerDetails()) {
        self.outTradeNo = outTradeNo
        self.scene = scene
        self.amountMinor = amountMinor
        self.currency = currency
        self.subject = subject
        self.description = description
        self.expiresAt = expiresAt
        self.notifyURL = notifyURL
        self.returnURL = returnURL
        self.attach = attach
        self.payer = payer
    }
}

/// What the site's front end needs to send the buyer on, as named string fields in the
/// channel's own spelling (`appId`, `paySign`, ...), in a stable order.
public struct FrontEndParameters: Sendable, Hashable {
    public struct Field: Sendable, Hashable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    public var fields: [Field]
    public init(_ fields: [Field]) { self.fields = fields }

    public subscript(name: String) -> String? { fields.first { $0.name == name }?.value }
}

/// The first step of creating an order at a channel.
public enum CreationStep: Sendable {
    /// Signed locally, no call to the channel (Alipay page, wap, app).
    case ready(FrontEndParameters)
    /// Send this signed request, then read its answer with `creationResult`.
    case call(ChannelRequest)
}

/// A channel's answer to a creation call, its signature verified.
public enum CreationResult: Sendable, Hashable {
    /// The channel holds the order; the buyer can pay with these parameters.
    case created(FrontEndParameters)
    /// Paid at once (points deduct `PAID`): apply this evidence.
    case settled(OrderEvidence, FrontEndParameters)
    /// Accepted, result not known yet (points `PROCESSING`): query later.
    case processing(FrontEndParameters)
}

/// A channel's answer to a close call.
public enum CloseResult: Sendable, Hashable {
    /// The channel closed the trade (or it was closed already).
    case closed
    /// The channel never had the trade (Alipay `ACQ.TRADE_NOT_EXIST`, WeChat `ORDER_NOT_EXIST`).
    case notFound
    /// The channel refused: the trade is paid or being paid (`ACQ.TRADE_STATUS_ERROR`,
    /// WeChat `ORDER_PAID`, `USER_PAYING`). Query to learn which.
    case notClosable(String)
}

/// The channels' rules for an order, checked before anything is written.
public enum OrderRules {
    /// Why `outTradeNo` breaks the channel type's rules, or nil when it fits:
    /// Alipay 1-64 letters, digits, `_`; WeChat Pay 6-32 of `0-9 A-Z a-z _ - | *`;
    /// points 1-64 letters, digits, `_`, `-`.
    public static func outTradeNoProblem(_ outTradeNo: String, type: ChannelType) -> String? {
        let bytes = Array(outTradeNo.utf8)
        func alnum(_ b: UInt8) -> Bool { (b >= 0x30 && b <= 0x39) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x7A) }
        switch type {
        case .alipay:
            guard (1...64).contains(bytes.count), bytes.allSatisfy({ alnum($0) || $0 == 0x5F }) else {
                return "must be 1-64 letters, digits or _ for Alipay"
            }
        case .wechatpayV3:
            guard (6...32).contains(bytes.count),
                  bytes.allSatisfy({ alnum($0) || $0 == 0x5F || $0 == 0x2D || $0 == 0x7C || $0 == 0x2A }) else {
                return "must be 6-32 of 0-9 A-Z a-z _ - | * for WeChat Pay"
            }
        case .points:
            guard (1...64).contains(bytes.count), bytes.allSatisfy({ alnum($0) || $0 == 0x5F || $0 == 0x2D }) else {
                return "must be 1-64 letters, digits, _ or - for the points partner"
            }
        }
        return nil
    }

    /// An order number that fits every channel: `PH`, the UTC date, 16 random letters and digits (26 characters).
    public static func makeOutTradeNo(now: Date) -> String {
        let day = Int64(now.timeIntervalSince1970.rounded(.down)).quotientAndRemainder(dividingBy: 86_400).quotient
        let date = Date(timeIntervalSince1970: TimeInterval(day * 86_400))
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        let stamp = String(format: "%04d%02d%02d", parts.year!, parts.month!, parts.day!)
        let alphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789".utf8)
        var random = SystemRandomNumberGenerator()
        let tail = (0..<16).map { _ in alphabet[Int(random.next(upperBound: UInt64(alphabet.count)))] }
        return "PH" + stamp + String(decoding: tail, as: UTF8.self)
    }

    /// The amounts a channel type takes, in minor units: Alipay 0.01-100,000,000.00;
    /// WeChat Pay 1 fen to the largest 32-bit `total`; points as Alipay.
    public static func amountRange(type: ChannelType) -> ClosedRange<Int64> {
        switch type {
        case .alipay, .points: 1...10_000_000_000
        case .wechatpayV3: 1...Int64(Int32.max)
        }
    }

    /// The currencies a channel type takes today.
    public static func currencies(type: ChannelType) -> [String] { ["CNY"] }
}

extension AnyChannelAdapter {
    public var channelScenes: [PaymentScene] { PaymentScene.scenes(for: channelType) }

    /// The first step of creating `order`: front-end parameters signed here, or the call to make.
    public func creationStep(_ order: ChannelOrderRequest, now: Date) throws(QueryError) -> CreationStep {
        switch self {
        case .alipay(let a): try AlipayOrderCreation.step(order, configuration: a.configuration, now: now)
        case .wechatPay(let a):
            try WeChatPayOrderCreation.step(order, configuration: a.configuration, now: now, nonce: Nonce.random(32))
        case .points(let a): try PointsOrderCreation.step(order, configuration: a.configuration, now: now, nonce: Nonce.random(32))
        }
    }

    /// The channel's answer to the creation call, verified, with the front-end parameters
    /// signed where the scene needs it (WeChat Pay jsapi `paySign`, app `sign`).
    public func creationResult(_ response: ChannelResponse, order: ChannelOrderRequest,
                               now: Date) throws(QueryError) -> CreationResult {
        switch self {
        case .alipay(let a): try AlipayOrderCreation.result(response, order: order, configuration: a.configuration)
        case .wechatPay(let a):
            try WeChatPayOrderCreation.result(response, order: order, configuration: a.configuration, now: now,
                                              nonce: Nonce.random(32))
        case .points(let a): try PointsOrderCreation.result(response, order: order, configuration: a.configuration, now: now)
        }
    }

    /// The signed close request; nil where the channel has no close call (points: a deduct
    /// either happened or did not, so the query decides).
    public func closeRequest(outTradeNo: String, now: Date) throws(QueryError) -> ChannelRequest? {
        switch self {
        case .alipay(let a): try AlipayOrderCreation.closeRequest(outTradeNo: outTradeNo, configuration: a.configuration, now: now)
        case .wechatPay(let a):
            try WeChatPayOrderCreation.closeRequest(outTradeNo: outTradeNo, configuration: a.configuration, now: now,
                                                    nonce: Nonce.random(32))
        case .points: nil
        }
    }

    /// The channel's answer to the close call, verified where the channel signs it.
    public func closeResult(_ response: ChannelResponse, outTradeNo: String, now: Date) throws(QueryError) -> CloseResult {
        switch self {
        case .alipay(let a): try AlipayOrderCreation.closeResult(response, outTradeNo: outTradeNo, configuration: a.configuration)
        case .wechatPay(let a):
            try WeChatPayOrderCreation.closeResult(response, outTradeNo: outTradeNo, configuration: a.configuration, now: now)
        case .points: throw .permanent(.invalidRequest, "points has no close call")
        }
    }
}

extension ChannelOrderRequest {
    /// Refuses a scene the channel type does not have, and an amount or currency outside its
    /// rules. The callers check these first; the builders check again so that no signed
    /// request ever carries an order the channel would read differently.
    func check(for type: ChannelType) throws(QueryError) {
        let name = switch type {
        case .alipay: "an Alipay"
        case .wechatpayV3: "a WeChat Pay"
        case .points: "a points"
        }
        guard PaymentScene.scenes(for: type).contains(scene) else {
            throw .permanent(.invalidRequest, "scene \(scene.rawValue) is not \(name) scene")
        }
        guard OrderRules.amountRange(type: type).contains(amountMinor) else {
            throw .permanent(.invalidRequest, "amount out of range")
        }
        guard OrderRules.currencies(type: type).contains(currency) else {
            throw .permanent(.invalidRequest, "currency \(currency.prefix(8)) is not taken")
        }
    }
}
