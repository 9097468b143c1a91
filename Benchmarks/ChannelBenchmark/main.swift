// Verification throughput per core (one thread) for each channel type, beside the raw
// RSA-2048 verify rate of the same library measured in the same run.
//
//     swift run -c release ChannelBenchmark [seconds-per-case]
import Channels
import PayhookCore
import Simulator
import Foundation

//     swift run -c release ChannelBenchmark 2 alipay     (one case, for profiling)
let secondsPerCase = CommandLine.arguments.dropFirst().first.flatMap(Double.init) ?? 2.0
let only = CommandLine.arguments.dropFirst(2).first
let now = Date()

// Keys and payloads made the way the channels make them.
let alipayKey = RSAPrivateKey.generate()
let wechatKey = RSAPrivateKey.generate()
let apiV3Key = SharedSecret(text: "BENCHbenchBENCHbenchBENCHbench00")
let secret = SharedSecret(text: "points-benchmark-secret-0123456789")

let alipay = AlipayAdapter(configuration: AlipayConfiguration(
    channelID: "alipay", appID: "2021000000000001", sellerID: "2088000000000001",
    alipayPublicKey: alipayKey.publicKey, appPrivateKey: nil, allowedIPs: [CIDR.parse("127.0.0.0/8")!]))
let wechat = WeChatPayAdapter(configuration: WeChatPayConfiguration(
    channelID: "wechatpay", mchID: "1900000001", appID: "wx0000000000000001", apiV3Key: apiV3Key,
    platformKeys: ["PUB_KEY_ID_0001": wechatKey.publicKey, "5157F09EFDC096DE15EBE81A47057A7232F1B8E1": RSAPrivateKey.generate().publicKey],
    merchantPrivateKey: nil, merchantSerialNo: "1", allowedIPs: [CIDR.parse("127.0.0.0/8")!]))
let points = PointsAdapter(configuration: PointsConfiguration(
    channelID: "points", partnerID: "site-001", hmacSecret: secret, apiBaseURL: "http://127.0.0.1/api"))

let order = ChannelOrder(outTradeNo: "ORDER-20261127-000000000001", channelTradeNo: "2026112722001400001000012345",
                         status: .paid, amountMinor: 8888, paidAt: now, subject: "测试商品 Payhook benchmark order #1")
