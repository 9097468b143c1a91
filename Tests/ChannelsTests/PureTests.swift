import Foundation
import PayhookCore
import Simulator
import Synchronization
import Testing
@testable import Channels

@Suite struct MoneyTests {
    @Test(arguments: [
        ("88.88", 8888), ("0.01", 1), ("0", 0), ("0.1", 10), ("1", 100), ("01.50", 150), ("100000000.00", 10_000_000_000),
        ("92233720368547758.07", Int64.max),
    ] as [(String, Int64)])
    func parses(_ text: String, _ minor: Int64) {
        #expect(Money.parseMinorUnits(text) == minor)
    }

    @Test(arguments: ["1e3", "-1", "+1", "0.001", "88.8.8", "", " 1", "1 ", "1.", ".5", ".", "1,00", "١٢", "0x10", "NaN", "inf",
                      "92233720368547758.08", "99999999999999999999", "1.2.", "--1", "1_000"])
    func refuses(_ text: String) {
        #expect(Money.parseMinorUnits(text) == nil)
    }

    @Test func otherExponents() {
        #expect(Money.parseMinorUnits("123", fractionDigits: 0) == 123)
        #expect(Money.parseMinorUnits("1.5", fractionDigits: 0) == nil)
        #expect(Money.parseMinorUnits("1.234", fractionDigits: 3) == 1234)
        #expect(Money.format(minorUnits: 123, fractionDigits: 0) == "123")
    }

    @Test func formatRoundTrips() {
        for value: Int64 in [0, 1, 9, 10, 99, 100, 8888, 123_456_789, Int64.max] {
            #expect(Money.parseMinorUnits(Money.format(minorUnits: value)) == value)
        }
        #expect(Money.format(minorUnits: 5) == "0.05")
        #expect(Money.format(minorUnits: -5) == "-0.05")
    }
}

@Suite struct CIDRTests {
    @Test func ipv4() throws {
        let net = try #require(CIDR.parse("10.0.0.0/8"))
        #expect(net.contains("10.0.0.1") && net.contains("10.255.255.255"))
        #expect(!net.contains("11.0.0.0") && !net.contains("9.255.255.255"))
        #expect(CIDR.parse("10.1.2.3/8")?.description == "10.0.0.0/8")
        #expect(CIDR.parse("192.168.1.7")?.prefixLength == 32)
        let all = try #require(CIDR.parse("0.0.0.0/0"))
        #expect(all.contains("8.8.8.8") && all.contains("::ffff:1.2.3.4") && !all.contains("2001:db8::1"))
        let host = try #require(CIDR.parse("127.0.0.1/32"))
        #expect(host.contains("127.0.0.1") && !host.contains("127.0.0.2"))
        #expect(try #require(CIDR.parse("172.16.0.0/12")).contains("172.31.255.1"))
        #expect(!(try #require(CIDR.parse("172.16.0.0/12")).contains("172.32.0.1")))
    }

    @Test func listMatchAgreesWithEachNetwork() throws {
        let lists = [["127.0.0.0/8"], ["10.0.0.0/8", "2001:db8::/32"], ["::ffff:10.0.0.0/104"], ["0.0.0.0/0"], ["192.168.1.7"],
                     ["172.16.0.0/12", "::1/128"], ["1.2.3.4/31"]].map { $0.compactMap(CIDR.parse) }
        let addresses = ["127.0.0.1", "10.9.9.9", "::ffff:10.9.9.9", "192.168.1.7", "192.168.1.8", "172.31.255.1", "172.32.0.1",
                         "1.2.3.5", "1.2.3.6", "::1", "2001:db8::1", "01.2.3.4", "1.2.3", "1.2.3.4.5", "256.1.1.1", "", "1..2.3",
                         "[10.0.0.1]", "10.0.0.1%eth0", " 10.0.0.1", "0.0.0.0"]
        for list in lists {
            for address in addresses {
                #expect(list.containsAddress(address) == list.contains { $0.contains(address) }, "\(list) \(address)")
            }
        }
    }

