import HTTPTypes
import PayhookCore
@testable import Receiver
import Testing

/// The raw-head reader, without I/O: it finds each request's head in a connection's bytes,
/// however they are split, and keeps values that are not UTF-8 as their bytes.
@Suite struct RawHeadTests {
    static let odd: [UInt8] = [0xFF, 0xFE, 0xC3, 0x28, 0x20, 0x6F, 0x6B]

    /// Three pipelined requests: a fixed body that contains an empty line, a chunked body
    /// with a trailer, and an ASCII-only head.
    static let stream: [UInt8] = {
        var bytes = Array("\r\nPOST /notify/alipay HTTP/1.1\r\nHost: a.example\r\nX-Odd:  ".utf8) + odd
        bytes += Array("\t \r\nContent-Length: 9\r\n\r\nab\r\n\r\ncd\n".utf8)
        bytes += Array("POST /notify/wechatpay HTTP/1.1\r\nHost: b.example\r\nTransfer-Encoding: gzip, chunked\r\nX-Odd: ".utf8)
        bytes += [0xC8, 0xFF] + Array("\r\n\r\n".utf8)
        bytes += Array("4;ext=1\r\nwxyz\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n".utf8)
        bytes += Array("GET /return/alipay?a=1 HTTP/1.1\nHost: c.example\n\n".utf8)
        return bytes
    }()

    static let expected: [RawHeadParser.Head] = [
        [HeaderField(name: "Host", value: "a.example"), HeaderField(name: "X-Odd", bytes: odd),
         HeaderField(name: "Content-Length", value: "9")],
        [HeaderField(name: "Host", value: "b.example"), HeaderField(name: "Transfer-Encoding", value: "gzip, chunked"),
         HeaderField(name: "X-Odd", bytes: [0xC8, 0xFF])],
        nil,
    ]

    static func feed(_ chunks: [ArraySlice<UInt8>]) -> (heads: [RawHeadParser.Head], lost: Bool) {
        var parser = RawHeadParser()
        var heads: [RawHeadParser.Head] = []
        for chunk in chunks { heads += Array(chunk).withUnsafeBytes { parser.feed($0) } }
        return (heads, parser.isLost)
    }

    @Test func findsEveryHeadWhereverTheBytesAreSplit() {
        let whole = Self.feed([Self.stream[...]])
        #expect(whole.heads == Self.expected)
        #expect(!whole.lost)
        #expect(whole.heads[0]?[1].bytes == Self.odd, "the bytes, without the surrounding whitespace")
        #expect(whole.heads[0]?[1].value == "\u{FFFD}\u{FFFD}\u{FFFD}( ok", "the text reads as the decoder's does")

        #expect(Self.feed(Self.stream.map { [$0][...] }).heads == Self.expected, "one byte at a time")
        for cut in stride(from: 1, to: Self.stream.count, by: 7) {
            let split = Self.feed([Self.stream[..<cut], Self.stream[cut...]])
            #expect(split.heads == Self.expected, "split at \(cut)")
        }
    }

    @Test func stopsForGoodOnWhatItDoesNotFollow() {
        let cases = [
            "GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\nGET / HTTP/1.1\r\nX: \u{E9}\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
            "GET / HTTP/1.1\r\nno colon here\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
        ]
        for text in cases {
            let result = Self.feed([Array(text.utf8)[...]])
            #expect(result.lost, "\(text.debugDescription)")
            #expect(result.heads.allSatisfy { $0 == nil }, "no head after losing track: \(text.debugDescription)")
        }
        let long = Self.feed([Array(("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 100_000)).utf8)[...]])
        #expect(long.lost && long.heads.isEmpty, "a head past the decoder's limit is not kept")
    }

    @Test func aRawHeadIsUsedOnlyWhereItAgreesWithTheDecodedOne() throws {
        let raw = try #require(Self.expected[0])
        var fields = HTTPFields()
        fields.append(HTTPField(name: HTTPField.Name("X-Odd")!, value: "\u{FFFD}\u{FFFD}\u{FFFD}( ok"))
        fields.append(HTTPField(name: .contentLength, value: "9"))
        #expect(RawRequestHead.agrees(raw, authority: "a.example", fields: fields))

        #expect(!RawRequestHead.agrees(raw, authority: "b.example", fields: fields), "another authority")
        #expect(!RawRequestHead.agrees(raw, authority: nil, fields: fields), "a Host the decoder did not take")
        var other = fields
        other[.contentLength] = "8"
        #expect(!RawRequestHead.agrees(raw, authority: "a.example", fields: other), "another value")
        var more = fields
        more.append(HTTPField(name: .accept, value: "*/*"))
        #expect(!RawRequestHead.agrees(raw, authority: "a.example", fields: more), "a field the raw head lacks")
        #expect(!RawRequestHead.agrees(Array(raw.dropLast()), authority: "a.example", fields: fields), "one it has extra")
    }
}
