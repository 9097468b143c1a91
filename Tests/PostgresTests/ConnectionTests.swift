import Foundation
import Postgres
import PostgresTestSupport
import Testing

/// The libpq layer against a real server: types, errors, transactions, notifications,
/// pipelines, cancel and reconnect.
@Suite struct ConnectionTests {
    let database: TestDatabase

    init() throws { database = try TestDatabase.create(migrated: false) }

    @Test func readsEveryTypeWithoutSurprises() throws {
        let connection = try database.connect()
        let when = Date(timeIntervalSince1970: 1_790_000_000.123456)
        let body: [UInt8] = [0, 1, 2, 0xFF, 0x5C, 0x78]  // NUL, high byte and "\x" stay verbatim
        let row = try connection.query("""
            SELECT $1::text, $2::bytea, $3::timestamptz, '10.1.2.3'::inet, '2001:db8::1'::inet,
                   '{"a": [1, "x"]}'::jsonb, $4::bigint, $5::bool, NULL::text, NULL::bigint, 3::int4, 2.5::float8
            """, [.text("héllo ✓"), .bytea(body), .timestamptz(when), .int64(-9_000_000_000_000), .bool(true)])[0]
        #expect(try row.decode(0, as: String.self) == "héllo ✓")
        #expect(try row.decode(1, as: [UInt8].self) == body)
        let readBack = try row.decode(2, as: Date.self)
        #expect(abs(readBack.timeIntervalSince(when)) < 0.000_001)
        #expect(try row.decode(3, as: String.self) == "10.1.2.3")
        #expect(try row.decode(4, as: String.self) == "2001:db8::1")
        #expect(try row.decode(5, as: String.self) == #"{"a": [1, "x"]}"#)
        #expect(try row.decode(6, as: Int64.self) == -9_000_000_000_000)
        #expect(try row.decode(7, as: Bool.self))
        #expect(try row.decode(8, as: String?.self) == nil)
        #expect(try row.decode(9, as: Int64?.self) == nil)
        #expect(try row.decode(10, as: Int.self) == 3)
        #expect(try row.decode(11, as: Double.self) == 2.5)
    }

    @Test func nullAndTypeMismatchAreErrorsNamingTheColumn() throws {
        let connection = try database.connect()
        let row = try connection.query("SELECT NULL::text AS missing, 'x'::text AS word")[0]
        #expect(throws: PostgresError.self) { try row.decode("missing", as: String.self) }
        do {
            _ = try row.decode("word", as: Int64.self)
            Issue.record("expected a decoding error")
        } catch {
            #expect(error.code == .decoding)
            #expect(error.description.contains("word"))
        }
    }

    @Test func arraysTravelInBinary() throws {
        let connection = try database.connect()
        let result = try connection.query("""
            SELECT * FROM unnest($1::text[], $2::bytea[], $3::bigint[], $4::timestamptz[], $5::int4[])
            """, [
            .textArray(["a", nil, "\"quoted\" {braces}, commas"]),
            .byteaArray([[1, 2], [], nil]),
            .int64Array([1, nil, Int64.max]),
            .timestamptzArray([Date(timeIntervalSince1970: 0), nil, Date(timeIntervalSince1970: 1_800_000_000.25)]),
            .int32Array([Int32.min, -1, nil]),
        ])
        #expect(result.count == 3)
        #expect(try result[0].decode(0, as: String.self) == "a")
        #expect(try result[0].decode(1, as: [UInt8].self) == [1, 2])
        #expect(try result[0].decode(2, as: Int64.self) == 1)
        #expect(try result[2].decode(3, as: Date.self) == Date(timeIntervalSince1970: 1_800_000_000.25))
        #expect(try result[0].decode(4, as: Int32.self) == Int32.min)
        #expect(try result[1].decode(4, as: Int32.self) == -1)
        #expect(try result[2].decode(4, as: Int32?.self) == nil)
        #expect(try result[2].decode(0, as: String.self) == "\"quoted\" {braces}, commas")
        #expect(try result[1].decode(0, as: String?.self) == nil)
        #expect(try result[1].decode(1, as: [UInt8].self) == [])
        #expect(try result[2].decode(1, as: [UInt8]?.self) == nil)
        #expect(try result[2].decode(2, as: Int64.self) == Int64.max)
        #expect(try result[0].decode(3, as: Date.self) == Date(timeIntervalSince1970: 0))

        // Empty arrays, and text that is not ASCII, byte for byte.
        let other = try connection.query("""
            SELECT cardinality($1::text[]), cardinality($2::bigint[]), ($3::text[])[2], octet_length(($3::text[])[2])
            """, [.textArray([]), .int64Array([]), .textArray(["", "支付宝 ✓"])])
        #expect(try other[0].decode(0, as: Int64.self) == 0)
        #expect(try other[0].decode(1, as: Int64.self) == 0)
        #expect(try other[0].decode(2, as: String.self) == "支付宝 ✓")
        #expect(try other[0].decode(3, as: Int64.self) == Int64("支付宝 ✓".utf8.count))
    }

