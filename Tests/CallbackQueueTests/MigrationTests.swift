import CallbackQueue
import Postgres
import PostgresTestSupport
import Testing

@Suite struct MigrationTests {
    @Test func secondRunIsANoOp() throws {
        let database = try TestDatabase.create(migrated: false)
        let connection = try database.connect()
        #expect(try Migrations.apply(on: connection) == Migrations.all.map(\.id))
        #expect(try Migrations.apply(on: connection).isEmpty)
        #expect(try Migrations.applied(on: connection) == Migrations.all.map(\.id))
    }

    @Test func concurrentRunsApplyEachMigrationOnce() async throws {
        let database = try TestDatabase.create(migrated: false)
        let results = try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<4 {
                group.addTask { try Migrations.apply(on: try database.connect()) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.flatMap { $0 }.sorted() == Migrations.all.map(\.id).sorted())
        let connection = try database.connect()
        #expect(try connection.query("SELECT count(*) FROM payhook_migrations")[0].decode(0, as: Int.self)
                == Migrations.all.count)
    }

    @Test func statesAreConstrained() throws {
        let database = try TestDatabase.create()
        let connection = try database.connect()
        let id = try QueueStore.insert([QueueTestData.callback(1)], on: connection)[0]
        do {
            try connection.query("UPDATE callback_jobs SET state = 'failed' WHERE callback_id = $1", [.int64(id)])
            Issue.record("the CHECK must refuse an unknown state")
        } catch {
            #expect(error.sqlState == "23514")
        }
        do {
            try connection.query("INSERT INTO orders (out_trade_no, channel, amount_minor, status) VALUES ('o', 'alipay', 1, 'refunded')")
            Issue.record("the CHECK must refuse an unknown order status")
        } catch {
            #expect(error.sqlState == "23514")
        }
    }
}
