/// One versioned schema change. The id is explicit and stable (never derived from a type
/// name); ids sort in the order the changes apply.
public struct SchemaMigration: Sendable {
    public let id: String
    public let sql: String

    public init(id: String, sql: String) {
        self.id = id
        self.sql = sql
    }
}

/// Applies versioned migrations, recording applied ids in `payhook_migrations`. Each
/// component owns its migrations; the caller passes them all and they apply in id order.
/// Never edit or reorder an applied migration: add one.
public enum SchemaMigrations {
    /// Serializes migrators on all hosts (`pg_advisory_lock`); an arbitrary fixed key.
    static let advisoryLockKey: Int64 = 0x7061_7968_6F6F_6B00

    /// Applies every migration not yet recorded, each in its own transaction, and returns
    /// the ids applied now. Safe to run from several hosts at once; a second run is a no-op.
    @discardableResult
    public static func apply(_ migrations: [SchemaMigration], on connection: Connection) throws(PostgresError) -> [String] {
        precondition(Set(migrations.map(\.id)).count == migrations.count, "migration ids are unique")
        return try connection.withAdvisoryLock(advisoryLockKey, wait: true) { () throws(PostgresError) in
            try applyLocked(migrations.sorted { $0.id < $1.id }, on: connection)
        } ?? []
    }

    private static func applyLocked(_ migrations: [SchemaMigration], on connection: Connection) throws(PostgresError) -> [String] {
        try connection.execute(script: """
            SET client_min_messages TO warning;
            CREATE TABLE IF NOT EXISTS payhook_migrations (
                id text PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """)
        let done = Set(try applied(on: connection))
        var appliedNow: [String] = []
        for migration in migrations where !done.contains(migration.id) {
            try connection.transaction { connection throws(PostgresError) in
                try connection.execute(script: migration.sql)
                try connection.query("INSERT INTO payhook_migrations (id) VALUES ($1)", [.text(migration.id)])
            }
            appliedNow.append(migration.id)
        }
        return appliedNow
    }

    /// The ids recorded as applied, in order.
    public static func applied(on connection: Connection) throws(PostgresError) -> [String] {
        try connection.query("SELECT id FROM payhook_migrations ORDER BY id").rows.map { row throws(PostgresError) in
            try row.decode(0, as: String.self)
        }
    }
}
