public import Channels
import Crypto
public import Foundation
public import PayhookCore

/// `POST /v1/orders`, read and checked against the channel's rules before anything is
/// written. Pure: the same bytes, channels and clock always give the same answer.
public struct OrderRequest: Sendable, Equatable {
    /// The site's number, or nil when Payhook is to make one.
    public var outTradeNo: String?
    public var channel: String
    public var channelType: ChannelType
    public var scene: PaymentScene
    public var amountMinor: Int64
    public var currency: String
    public var subject: String
    public var description: String?
    /// Exactly one of the two, or neither (the channel's own default lifetime).
    public var expiresAt: Date?
    public var expiresInSeconds: Int?
    public var returnURL: String?
    public var attach: String?
    public var payer: PayerDetails

    public static let fields: Set<String> = [
        "out_trade_no", "channel", "scene", "amount", "currency", "subject", "description", "expires_at",
        "expires_in_seconds", "return_url", "attach", "payer",
    ]
    public static let payerFields: Set<String> = ["openid", "client_ip", "h5_type", "user_id"]
    /// The longest lifetime every channel honours (Alipay 15 days; WeChat Pay 7 days unpaid).
    public static let maxLifetimeSeconds = 7 * 86_400
    public static let minLifetimeSeconds = 60

    /// Reads a JSON body. `channels` maps configured channel ids to their types.
    public static func parse(_ body: [UInt8], channels: [String: ChannelType], now: Date) throws(OrderError) -> OrderRequest {
        let json = try RequestBody.object(body, fields: fields)

        let channel = try requiredString(json, "channel", max: 64)
        guard let type = channels[channel] else { throw .unknownChannel(channel) }
        let sceneText = try requiredString(json, "scene", max: 16)
        let scenes = PaymentScene.scenes(for: type)
        guard let scene = PaymentScene(rawValue: sceneText), scenes.contains(scene) else {
            throw .unsupportedScene("channel \(channel) has the scenes \(scenes.map(\.rawValue).joined(separator: ", "))")
        }

        let amountMinor: Int64
        switch json["amount"] {
        case nil, .null?: throw .missingField("amount")
        case .string(let text)?:
            guard let parsed = Money.parseMinorUnits(text) else {
                throw .invalidAmount("must be a decimal string such as \"88.88\": digits, at most 2 after the point")
            }
            amountMinor = parsed
        default: throw .invalidAmount("must be a decimal string such as \"88.88\", not a JSON number")
        }
        let range = OrderRules.amountRange(type: type)
        guard range.contains(amountMinor) else {
            throw .amountOutOfRange("must be between \(Money.format(minorUnits: range.lowerBound)) and \(Money.format(minorUnits: range.upperBound)) for \(type.rawValue)")
        }
        let currency = try optionalString(json, "currency", max: 3) ?? "CNY"
        guard OrderRules.currencies(type: type).contains(currency) else {
            throw .unsupportedCurrency("currency must be one of \(OrderRules.currencies(type: type).joined(separator: ", ")) for \(type.rawValue)")
        }

        let outTradeNo = try optionalString(json, "out_trade_no", max: 64)
        if let outTradeNo, let problem = OrderRules.outTradeNoProblem(outTradeNo, type: type) {
            throw .invalidOutTradeNo(problem)
        }
        // WeChat Pay's description is at most 127 characters; Alipay's subject 256.
        let subject = try requiredString(json, "subject", max: type == .wechatpayV3 ? 127 : 256)
        let description = try optionalString(json, "description", max: 400)
        let attach = try optionalString(json, "attach", max: 128)

        var expiresAt: Date?
        var expiresInSeconds: Int?
        if let text = try optionalString(json, "expires_at", max: 40) {
            guard let date = ISO8601DateFormatter().date(from: text) else {
                throw .invalidExpiry("expires_at must be an RFC 3339 time such as 2026-12-02T10:00:00+08:00")
            }
            expiresAt = date
        }
        switch json["expires_in_seconds"] {
        case nil, .null?: break
        case let value?:
            guard let seconds = value.int64Value, let small = Int(exactly: seconds) else {
                throw .invalidExpiry("expires_in_seconds must be a whole number")
            }
            expiresInSeconds = small
        }
        if expiresAt != nil, expiresInSeconds != nil {
            throw .invalidExpiry("give expires_at or expires_in_seconds, not both")
        }
        let lifetime = expiresInSeconds.map(Double.init) ?? expiresAt.map { $0.timeIntervalSince(now) }
        if let lifetime, lifetime < Double(minLifetimeSeconds) || lifetime > Double(maxLifetimeSeconds) {
            throw .invalidExpiry("the order must live between \(minLifetimeSeconds) seconds and \(maxLifetimeSeconds / 86_400) days")
        }

        let returnURL = try optionalString(json, "return_url", max: 1024)
        if let returnURL {
            guard let url = URLComponents(string: returnURL), url.scheme == "https" || url.scheme == "http",
                  url.host?.isEmpty == false else {
                throw .invalidField("return_url", "must be an absolute http or https URL")
            }
        }

        var payer = PayerDetails()
        switch json["payer"] {
        case nil, .null?: break
        case .object(let members)?:
            for member in members {
                guard payerFields.contains(member.key) else { throw .unknownField("payer.\(member.key)") }
            }
            let object = JSONValue.object(members)
            payer.openid = try optionalString(object, "openid", max: 128, field: "payer.openid")
            payer.clientIP = try optionalString(object, "client_ip", max: 45, field: "payer.client_ip")
            payer.h5Type = try optionalString(object, "h5_type", max: 16, field: "payer.h5_type")
            payer.userID = try optionalString(object, "user_id", max: 64, field: "payer.user_id")
        default: throw .invalidField("payer", "must be an object")
        }
        switch scene {
        case .jsapi where payer.openid == nil: throw .missingPayerField("openid", scene: scene.rawValue)
        case .h5 where payer.clientIP == nil: throw .missingPayerField("client_ip", scene: scene.rawValue)
        case .deduct where payer.userID == nil: throw .missingPayerField("user_id", scene: scene.rawValue)
        default: break
        }
        if let ip = payer.clientIP, !Self.isIPAddress(ip) {
            throw .invalidField("payer.client_ip", "must be an IPv4 or IPv6 address")
        }
        if let type = payer.h5Type, !["Wap", "iOS", "Android"].contains(type) {
            throw .invalidField("payer.h5_type", "must be Wap, iOS or Android")
        }

        return OrderRequest(
            outTradeNo: outTradeNo, channel: channel, channelType: type, scene: scene, amountMinor: amountMinor,
            currency: currency, subject: subject, description: description, expiresAt: expiresAt,
            expiresInSeconds: expiresInSeconds, returnURL: returnURL, attach: attach, payer: payer)
    }