    @Test func serverErrorsCarrySQLStateButNotValues() throws {
        let connection = try database.connect()
        do {
            try connection.query("SELECT $1::bigint", [.text("secret-value-123")])
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .server)
            #expect(error.sqlState == "22P02")
            #expect(!error.description.contains("secret-value-123"))
            #expect(String(reflecting: error).contains("secret-value-123"))  // debug text keeps it
        }
        // The connection is still usable afterwards.
        #expect(try connection.query("SELECT 1")[0].decode(0, as: Int.self) == 1)
    }

    @Test func transactionsCommitOrRollBack() throws {
        let connection = try database.connect()
        try connection.execute(script: "CREATE TABLE t (v int)")
        try connection.transaction { connection throws(PostgresError) in try connection.query("INSERT INTO t VALUES (1)") }
        #expect(throws: PostgresError.self) {
            try connection.transaction { connection throws(PostgresError) in
                try connection.query("INSERT INTO t VALUES (2)")
                try connection.query("INSERT INTO t VALUES ('not a number')")
            }
        }
        #expect(try connection.query("SELECT count(*) FROM t")[0].decode(0, as: Int.self) == 1)
    }

    @Test func preparedStatementsAreReused() throws {
        let connection = try database.connect()
        for value in 1...3 {
            let result = try connection.query(prepared: "add_one", "SELECT $1::bigint + 1", [.int(value)])
            #expect(try result[0].decode(0, as: Int.self) == value + 1)
        }
        let count = try connection.query(
            "SELECT count(*) FROM pg_prepared_statements WHERE name = 'add_one'")[0].decode(0, as: Int.self)
        #expect(count == 1)
    }

    @Test func sessionSettingsHoldOnEveryConnectionAndAfterAReset() throws {
        var configuration = Connection.Configuration(conninfo: database.url)
        configuration.settings = Connection.genericPlans.merging(["application_name": "payhook-test-settings"]) { a, _ in a }
        let connection = try Connection(configuration: configuration)
        let show = "SELECT current_setting('plan_cache_mode'), current_setting('application_name')"
        var row = try connection.query(show)[0]
        #expect(try row.decode(0, as: String.self) == "force_generic_plan")
        #expect(try row.decode(1, as: String.self) == "payhook-test-settings")
        // A prepared statement with a parameter now runs a generic plan from its first execution.
        try connection.query(prepared: "settings_probe", "SELECT count(*) FROM pg_class WHERE oid = $1::oid", [.int64(1259)])
        let plans = try connection.query("SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = 'settings_probe'")[0]
        #expect(try plans.decode(0, as: Int.self) == 1)
        #expect(try plans.decode(1, as: Int.self) == 0)

        let pid = try connection.query("SELECT pg_backend_pid()")[0].decode(0, as: Int.self)
        try database.connect().query("SELECT pg_terminate_backend($1)", [.int32(Int32(pid))])
        #expect(throws: PostgresError.self) { try connection.query("SELECT 1") }
        try connection.reconnect()
        row = try connection.query(show)[0]
        #expect(try row.decode(0, as: String.self) == "force_generic_plan")
        #expect(try row.decode(1, as: String.self) == "payhook-test-settings")
        // Without settings the server's default stands.
        #expect(try database.connect().query("SELECT current_setting('plan_cache_mode')")[0].decode(0, as: String.self) == "auto")
    }

    @Test func notificationsArriveAndWaitsTimeOut() throws {
        let listener = try database.connect()
        let sender = try database.connect()
        try listener.listen("payhook test channel")
        let clock = ContinuousClock()
        let start = clock.now
        #expect(try listener.waitForNotifications(timeout: .milliseconds(150)).isEmpty)
        #expect(clock.now - start >= .milliseconds(140))

        try sender.query("SELECT pg_notify('payhook test channel', $1)", [.text("hello")])
        let received = try listener.waitForNotifications(timeout: .seconds(5))
        #expect(received.map(\.payload) == ["hello"])
        #expect(received.first?.channel == "payhook test channel")
    }

    @Test func pipelineRunsInOneRoundTripAndIsAtomic() throws {
        let connection = try database.connect()
        try connection.execute(script: "CREATE TABLE p (v int PRIMARY KEY)")
        let results = try connection.pipeline([
            SQLStatement("INSERT INTO p VALUES ($1)", [.int32(1)]),
            SQLStatement("INSERT INTO p VALUES ($1)", [.int32(2)]),
            SQLStatement("SELECT count(*) FROM p"),
        ])
        #expect(try results[2][0].decode(0, as: Int.self) == 2)

        // A failing statement aborts the whole pipeline: nothing of it is committed.
        do {
            _ = try connection.pipeline([
                SQLStatement("INSERT INTO p VALUES ($1)", [.int32(3)]),
                SQLStatement("INSERT INTO p VALUES ($1)", [.int32(1)]),  // duplicate key
                SQLStatement("INSERT INTO p VALUES ($1)", [.int32(4)]),
            ])
            Issue.record("expected the duplicate to fail")
        } catch {
            #expect(error.sqlState == "23505")
        }
        #expect(try connection.query("SELECT count(*) FROM p")[0].decode(0, as: Int.self) == 2)
        // The connection is back in normal mode.
        #expect(try connection.query("SELECT 7")[0].decode(0, as: Int.self) == 7)
    }

    @Test func pipelinePreparesNamedStatementsOnceAndKeepsAnExplicitTransactionOpen() throws {
        let connection = try database.connect()
        try connection.execute(script: "CREATE TABLE q (v int PRIMARY KEY)")
        let insert = "INSERT INTO q VALUES ($1) RETURNING v"
        // A transaction over two pipelines, as the workers' apply: BEGIN in the first,
        // COMMIT in the second; the named statement is prepared once, in the first.
        let before = connection.roundTrips
        let first = try connection.pipeline([
            SQLStatement("BEGIN"), SQLStatement(prepared: "q_insert", insert, [.int32(1)]),
            SQLStatement(prepared: "q_insert", insert, [.int32(2)]),
        ])
        #expect(try first[1][0].decode(0, as: Int.self) == 1 && first[2][0].decode(0, as: Int.self) == 2)
        let other = try database.connect()
        #expect(try other.query("SELECT count(*) FROM q")[0].decode(0, as: Int.self) == 0)  // not committed yet
        _ = try connection.pipeline([SQLStatement(prepared: "q_insert", insert, [.int32(3)]), SQLStatement("COMMIT")])
        #expect(connection.roundTrips - before == 2)
        #expect(try other.query("SELECT count(*) FROM q")[0].decode(0, as: Int.self) == 3)
        // Prepared once: running it alone now must not prepare it again (that would fail).
        try connection.query(SQLStatement(prepared: "q_insert", insert, [.int32(4)]))

        // A statement that fails inside the explicit transaction skips the rest, COMMIT too,
        // and leaves the transaction aborted; a name first prepared after the failure is
        // not taken as prepared.
        _ = try connection.pipeline([SQLStatement("BEGIN"), SQLStatement(prepared: "q_insert", insert, [.int32(5)])])
        do {
            _ = try connection.pipeline([
                SQLStatement(prepared: "q_insert", insert, [.int32(1)]),  // duplicate key
                SQLStatement(prepared: "q_insert_late", insert, [.int32(6)]), SQLStatement("COMMIT"),
            ])
            Issue.record("expected the duplicate to fail")
        } catch {
            #expect(error.sqlState == "23505")
        }
        try connection.query("ROLLBACK")
        #expect(try other.query("SELECT array_agg(v ORDER BY v)::text FROM q")[0].decode(0, as: String.self) == "{1,2,3,4}")
        try connection.query(SQLStatement(prepared: "q_insert_late", insert, [.int32(6)]))
        #expect(try other.query("SELECT count(*) FROM q")[0].decode(0, as: Int.self) == 5)
    }

    @Test func cancelStopsARunningStatement() async throws {
        let serial = SerialConnection(configuration: .init(conninfo: database.url))
        let task = Task { try await serial.run { try $0.query("SELECT pg_sleep(30)") } }
        // Cancel once the statement is running (a busy machine may take a while to send it).
        let observer = try database.connect()
        for _ in 0..<200 {
            let running = try observer.query(
                "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'")
            if try running[0].decode(0, as: Int.self) > 0 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let start = ContinuousClock.now
        task.cancel()
        do {
            _ = try await task.value
            Issue.record("expected cancellation")
        } catch let error as PostgresError {
            #expect(error.code == .cancelled)
            #expect(error.sqlState == "57014")
        }
        #expect(ContinuousClock.now - start < .seconds(20))  // the statement sleeps 30 s
        #expect(try await serial.run { try $0.query("SELECT 1")[0].decode(0, as: Int.self) } == 1)
    }

    @Test func aCancelBeforeTheStatementRunsStillCancelsIt() async throws {
        let serial = SerialConnection(configuration: .init(conninfo: database.url))
        let task = Task {
            // Cancelled before the body is even queued.
            withUnsafeCurrentTask { $0?.cancel() }
            return try await serial.run { try $0.query("SELECT pg_sleep(30)") }
        }
        let start = ContinuousClock.now
        await #expect(throws: PostgresError.self) { _ = try await task.value }
        #expect(ContinuousClock.now - start < .seconds(20))  // the statement sleeps 30 s
    }

    @Test func reconnectsAfterTheBackendIsKilledAndKeepsListening() throws {
        let connection = try database.connect()
        try connection.listen("again")
        let pid = try connection.query("SELECT pg_backend_pid()")[0].decode(0, as: Int.self)
        let killer = try database.connect()
        try killer.query("SELECT pg_terminate_backend($1)", [.int32(Int32(pid))])
        do {
            try connection.query("SELECT 1")
            Issue.record("expected a lost connection")
        } catch {
            #expect(error.code == .connectionLost)
            #expect(error.isTransient)
        }
        #expect(!connection.isConnected)
        try connection.reconnect()
        #expect(try connection.query("SELECT 1")[0].decode(0, as: Int.self) == 1)
        try killer.query("NOTIFY again")
        #expect(try connection.waitForNotifications(timeout: .seconds(5)).count == 1)
    }

    @Test func connectingToNothingFailsClearly() {
        do {
            _ = try Connection("postgres://postgres@127.0.0.1:1/none")
            Issue.record("expected a connection failure")
        } catch {
            #expect(error.code == .connectionFailed, "\(String(reflecting: error))")
            #expect(error.isTransient)
        }
    }
}