let alipayBody = AlipayChannelSide(alipayPrivateKey: alipayKey, appPublicKey: nil, appID: "2021000000000001", sellerID: "2088000000000001")
    .notifyBody(for: order, notifyID: "2026112700222100001012345678901234", notifyTime: now, extra: [
        ("seller_email", "shop@example.com"), ("buyer_id", "2088102122524333"), ("buyer_logon_id", "abc***@example.com"),
        ("invoice_amount", "88.88"), ("point_amount", "0.00"),
        ("fund_bill_list", #"[{"amount":"88.88","fundChannel":"ALIPAYACCOUNT"}]"#),
        ("body", "Payhook benchmark order body text, a typical description of what was bought"),
        ("passback_params", "merchant%3Dsite-001%26campaign%3Dwinter"),
    ])
let alipayRaw = RawCallback(body: alipayBody, sourceIP: "127.0.0.1")

let wechatSide = WeChatPayChannelSide(signingKey: wechatKey, signingSerial: "PUB_KEY_ID_0001", apiV3Key: apiV3Key,
                                      merchantPublicKey: nil, mchID: "1900000001", appID: "wx0000000000000001")
let wechatMessage = wechatSide.notify(for: order, eventID: "EV-2026112710000500001", timestamp: now)
let wechatRaw = RawCallback(headers: wechatMessage.headers, body: wechatMessage.body, sourceIP: "127.0.0.1", receivedAt: now)

let pointsMessage = PointsChannelSide(partnerID: "site-001", hmacSecret: secret)
    .notify(for: ChannelOrder(outTradeNo: order.outTradeNo, channelTradeNo: "PT202611270000000001", status: .paid, amountMinor: 8888, paidAt: now, points: 8888),
            eventID: "PEV-20261127-000001", timestamp: now)
let pointsRaw = RawCallback(headers: pointsMessage.headers, body: pointsMessage.body, sourceIP: "127.0.0.1", receivedAt: now)

// Every payload must verify before it is timed.
for (name, adapter, raw) in [("alipay", AnyChannelAdapter.alipay(alipay), alipayRaw), ("wechatpay_v3", .wechatPay(wechat), wechatRaw), ("points", .points(points), pointsRaw)] {
    guard case .success = adapter.verifyResult(raw) else { fatalError("\(name) payload does not verify") }
}

let rawMessage = Array(repeating: UInt8(ascii: "a"), count: alipayBody.count)
let rawSignature = alipayKey.signSHA256(rawMessage)
let rawPublic = alipayKey.publicKey

/// Operations per second over one slice of `seconds`.
@inline(never) func slice(_ seconds: Double, _ body: () -> Bool) -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    var count = 0
    var elapsed = Duration.zero
    repeat {
        for _ in 0..<50 { precondition(body()) }
        count += 50
        elapsed = clock.now - start
    } while elapsed < .seconds(seconds)
    return Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

func ok(_ result: Result<PaymentNotification, Rejection>) -> Bool {
    if case .success = result { return true }
    return false
}

let slices = 20
print("Payhook channel verification, one thread, \(secondsPerCase) s per case in \(slices) interleaved slices")
print("payload sizes: alipay \(alipayBody.count) B form, wechatpay_v3 \(wechatMessage.body.count) B JSON, points \(pointsMessage.body.count) B JSON")
// The cases run interleaved in 20 rounds of one slice each. Each case reports its best slice,
// and its ratio to raw RSA verify both as best/best and as the median over the rounds of
// (this round's slice / this round's raw slice): on a shared machine, a burst of load from
// elsewhere hits the slices of one round alike, so the paired median barely moves with it.
let cases: [(String, () -> Bool)] = [
    ("raw RSA-2048 verify (\(rawMessage.count) B, SHA-256)", { rawPublic.isValidSHA256Signature(rawSignature, for: rawMessage) }),
    ("alipay parse+verify", { ok(alipay.verifyResult(alipayRaw)) }),
    ("wechatpay_v3 parse+verify+decrypt", { ok(wechat.verifyResult(wechatRaw)) }),
    ("points parse+verify (HMAC)", { ok(points.verifyResult(pointsRaw)) }),
    // What each query request costs the worker (Alipay and WeChat Pay sign every request):
    // libcrypto, which Payhook signs with, beside swift-crypto's BoringSSL.
    ("RSA-2048 sign, OpenSSL (query request)", { alipayKey.signSHA256(rawMessage).count == 256 }),
    ("RSA-2048 sign, swift-crypto", { alipayKey.swiftCryptoSignSHA256(rawMessage).count == 256 }),
].filter { only == nil || $0.0.hasPrefix(only!) || $0.0.hasPrefix("raw") }
for (_, body) in cases { for _ in 0..<200 { precondition(body()) } }  // warm up
var rates = [[Double]](repeating: [], count: cases.count)
for _ in 0..<slices {
    for (i, (_, body)) in cases.enumerated() { rates[i].append(slice(secondsPerCase / Double(slices), body)) }
}
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}
let rawBest = rates[0].max()!
func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
print(pad("case", 44) + pad("best ops/s", 13) + pad("µs/op", 9) + pad("vs raw: best/best", 19) + "median of paired rounds")
for (i, (name, _)) in cases.enumerated() {
    let best = rates[i].max()!
    let paired = median(zip(rates[i], rates[0]).map { $0 / $1 })
    print(pad(name, 44) + pad(String(format: "%.0f", best), 13) + pad(String(format: "%.1f", 1e6 / best), 9)
          + pad(String(format: "%.1f%%", best / rawBest * 100), 19) + String(format: "%.1f%%", paired * 100))
}