    @Test func ipv6() throws {
        let net = try #require(CIDR.parse("2001:db8::/32"))
        #expect(net.contains("2001:db8::1") && net.contains("2001:DB8:ffff::") && net.contains("[2001:db8::5]"))
        #expect(!net.contains("2001:db9::1") && !net.contains("10.0.0.1"))
        #expect(try #require(CIDR.parse("::1/128")).contains("::1"))
        #expect(try #require(CIDR.parse("fe80::/10")).contains("fe80::1%eth0"))
        #expect(CIDR.parse("2001:db8::1/64")?.description == "2001:db8:0:0:0:0:0:0/64")
        // IPv4-mapped addresses match IPv4 networks and vice versa.
        #expect(try #require(CIDR.parse("::ffff:10.0.0.0/104")).contains("10.1.1.1"))
        #expect(try #require(CIDR.parse("10.0.0.0/8")).contains("::ffff:10.9.9.9"))
        #expect(try #require(CIDR.parse("1:2:3:4:5:6:7:8/128")).contains("1:2:3:4:5:6:7:8"))
        #expect(try #require(CIDR.parse("::/0")).contains("abcd::"))
    }

    @Test(arguments: ["", "10.0.0.0/33", "10.0.0/8", "10.0.0.256/8", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8/8", "010.0.0.0/8",
                      "1::2::3", "2001:db8::/129", "12345::/16", "g::/16", "1:2:3:4:5:6:7:8:9/128", "1:2:3:4:5:6:7/128", ":::/0",
                      "10.0.0.0 /8", "localhost", "10.0.0.0/ 8", "::ffff:1.2.3/96"])
    func refuses(_ text: String) {
        #expect(CIDR.parse(text) == nil)
    }

    @Test func unparseableAddressesAreNeverInside() throws {
        let all = try #require(CIDR.parse("0.0.0.0/0"))
        for bad in ["", "unknown", "1.2.3", "1.2.3.4.5", "999.1.1.1", "1.2.3.4:80"] { #expect(!all.contains(bad)) }
        #expect([CIDR]().containsAddress("1.2.3.4") == false)
    }
}

@Suite struct JSONValueTests {
    @Test func parsesStrictJSON() throws {
        let value = try JSONValue.parse(Array(#" {"a":[1,-2.5e3,true,false,null],"b":"x\u00e9\ud83d\ude00\n\"","c":{}} "#.utf8))
        #expect(value["a"] == .array([.number("1"), .number("-2.5e3"), .bool(true), .bool(false), .null]))
        #expect(value["b"]?.stringValue == "xé😀\n\"")
        #expect(value["c"] == .object([]))
        #expect(value["missing"] == nil)
    }

    @Test(arguments: ["", "{", "{\"a\"}", "[1,]", "{\"a\":1,}", "01", "1.", "-", "\"\\x\"", "\"\u{01}\"", "tru", "{} x",
                      "\"\\ud800\"", "\"\\udc00\"", "[" + String(repeating: "[", count: 100) + String(repeating: "]", count: 101)])
    func refusesInvalid(_ text: String) {
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(Array(text.utf8)) }
    }

    @Test func refusesInvalidUTF8() {
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse([0x22, 0xFF, 0x22]) }
    }

    /// Alipay signs the raw text of its response node, so a member's range must be exactly
    /// the bytes it came in.
    @Test func memberRangesAreTheRawText() throws {
        let text = #"{"node" : {"b": "}\"{", "a":[1, 2]} ,"sign":"abc"}"#
        let bytes = Array(text.utf8)
        try bytes.withUnsafeBufferPointer { buffer in
            let view = try #require(JSONObjectView(buffer))
            let node = try #require(view["node"]), sign = try #require(view["sign"])
            #expect(String(decoding: bytes[node.range], as: UTF8.self) == #"{"b": "}\"{", "a":[1, 2]}"#)
            #expect(String(decoding: bytes[sign.range], as: UTF8.self) == #""abc""#)
        }
    }

