import CallbackQueue
import Foundation
import PayhookCore
import Postgres
import PostgresTestSupport
import Testing

/// Headers are stored as `header_names text[]` and `header_values bytea[]`: PostgreSQL reads
/// them itself, and they come back exactly as sent, in order, with repeats.
@Suite struct HeaderStorageTests {
    static let odd = [
        HeaderField(name: "Host", value: "shop.example.com"),
        HeaderField(name: "Wechatpay-Signature", value: "a+b/c=="),
        HeaderField(name: "X-Quote", value: #"say "hi" \ back\slash"#),
        HeaderField(name: "X-Controls", value: "tab\tnew\nline\rcr\u{01}\u{1F}\u{7F}"),
        HeaderField(name: "X-Unicode", value: "支付成功 é 🙂"),
        HeaderField(name: "X-Empty", value: ""),
        HeaderField(name: "X-Forwarded-For", value: "10.0.0.1"),
        HeaderField(name: "X-Forwarded-For", value: "10.0.0.2"),
    ]

    @Test func roundTripThroughTheArraysAndTheView() throws {
        let database = try TestDatabase.create()
        let connection = try database.connect()
        var callbacks = (0..<3).map { RawCallback(channel: "alipay", headers: Self.odd, body: [UInt8($0)]) }
        callbacks[1].headers = []  // rows with no headers between rows with headers keep their own slices
        callbacks[2].headers = Array(Self.odd.reversed())
        let ids = try QueueStore.insert(callbacks, on: connection)
        let claimed = try QueueStore(workerID: "w").claim(limit: 3, on: connection).sorted { $0.id < $1.id }
        #expect(try claimed.map { try $0.stored.get().headers } == callbacks.map(\.headers))
        #expect(try claimed.map { try $0.stored.get().body } == [[0], [1], [2]])

        // The bytes are the values' UTF-8, and the operators' view still shows [[name, value], ...].
        let row = try connection.query("SELECT header_values, headers::text FROM callbacks WHERE id = $1", [.int64(ids[0])])[0]
        #expect(try row.byteaArray(0) == Self.odd.map { Array($0.value.utf8) })
        let view = try #require(try JSONSerialization.jsonObject(with: Data(try row.decode(1, as: String.self).utf8)) as? [[String]])
        #expect(view.map { HeaderField(name: $0[0], value: $0[1]) } == Self.odd)
        let empty = try connection.query("SELECT headers::text FROM callbacks WHERE id = $1", [.int64(ids[1])])[0]
        #expect(try empty.decode(0, as: String.self) == "[]")
    }

    @Test func aValueThatIsNotUTF8IsStoredAndReadBackAsItsBytes() throws {
        let database = try TestDatabase.create()
        let connection = try database.connect()
        let odd: [UInt8] = [0xFF, 0xFE, 0xC3, 0x28, 0x20, 0x6F, 0x6B]
        let headers = [HeaderField(name: "X-Odd", bytes: odd), HeaderField(name: "X-Plain", value: "caf\u{E9}")]
        #expect(headers[0].value == "\u{FFFD}\u{FFFD}\u{FFFD}( ok" && headers[0].bytes == odd)
        let id = try QueueStore.insert([RawCallback(channel: "alipay", headers: headers)], on: connection)[0]
        let row = try connection.query("SELECT header_values FROM callbacks WHERE id = $1", [.int64(id)])[0]
        #expect(try row.byteaArray(0) == [odd, Array("caf\u{E9}".utf8)])
        let claimed = try QueueStore(workerID: "w").claim(limit: 1, on: connection)
        #expect(try claimed.first?.stored.get().headers == headers, "read back with the same bytes")
    }

    @Test func aValueThatIsNotUTF8KeepsTheViewReadable() throws {
        let database = try TestDatabase.create()
        let connection = try database.connect()
        let id = try QueueStore.insert([RawCallback(channel: "alipay", headers: [HeaderField(name: "X", value: "ok")])],
                                       on: connection)[0]
        try connection.query("UPDATE callback_payloads SET header_values = ARRAY[$2::bytea] WHERE id = $1",
                             [.int64(id), .bytea([0xFF, 0xFE, 0xC3, 0x28, 0x20, 0x6F, 0x6B])])
        let row = try connection.query("SELECT header_values, headers::text FROM callbacks WHERE id = $1", [.int64(id)])[0]
        #expect(try row.byteaArray(0) == [[0xFF, 0xFE, 0xC3, 0x28, 0x20, 0x6F, 0x6B]], "stored as the bytes")
        #expect(try row.decode(1, as: String.self).contains(#"\\377\\376\\303( ok"#), "the view escapes, never fails")
    }

    /// `0004_header_arrays` converts rows stored as JSON pairs in place, in every state, and
    /// keeps a damaged one detectable.
    @Test func rowsStoredAsJSONAreConvertedInPlace() throws {
        let database = try TestDatabase.create(migrated: false)
        let connection = try database.connect()
        try SchemaMigrations.apply(QueueSchema.migrations.filter { $0.id < "0004" }, on: connection)
        let json = #"[["Host","a.example"],["X-Quote","say \"hi\" \\ é"],["X-R","1"],["X-R","2"]]"#
        for (index, headers) in [json, "[]", #"{"not":"pairs"}"#].enumerated() {
            try connection.query("""
                WITH p AS (
                    INSERT INTO callback_payloads (channel, kind, received_at, method, path, headers, body)
                    VALUES ('alipay', 'notify', now(), 'POST', '/notify/alipay', $1::json, $2) RETURNING id)
                INSERT INTO callback_jobs (callback_id, channel, state) SELECT id, 'alipay', $3 FROM p
                """, [.text(headers), .bytea([UInt8(index)]), .text(index == 1 ? "done" : "pending")])
        }
        #expect(try SchemaMigrations.apply(QueueSchema.migrations, on: connection) == ["0004_header_arrays", "0008_queue_partitions"])
        let claimed = try QueueStore(workerID: "w").claim(limit: 10, on: connection).sorted { $0.id < $1.id }
        #expect(claimed.count == 2, "the done row stays done")
        #expect(try claimed[0].stored.get().headers == [
            HeaderField(name: "Host", value: "a.example"), HeaderField(name: "X-Quote", value: #"say "hi" \ é"#),
            HeaderField(name: "X-R", value: "1"), HeaderField(name: "X-R", value: "2"),
        ])
        guard case .failure(let corrupt) = claimed[1].stored else { Issue.record("expected a corrupt row"); return }
        #expect(corrupt.column == "headers")
        let done = try connection.query("SELECT cardinality(header_names), state FROM callbacks WHERE body = '\\x01'")[0]
        #expect(try done.decode(0, as: Int.self) == 0 && done.decode(1, as: String.self) == "done")
    }
}
