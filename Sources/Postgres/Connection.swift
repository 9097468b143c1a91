import CLibPQ
import Foundation

/// One libpq connection. Not `Sendable`: it belongs to one thread (a worker thread) or one
/// serial queue (`SerialConnection`) at a time, as libpq requires.
public final class Connection {
    public struct Configuration: Sendable {
        /// A `postgres://` URL or a key/value conninfo string.
        public var conninfo: String
        /// Seconds to wait for a connection before giving up. Default 5. A value given in
        /// `conninfo` wins.
        public var connectTimeoutSeconds: Int = 5
        /// Shown in `pg_stat_activity`. Default `payhook`.
        public var applicationName: String = "payhook"
        /// TCP keepalive idle seconds, so a cut network is noticed. Default 10.
        public var keepaliveIdleSeconds: Int = 10
        /// Session settings (`set_config`) made on every new or reset connection.
        public var settings: [String: String] = [:]

        public init(conninfo: String) {
            self.conninfo = conninfo
        }
    }

    public let configuration: Configuration
    /// Cancels the statement running on this connection, from any thread.
    public let canceller = Canceller()
    var handle: OpaquePointer
    private var listeningChannels: [String] = []
    private var preparedStatements: Set<String> = []
    /// Round trips to the server so far (a statement, a preparation, a script or a
    /// pipeline each count one), so the workers can show what a batch costs.
    public private(set) var roundTrips = 0

    public convenience init(_ conninfo: String) throws(PostgresError) {
        try self.init(configuration: Configuration(conninfo: conninfo))
    }

    public init(configuration: Configuration) throws(PostgresError) {
        self.configuration = configuration
        // Defaults first, then the caller's conninfo expanded over them.
        let keywords = ["connect_timeout", "application_name", "keepalives_idle", "dbname"]
        let values = [
            String(configuration.connectTimeoutSeconds), configuration.applicationName,
            String(configuration.keepaliveIdleSeconds), configuration.conninfo,
        ]
        let connection = withCStringArray(keywords) { keywordPointers in
            withCStringArray(values) { valuePointers in
                PQconnectdbParams(keywordPointers, valuePointers, 1)
            }
        }
        guard let connection else {
            throw PostgresError(code: .connectionFailed, message: "out of memory")
        }
        handle = connection  // from here on deinit calls PQfinish, also when init throws
        guard PQstatus(connection) == CONNECTION_OK else {
            throw PostgresError(code: .connectionFailed, message: Self.errorMessage(connection))
        }
        canceller.replace(PQgetCancel(connection))
        try applySettings()
    }

    /// Settings for connections whose prepared statements should run one generic plan
    /// instead of being planned again for each execution: the delivery threads', whose claim
    /// spent more planning than running (about 1.5 ms of planning for a 0.3 ms claim,
    /// measured with Benchmarks/events). Not the callback workers': their drain lost a third
    /// with it (Benchmarks/drain). Not for queries whose parameters choose the plan
    /// (`$1 IS NULL OR column = $1`).
    public static let genericPlans = ["plan_cache_mode": "force_generic_plan"]

    private func applySettings() throws(PostgresError) {
        let settings = configuration.settings.sorted { $0.key < $1.key }
        guard !settings.isEmpty else { return }
        try query("SELECT set_config(name, value, false) FROM unnest($1::text[], $2::text[]) AS s(name, value)",
                  [.textArray(settings.map(\.key)), .textArray(settings.map(\.value))])
    }

    deinit {
        canceller.replace(nil)
        PQfinish(handle)
    }

    /// True while libpq thinks the connection is usable.
    public var isConnected: Bool { PQstatus(handle) == CONNECTION_OK }

    /// Opens the connection again with the same settings, and listens again on every
    /// channel it listened on. Prepared statements are prepared again on first use.
    public func reconnect() throws(PostgresError) {
        PQreset(handle)
        preparedStatements.removeAll()
        guard PQstatus(handle) == CONNECTION_OK else {
            throw PostgresError(code: .connectionFailed, message: Self.errorMessage(handle))
        }
        canceller.replace(PQgetCancel(handle))
        try applySettings()
        for channel in listeningChannels {
            _ = try query("LISTEN " + quoteIdentifier(channel))
        }
    }

    /// Runs one statement with bound parameters; results come back in binary format.
    @discardableResult
    public func query(_ sql: String, _ binds: [PostgresBind] = []) throws(PostgresError) -> PostgresResult {
        roundTrips += 1
        let result = withParameters(binds) { types, values, lengths, formats in
            PQexecParams(handle, sql, Int32(binds.count), types, values, lengths, formats, 1)
        }
        return try consume(result)
    }

    /// Runs one statement through a named prepared statement, preparing it on this
    /// connection the first time. The name must stand for the same SQL everywhere.
    @discardableResult
    public func query(prepared name: String, _ sql: String, _ binds: [PostgresBind] = []) throws(PostgresError) -> PostgresResult {
        if !preparedStatements.contains(name) {
            roundTrips += 1
            let types = binds.map { Oid($0.typeOID) }
            let prepared = PQprepare(handle, name, sql, Int32(types.count), types)
            _ = try consume(prepared)
            preparedStatements.insert(name)
        }
        roundTrips += 1
        let result = withParameters(binds) { _, values, lengths, formats in
            PQexecPrepared(handle, name, Int32(binds.count), values, lengths, formats, 1)
        }
        return try consume(result)
    }

    /// Runs SQL with no parameters, possibly several statements (migrations, DDL).
    public func execute(script sql: String) throws(PostgresError) {
        roundTrips += 1
        _ = try consume(PQexec(handle, sql))
    }