    @Test func objectViewLocatesMembersAndNestedObjects() throws {
        let text = #"{"id":"E1","skip":[{"id":"in array"},-2.5e3,true,null],"resource":{"a":"b","id":"inner","n":{"x":7}},"id":"E2","k\u0065y":"v\"q","z":"中","m":-12}"#
        let bytes = Array(text.utf8)
        try bytes.withUnsafeBufferPointer { buffer in
            let view = try #require(JSONObjectView(buffer))
            #expect(view["id"]?.string == "E1")  // the first of a repeated key
            #expect(view["key"]?.string == "v\"q")  // escaped key, escaped value
            #expect(view["z"]?.string == "中")
            #expect(view["m"]?.int64 == -12 && view["m"]?.string == nil)
            #expect(view["skip"]?.object == nil && view["skip"]?.string == nil)
            #expect(view["a"] == nil && view["x"] == nil)  // nested members are not the top level's
            let resource = try #require(view["resource"]?.object)
            #expect(resource["a"]?.isString("b") == true && resource["a"]?.isString("c") == false)
            #expect(resource["id"]?.string == "inner" && resource["z"] == nil)
            #expect(resource["n"]?.object?["x"]?.int64 == 7)
            let plain = try #require(resource["a"]?.withStringBytes { Array($0) })
            #expect(plain == [UInt8(ascii: "b")])
            #expect(view["id"].map { String(decoding: bytes[$0.range], as: UTF8.self) } == #""E1""#)
        }
    }

    @Test func objectViewRefusesWhatParseRefuses() {
        let invalid = ["{\"a\":1,\"s\":\"\\x\"}", "{\"s\":\"\u{01}\"}", "{\"s\":\"\\ud800\"}", "{\"s\":[1,]}", "{\"s\":01}", "{\"s\":tru}",
                       "{\"s\":{\"a\"}}", "{\"s\":1} x", "{\"s\":" + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "}",
                       "{\"s\":" + String(repeating: "{\"a\":", count: 70) + "1" + String(repeating: "}", count: 71), "[1]", "\"s\"", "", "{", "{\"a\":{\"b\":1}"]
        for text in invalid {
            #expect(Array(text.utf8).withUnsafeBufferPointer { JSONObjectView($0) } == nil, "\(text.prefix(40))")
            #expect(JSONObjectView.agreesWithParse(Array(text.utf8)))
        }
        #expect([0x7B, 0x22, 0x73, 0x22, 0x3A, 0x22, 0xFF, 0x22, 0x7D].withUnsafeBufferPointer { JSONObjectView($0) } == nil)
    }

    /// Random byte edits of realistic documents: the view accepts exactly what `parse` accepts
    /// as an object, and reads every member the same.
    @Test func objectViewAgreesWithParseUnderMutation() {
        let seeds = [
            #"{"id":"EV-1","summary":"支付成功","resource":{"algorithm":"AEAD_AES_256_GCM","ciphertext":"QUJD\/+==","nonce":"abc"},"n":[1,{"a":2}]}"#,
            #"{"mchid":"19","amount":{"total":8888,"currency":"CNY"},"payer":{"openid":"o\u00e9"},"ok":true,"x":null,"e":1.5e-3}"#,
        ]
        var rng = SplitMix(seed: 0x5EED)
        let alphabet = Array(#"{}[]":,\"0123456789-.eE tfnul aé"#.utf8) + [0x00, 0x1F, 0x80, 0xBF, 0xC0, 0xE4, 0xED, 0xF4, 0xFF]
        var accepted = 0
        for seed in seeds {
            #expect(JSONObjectView.agreesWithParse(Array(seed.utf8)))
            for _ in 0..<3000 {
                var bytes = Array(seed.utf8)
                for _ in 0..<Int(rng.next() % 3 + 1) {
                    let at = Int(rng.next() % UInt64(bytes.count))
                    let byte = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                    switch rng.next() % 3 {
                    case 0: bytes[at] = byte
                    case 1: bytes.insert(byte, at: at)
                    default: bytes.remove(at: at)
                    }
                }
                if bytes.withUnsafeBufferPointer({ JSONObjectView($0) }) != nil { accepted += 1 }
                #expect(JSONObjectView.agreesWithParse(bytes), "\(String(decoding: bytes, as: UTF8.self))")
            }
        }
        #expect(accepted > 100)  // the edits keep enough documents valid to compare readings
    }

    @Test func serializesAndReparses() throws {
        let value = JSONValue.object(["k": .string("a\"b\\c\n\u{01}中"), "n": .number("12"), "l": .array([.null])])
        #expect(try JSONValue.parse(Array(value.serialized().utf8)) == value)
    }
}

@Suite struct TimestampTests {
    @Test func alipayAndRFC3339() {
        #expect(Timestamps.parseAlipay("2026-11-27 10:00:05") == Date(timeIntervalSince1970: 1_795_744_805))
        #expect(Timestamps.parseRFC3339("2026-11-27T10:00:05+08:00") == Date(timeIntervalSince1970: 1_795_744_805))
        #expect(Timestamps.parseRFC3339("2026-11-27T02:00:05Z") == Date(timeIntervalSince1970: 1_795_744_805))
        #expect(Timestamps.parseRFC3339("2026-11-27T02:00:05.500Z") == Date(timeIntervalSince1970: 1_795_744_805.5))
        #expect(Timestamps.parseRFC3339("2024-02-29T00:00:00-01:30") == Date(timeIntervalSince1970: 1_709_170_200))
        for bad in ["2026-02-30 10:00:00", "2026-13-01 00:00:00", "2026-11-27T10:00:05", "26-11-27 10:00:05", ""] {
            #expect(Timestamps.parseAlipay(bad) == nil && Timestamps.parseRFC3339(bad) == nil)
        }
        let date = Date(timeIntervalSince1970: 1_795_744_805)
        #expect(Timestamps.formatAlipay(date) == "2026-11-27 10:00:05")
        #expect(Timestamps.formatRFC3339China(date) == "2026-11-27T10:00:05+08:00")
    }
}

@Suite struct KeyLoadingTests {
    @Test func readsEveryPEMForm() throws {
        _ = try RSAPrivateKey(pemRepresentation: Fixture.text("app_private_pkcs1.pem"))     // PKCS#1
        _ = try RSAPrivateKey(pemRepresentation: Fixture.text("alipay_private_pkcs8.pem"))  // PKCS#8
        let spki = try RSAPublicKey(pemRepresentation: Fixture.text("alipay_public.pem"))   // SPKI
        #expect(spki.keySizeInBits == 2048)
        // Bare base64 DER, as Alipay's console shows keys.
        let bare = try Fixture.text("alipay_public.pem").split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        _ = try RSAPublicKey(pemRepresentation: bare)
    }