    /// SHA-256 over the request as the site sent it (amounts in minor units, the expiry as
    /// given, not as computed), so the same request sent again has the same digest.
    public var digest: [UInt8] {
        let parts: [String] = [
            channel, scene.rawValue, String(amountMinor), currency, subject, description ?? "",
            expiresAt.map { String(Int64($0.timeIntervalSince1970 * 1000)) } ?? "",
            expiresInSeconds.map(String.init) ?? "", returnURL ?? "", attach ?? "", payer.openid ?? "",
            payer.clientIP ?? "", payer.h5Type ?? "", payer.userID ?? "",
        ]
        // Each part's length first, so no two different requests join to the same bytes.
        var bytes: [UInt8] = []
        for part in parts {
            bytes.append(contentsOf: "\(part.utf8.count):".utf8)
            bytes.append(contentsOf: part.utf8)
        }
        return Array(SHA256.hash(data: bytes))
    }

    /// The payer details as stored on the order (JSON), or nil when none were given.
    public var payerJSON: String? {
        var members: [JSONValue.Member] = []
        if let v = payer.openid { members.append(.init(key: "openid", value: .string(v))) }
        if let v = payer.clientIP { members.append(.init(key: "client_ip", value: .string(v))) }
        if let v = payer.h5Type { members.append(.init(key: "h5_type", value: .string(v))) }
        if let v = payer.userID { members.append(.init(key: "user_id", value: .string(v))) }
        return members.isEmpty ? nil : JSONValue.object(members).serialized()
    }

    /// The payer details read back from an order's stored JSON.
    public static func payer(fromJSON text: String?) -> PayerDetails {
        guard let text, let json = try? JSONValue.parse(Array(text.utf8)) else { return PayerDetails() }
        return PayerDetails(openid: json["openid"]?.stringValue, clientIP: json["client_ip"]?.stringValue,
                            h5Type: json["h5_type"]?.stringValue, userID: json["user_id"]?.stringValue)
    }

    private static func requiredString(_ json: JSONValue, _ key: String, max: Int) throws(OrderError) -> String {
        guard let value = try optionalString(json, key, max: max) else { throw .missingField(key) }
        return value
    }

    private static func optionalString(_ json: JSONValue, _ key: String, max: Int,
                                       field: String? = nil) throws(OrderError) -> String? {
        let name = field ?? key
        switch json[key] {
        case nil, .null?: return nil
        case .string(let text)?:
            guard !text.isEmpty else { throw .invalidField(name, "must not be empty") }
            guard text.count <= max else { throw .invalidField(name, "must be at most \(max) characters") }
            guard !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw .invalidField(name, "must not contain control characters")
            }
            return text
        default: throw .invalidField(name, "must be a string")
        }
    }

    static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}