    /// Runs `body` inside BEGIN/COMMIT; any error rolls back and is rethrown.
    public func transaction<T>(_ body: (Connection) throws(PostgresError) -> T) throws(PostgresError) -> T {
        try query("BEGIN")
        do {
            let value = try body(self)
            try query("COMMIT")
            return value
        } catch {
            if isConnected { _ = try? query("ROLLBACK") }  // the original error matters more
            throw error
        }
    }

    /// Quotes an identifier (for LISTEN, which takes no parameters).
    public func quoteIdentifier(_ identifier: String) throws(PostgresError) -> String {
        guard let escaped = PQescapeIdentifier(handle, identifier, identifier.utf8.count) else {
            throw PostgresError(code: .encoding, context: "identifier", message: Self.errorMessage(handle))
        }
        defer { PQfreemem(escaped) }
        return String(cString: escaped)
    }

    // MARK: - Internals shared by the extensions

    func isPrepared(_ name: String) -> Bool { preparedStatements.contains(name) }
    func markPrepared(_ name: String) { preparedStatements.insert(name) }
    func countRoundTrip() { roundTrips += 1 }

    func rememberListening(_ channel: String) {
        if !listeningChannels.contains(channel) { listeningChannels.append(channel) }
    }

    func forgetListening(_ channel: String) {
        listeningChannels.removeAll { $0 == channel }
    }

    func withParameters<R>(
        _ binds: [PostgresBind],
        _ body: (UnsafePointer<Oid>?, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> R
    ) -> R {
        let types = binds.map { Oid($0.typeOID) }
        let lengths = binds.map { Int32($0.bytes?.count ?? 0) }
        let formats = binds.map { $0.format.rawValue }
        // One buffer holds every value, so all pointers stay valid for the call.
        var offsets: [Int?] = []
        var buffer: [UInt8] = []
        buffer.reserveCapacity(binds.reduce(0) { $0 + ($1.bytes?.count ?? 0) + 1 })
        for bind in binds {
            if let bytes = bind.bytes {
                offsets.append(buffer.count)
                buffer += bytes
                buffer.append(0)  // text-format values must be NUL-terminated
            } else {
                offsets.append(nil)
            }
        }
        return buffer.withUnsafeBufferPointer { raw in
            let base = UnsafeRawPointer(raw.baseAddress!).assumingMemoryBound(to: CChar.self)
            let pointers: [UnsafePointer<CChar>?] = offsets.map { $0.map { base + $0 } }
            return body(types, pointers, lengths, formats)
        }
    }

    /// Turns a PGresult into a `PostgresResult` or an error, and frees it.
    func consume(_ result: OpaquePointer?) throws(PostgresError) -> PostgresResult {
        guard let result else {
            throw PostgresError(code: isConnected ? .client : .connectionLost, message: Self.errorMessage(handle))
        }
        defer { PQclear(result) }
        return try Self.convert(result, connection: self)
    }

    static func convert(_ result: OpaquePointer, connection: Connection) throws(PostgresError) -> PostgresResult {
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_SINGLE_TUPLE, PGRES_EMPTY_QUERY:
            break
        case PGRES_PIPELINE_ABORTED:
            throw PostgresError(code: .client, context: "pipeline aborted by an earlier statement")
        default:
            throw connection.error(from: result)
        }
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        let columns = (0..<columnCount).map { index in
            PostgresResult.Column(name: String(cString: PQfname(result, Int32(index))),
                                  typeOID: UInt32(PQftype(result, Int32(index))))
        }
        var storage: [UInt8] = []
        var cells: [(offset: Int32, length: Int32)] = []
        cells.reserveCapacity(rowCount * columnCount)
        for row in 0..<Int32(rowCount) {
            for column in 0..<Int32(columnCount) {
                if PQgetisnull(result, row, column) == 1 {
                    cells.append((Int32(storage.count), -1))
                    continue
                }
                let length = Int(PQgetlength(result, row, column))
                let offset = storage.count
                if length > 0, let value = PQgetvalue(result, row, column) {
                    value.withMemoryRebound(to: UInt8.self, capacity: length) {
                        storage.append(contentsOf: UnsafeBufferPointer(start: $0, count: length))
                    }
                }
                cells.append((Int32(offset), Int32(length)))
            }
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? rowCount
        return PostgresResult(columns: columns, affectedRows: affected, storage: storage, cells: cells)
    }

    func error(from result: OpaquePointer) -> PostgresError {
        let sqlState = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
        let message = PQresultErrorMessage(result).map { String(cString: $0) }
        let lost = !isConnected || sqlState?.hasPrefix("57P") == true
        return PostgresError(code: lost ? .connectionLost : (sqlState == "57014" ? .cancelled : .server),
                             sqlState: sqlState, message: message)
    }

    static func errorMessage(_ connection: OpaquePointer) -> String {
        PQerrorMessage(connection).map { String(cString: $0) }?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }
}

/// Cancels the running statement of one connection from any thread (`PQcancel`).
///
/// @unchecked because the `PGcancel` pointer is only read or replaced under the lock, and
/// libpq documents `PQcancel` as safe to call from a thread other than the connection's.
public final class Canceller: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelHandle: OpaquePointer?

    func replace(_ handle: OpaquePointer?) {
        lock.lock()
        defer { lock.unlock() }
        if let cancelHandle { PQfreeCancel(cancelHandle) }
        cancelHandle = handle
    }

    /// Asks the server to cancel the statement in progress; harmless when none is.
    @discardableResult
    public func cancel() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard let cancelHandle else { return false }
        var buffer = [CChar](repeating: 0, count: 256)
        return PQcancel(cancelHandle, &buffer, Int32(buffer.count)) == 1
    }
}

private func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let duplicates = strings.map { strdup($0) }
    defer { duplicates.forEach { free($0) } }
    let pointers = duplicates.map { UnsafePointer($0) } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