    @Test func errorsNeverShowTheKey() throws {
        do {
            _ = try RSAPublicKey(pemRepresentation: Fixture.text("alipay_private_pkcs8.pem"))
            Issue.record("expected an error")
        } catch let error as KeyLoadError {
            #expect(error.file == nil)
            #expect(!error.description.contains("MII"))
        }
        do {
            _ = try RSAPublicKey(pemRepresentation: Fixture.text("wechat_platform_cert.pem"))
            Issue.record("expected an error")
        } catch let error as KeyLoadError {
            #expect(error.description.contains("certificate"))
        }
        #expect(SharedSecret(text: "very secret").description == "SharedSecret(11 bytes)")
        #expect(!"\(SharedSecret(text: "very secret"))".contains("very"))
    }

    @Test func rejectionReasonsAreStable() {
        #expect(ReasonCode.rejections.map(\.rawValue) == [
            "bad_signature", "unknown_key", "stale_timestamp", "probe_signature", "decrypt_failed", "malformed",
            "merchant_mismatch", "unsupported_sign_type", "ip_not_allowed", "unsupported_kind",
        ])
    }
}

@Suite struct FormDecodingTests {
    @Test(arguments: ["a=1&b=%E4%B8%AD&c=x+y", "", "&&", "a", "a=", "=v", "k=v=w&k2", "a=1&", "sign=abc%3D%3D&sign_type=RSA2",
                      String(repeating: "key_number_long=value+with+spaces%21&", count: 20)])
    func decodedFormMatchesPairs(_ text: String) throws {
        let pairs = try #require(FormEncoding.parse(text))
        var copy = text
        let form = try #require(copy.withUTF8 { DecodedForm($0) })
        #expect(form.pairs == pairs)
    }

    @Test func decodedFormMatchesPairsAtEveryOffset() throws {
        // Specials and escapes at every position around the 8-byte steps.
        for pad in 0..<17 {
            let filler = String(repeating: "x", count: pad)
            for text in ["\(filler)=\(filler)%41+&k\(filler)=v=w%2B&&\(filler)", "a\(filler)+b=\(filler)%E4%B8%AD\(filler)&\(filler)",
                         "\(filler)%3D=1&=\(filler)&\(filler)"] {
                let pairs = try #require(FormEncoding.parse(text))
                var copy = text
                let form = try #require(copy.withUTF8 { DecodedForm($0) })
                #expect(form.pairs == pairs, "\(text)")
                #expect(AlipaySignature.signContent(form) == AlipaySignature.signContent(pairs), "\(text)")
            }
            for bad in ["\(filler)=%4&", "\(filler)%ff=1", "a=\(filler)%g0", "\(filler)%"] {
                var copy = bad
                #expect(copy.withUTF8 { DecodedForm($0) } == nil, "\(bad)")
            }
        }
    }

