@testable import CallbackQueue
import Foundation
import PayhookCore
import Testing

/// Headers are stored as JSON written by hand; any JSON reader must read back exactly the
/// headers sent, in order, with repeats.
@Suite struct HeaderCodingTests {
    @Test func roundTripsThroughAnyJSONReader() throws {
        let headers = [
            HeaderField(name: "Host", value: "shop.example.com"),
            HeaderField(name: "Wechatpay-Signature", value: "a+b/c=="),
            HeaderField(name: "X-Quote", value: #"say "hi" \ back\slash"#),
            HeaderField(name: "X-Controls", value: "tab\tnew\nline\rcr\u{01}\u{1F}\u{7F}"),
            HeaderField(name: "X-Unicode", value: "支付成功 é 🙂"),
            HeaderField(name: "X-Empty", value: ""),
            HeaderField(name: "X-Forwarded-For", value: "10.0.0.1"),
            HeaderField(name: "X-Forwarded-For", value: "10.0.0.2"),
        ]
        let json = HeaderCoding.encode(headers)
        #expect(try HeaderCoding.decode(json) == headers)
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String]])
        #expect(parsed.map { HeaderField(name: $0[0], value: $0[1]) } == headers)
        #expect(json.contains(#"\u0001"#) && json.contains(#"\u001f"#) && json.contains(#"\t"#) && json.contains(#"\""#))
        #expect(HeaderCoding.encode([]) == "[]")
    }
}
