// libFuzzer target over the channel adapters' parsing and verification.
// Build and run: see FUZZING.md beside this file.
//
// The first input byte picks a path; the rest is the payload. Paths that would otherwise
// stop at a signature check sign the fuzzed payload with keys made at start-up, so the
// fuzzer reaches the field readers behind the proofs.
import Channels
import PayhookConfig
import PayhookCore
import Simulator
import Foundation

/// The test fixtures' throwaway keys, found beside this file. (Generating keys here instead
/// trips LeakSanitizer: swift-crypto 3.12.3's RSA key generation leaks its 16-byte exponent
/// BIGNUM, `withBignumPointer` clears instead of freeing it.)
func fixtureKey(_ name: String) -> RSAPrivateKey {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../ChannelsTests/Fixtures/\(name)").standardized.path
    do { return try KeyFiles.privateKey(path) } catch { fatalError("\(error)") }
}

struct FuzzWorld: Sendable {
    let alipayKey = fixtureKey("alipay_private_pkcs8.pem")
    let wechatKey = fixtureKey("wechat_pubkey_id_private.pem")
    let apiV3Key = SharedSecret(text: "FUZZfuzzFUZZfuzzFUZZfuzzFUZZfuzz")
    let secret = SharedSecret(text: "points-fuzz-secret")
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    var alipayConfig: AlipayConfiguration {
        AlipayConfiguration(channelID: "alipay", appID: "2021000000000001", sellerID: "2088000000000001",
                            alipayPublicKey: alipayKey.publicKey, appPrivateKey: nil, allowSHA1SignType: true)
    }
    var wechatConfig: WeChatPayConfiguration {
        WeChatPayConfiguration(channelID: "wechatpay", mchID: "1900000001", appID: "wx0000000000000001", apiV3Key: apiV3Key,
                               platformKeys: ["PUB_KEY_ID_FUZZ": wechatKey.publicKey], merchantPrivateKey: nil, merchantSerialNo: "1")
    }
    var pointsConfig: PointsConfiguration {
        PointsConfiguration(channelID: "points", partnerID: "site-001", hmacSecret: secret, apiBaseURL: "http://127.0.0.1/api")
    }
}

let world = FuzzWorld()
let alipay = AlipayAdapter(configuration: world.alipayConfig)
let wechat = WeChatPayAdapter(configuration: world.wechatConfig)
let points = PointsAdapter(configuration: world.pointsConfig)
let wechatSide = WeChatPayChannelSide(signingKey: world.wechatKey, signingSerial: "PUB_KEY_ID_FUZZ", apiV3Key: world.apiV3Key,
                                      merchantPublicKey: nil, mchID: "1900000001", appID: "wx0000000000000001")
let pointsSide = PointsChannelSide(partnerID: "site-001", hmacSecret: world.secret)

/// Splits `name: value` lines off the front of the payload until an empty line.
func headersAndBody(_ bytes: [UInt8]) -> ([HeaderField], [UInt8]) {
    guard let split = bytes.firstRange(of: [0x0A, 0x0A]) else { return ([], bytes) }
    let head = String(decoding: bytes[..<split.lowerBound], as: UTF8.self)
    let headers = head.split(separator: "\n").compactMap { line -> HeaderField? in
        let parts = line.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        return HeaderField(name: String(parts[0]), value: parts[1].trimmingCharacters(in: .whitespaces))
    }
    return (headers, Array(bytes[split.upperBound...]))
}

func fuzzOne(_ input: [UInt8]) {
    guard let selector = input.first else { return }
    let payload = Array(input.dropFirst())
    switch selector % 12 {
    case 0:
        _ = alipay.verifyResult(RawCallback(body: payload))
    case 1:
        // Signed with the configured key: reaches field parsing.
        if let signed = FuzzHooks.signAlipayForm(payload, key: world.alipayKey) {
            _ = alipay.verifyResult(RawCallback(body: signed))
        }
    case 2:
        _ = alipay.verifyResult(RawCallback(kind: .return, method: "GET", query: String(decoding: payload, as: UTF8.self)))
    case 3:
        let (headers, body) = headersAndBody(payload)
        _ = wechat.verifyResult(RawCallback(headers: headers, body: body, receivedAt: world.now))
    case 4:
        // A signed envelope whose encrypted resource is the payload.
        let body = FuzzHooks.wechatEnvelope(plaintext: payload, apiV3Key: world.apiV3Key)
        _ = wechat.verifyResult(RawCallback(headers: wechatSide.signedHeaders(body: body, timestamp: world.now), body: body, receivedAt: world.now))
    case 5:
        // A signed body that is the payload itself.
        _ = wechat.verifyResult(RawCallback(headers: wechatSide.signedHeaders(body: payload, timestamp: world.now), body: payload, receivedAt: world.now))
    case 6:
        let (headers, body) = headersAndBody(payload)
        _ = points.verifyResult(RawCallback(headers: headers, body: body, receivedAt: world.now))
    case 7:
        _ = points.verifyResult(RawCallback(headers: pointsSide.signedHeaders(body: payload, timestamp: world.now), body: payload, receivedAt: world.now))
    case 8:
        let signed = selector & 0x80 != 0
        let body = FuzzHooks.alipayResponse(inner: payload, key: signed ? world.alipayKey : nil)
        _ = try? AlipayQuery.interpret(ChannelResponse(status: 200, headers: [], body: signed ? body : payload),
                                       configuration: world.alipayConfig, outTradeNo: "X")
    case 9:
        let status = [200, 404, 500, 401][Int(selector >> 6)]
        _ = try? WeChatPayQuery.interpret(ChannelResponse(status: status, headers: wechatSide.signedHeaders(body: payload, timestamp: world.now), body: payload),
                                          configuration: world.wechatConfig, outTradeNo: "X", now: world.now)
        _ = try? PointsQuery.interpret(ChannelResponse(status: status, headers: pointsSide.signedHeaders(body: payload, timestamp: world.now), body: payload),
                                       configuration: world.pointsConfig, outTradeNo: "X", now: world.now)
    case 10:
        FuzzHooks.json(payload)
    default:
        FuzzHooks.scalars(payload)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzOne(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

// No top-level statements: with `--sanitize fuzzer` SwiftPM compiles this file with
// -parse-as-library and libFuzzer supplies `main`. A plain `swift build` links an empty
// program; replay crash inputs with the fuzzer binary itself (`ChannelFuzz crash-…`).