    @Test(arguments: ["a=1&b=2&a=3", "sign=1&sign=2&a=1", "a=&a=1", "notify_id=1&notify_id_x=2&notify_i=3&notify_id=4", "b=1&a=2&sign_type=RSA2&sign=x"])
    func signContentFromFormMatchesPairs(_ text: String) throws {
        var copy = text
        let form = try #require(copy.withUTF8 { DecodedForm($0) })
        #expect(AlipaySignature.signContent(form) == AlipaySignature.signContent(try #require(FormEncoding.parse(text))))
    }

    @Test(arguments: ["a=%zz", "a=%4", "%ff=1", "b=1&a=%"])
    func badEscapesAndKeysFail(_ text: String) {
        var copy = text
        #expect(copy.withUTF8 { DecodedForm($0) } == nil)
        #expect(FormEncoding.parse(text) == nil)
    }

    /// The hand-written validator against the standard library's, on random short sequences
    /// drawn mostly from the bytes where UTF-8's rules change.
    @Test func utf8ValidatorAgreesWithTheStandardLibrary() {
        var rng = SplitMix(seed: 0x0717F8)
        let edges: [UInt8] = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF,
                              0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]
        for _ in 0..<50_000 {
            let bytes = (0..<Int(rng.next() % 7)).map { _ in rng.next() % 4 == 0 ? UInt8(truncatingIfNeeded: rng.next()) : edges[Int(rng.next() % UInt64(edges.count))] }
            let expected = String(validating: bytes, as: UTF8.self) != nil
            #expect(bytes.withUnsafeBufferPointer { Bytes.isUTF8($0) } == expected, "\(bytes)")
        }
    }

    @Test func utf8Validation() {
        #expect(Bytes.utf8String([0x61, 0xE4, 0xB8, 0xAD]) == "a中")
        #expect(Bytes.utf8String([0xFF]) == nil)
        #expect(Bytes.utf8String([0xED, 0xA0, 0x80]) == nil)        // surrogate
        #expect(Bytes.utf8String([0xC0, 0x80]) == nil)              // overlong
        #expect(Bytes.utf8String([0xF0, 0x9F, 0x98, 0x41]) == nil)  // truncated 4-byte sequence, same length when repaired
        #expect(Bytes.utf8String([0xEF, 0xBF, 0xBD]) == "\u{FFFD}")  // a real U+FFFD is valid
    }

    @Test func signContentSortsDropsAndRefusesRepeats() throws {
        let pairs = try #require(FormEncoding.parse("notify_type=x&b=2&sign=s&sign_type=RSA2&notify_time=t&a=&notify_id=n&buyer_pay_amount=1&buyer_id=9"))
        let content = try #require(AlipaySignature.signContent(pairs))
        #expect(String(decoding: content, as: UTF8.self) == "b=2&buyer_id=9&buyer_pay_amount=1&notify_id=n&notify_time=t&notify_type=x")
        let withType = try #require(AlipaySignature.signContent(pairs, excludingSignType: false))
        #expect(String(decoding: withType, as: UTF8.self).hasSuffix("&sign_type=RSA2"))
        #expect(AlipaySignature.signContent(try #require(FormEncoding.parse("a=1&b=2&a=3"))) == nil)
    }
}

@Suite struct Base64Tests {
    @Test func matchesFoundation() {
        var rng = SystemRandomNumberGenerator()
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let text = Data(bytes).base64EncodedString()
            #expect(Base64.decode(text) == bytes, "length \(length)")
        }
    }

    @Test(arguments: ["A", "AB=", "A===", "AB=C", "AB C", "****", "QUJD\n", "QQ==QQ==", "=AAA"])
    func refusesInvalid(_ text: String) {
        // (Foundation is laxer: it accepts "AB=C".)
        #expect(Base64.decode(text) == nil)
    }
}

/// A small deterministic generator, so a failing random case can be rerun.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Signing and AES-GCM opening go through OpenSSL's libcrypto. PKCS#1 v1.5 signatures are
/// deterministic, so they are checked byte for byte against independent ones.
@Suite struct LibCryptoTests {
    /// The Alipay fixtures were signed by Python `cryptography` (make_fixtures.py) with this key.
    @Test func libcryptoReproducesTheFixtureSignatures() throws {
        let key = try RSAPrivateKey(pemRepresentation: Fixture.text("alipay_private_pkcs8.pem"))
        for (file, sha1) in [("alipay_notify_utf8.form", false), ("alipay_notify_rsa1.form", true)] {
            let pairs = try #require(FormEncoding.parse(try Fixture.bytes(file)))
            let content = try #require(AlipaySignature.signContent(pairs))
            let expected = try #require(pairs.first { $0.key == "sign" }).value
            let signature = sha1 ? key.signSHA1(content) : key.signSHA256(content)
            #expect(AlipaySignature.base64(signature) == String(decoding: expected, as: UTF8.self), "\(file)")
        }
    }

    @Test func libcryptoAndSwiftCryptoSignAlike() throws {
        let keys = [try RSAPrivateKey(pemRepresentation: Fixture.text("app_private_pkcs1.pem")), try RSAPrivateKey(pemRepresentation: Fixture.text("wechat_merchant_private.pem")),
                    RSAPrivateKey.generate()]
        var rng = SplitMix(seed: 0x516E)
        for key in keys {
            for length in [0, 1, 55, 56, 64, 1300] {
                let message = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                let signature = key.signSHA256(message)
                #expect(signature == key.swiftCryptoSignSHA256(message), "length \(length)")
                #expect(key.publicKey.isValidSHA256Signature(signature, for: message))
                #expect(key.publicKey.isValidSHA1Signature(key.signSHA1(message), for: message))
                #expect(!key.publicKey.isValidSHA256Signature(key.signSHA1(message), for: message))
            }
        }
    }

    /// WeChat Pay resources are opened by libcrypto; the channel side seals them with
    /// swift-crypto, so this is also a check across the two libraries.
    @Test func libcryptoOpensWhatSwiftCryptoSeals() throws {
        var rng = SplitMix(seed: 0xAE5)
        func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
        let secret = SharedSecret(bytes: bytes(32))
        let other = SharedSecret(bytes: bytes(32))
        func open(_ key: SharedSecret, _ nonce: String, _ sealed: [UInt8], _ aad: String) -> [UInt8]? {
            var nonce = nonce, aad = aad
            return key.withUnsafeBytes { key in
                nonce.withUTF8 { nonce in sealed.withUnsafeBufferPointer { sealed in aad.withUTF8 { aad in
                    LibCryptoAESGCM.open(key: key, nonce: nonce, ciphertextAndTag: sealed, associatedData: aad)
                } } }
            }
        }
        for length in [0, 1, 15, 16, 17, 450, 4096] {
            let plaintext = bytes(length)
            let nonce = Nonce.random(12), aad = length % 2 == 0 ? "transaction" : ""
            let sealed = try #require(Base64.decode(WeChatPaySignature.encrypt(plaintext: plaintext, key: secret, nonce: nonce, associatedData: aad)))
            #expect(open(secret, nonce, sealed, aad) == plaintext, "length \(length)")
            var flipped = sealed
            flipped[Int(rng.next() % UInt64(sealed.count))] ^= 0x01  // ciphertext or tag
            #expect(open(secret, nonce, flipped, aad) == nil)
            #expect(open(secret, nonce, sealed, aad + "x") == nil)
            #expect(open(secret, Nonce.random(12), sealed, aad) == nil)
            #expect(open(other, nonce, sealed, aad) == nil)
            #expect(open(secret, nonce, Array(sealed.dropLast()), aad) == nil)  // a short tag
        }
    }

    /// The workers sign with one key from every thread at once.
    @Test func oneKeySignsFromManyThreadsAtOnce() {
        let key = RSAPrivateKey.generate()
        let messages = (0..<64).map { Array("query \($0)".utf8) }
        let results = Mutex([[UInt8]?](repeating: nil, count: messages.count))
        DispatchQueue.concurrentPerform(iterations: messages.count) { i in
            let signature = key.signSHA256(messages[i])
            results.withLock { $0[i] = signature }
        }
        let signatures = results.withLock { $0 }
        for (message, signature) in zip(messages, signatures) {
            #expect(signature == key.swiftCryptoSignSHA256(message))
        }
    }
}
