/// An error from the PostgreSQL layer.
///
/// `description` names only the kind of failure and the SQLSTATE, never parameters,
/// payloads or server text (server messages can echo values). The server's message is
/// available through `String(reflecting:)` for debugging.
public struct PostgresError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What went wrong, as an extensible set of codes.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }

        /// Could not open a connection.
        public static let connectionFailed = Code(name: "connectionFailed")
        /// The connection broke during or before a request; it needs `reconnect()`.
        public static let connectionLost = Code(name: "connectionLost")
        /// The server refused the statement; see `sqlState`.
        public static let server = Code(name: "server")
        /// A result value did not have the type or nullability asked for.
        public static let decoding = Code(name: "decoding")
        /// A bound value could not be encoded.
        public static let encoding = Code(name: "encoding")
        /// A wait ran past its deadline.
        public static let timeout = Code(name: "timeout")
        /// The request was cancelled (`PQcancel`).
        public static let cancelled = Code(name: "cancelled")
        /// libpq reported a client-side failure (sending, pipeline state).
        public static let client = Code(name: "client")
    }

    public var code: Code
    /// The five-character SQLSTATE for server errors, such as `23505`.
    public var sqlState: String?
    /// Column or parameter context for decoding/encoding errors (names, never values).
    public var context: String?
    /// libpq's or the server's message. Not part of `description`: it may echo values.
    public var message: String?

    public init(code: Code, sqlState: String? = nil, context: String? = nil, message: String? = nil) {
        self.code = code
        self.sqlState = sqlState
        self.context = context
        self.message = message
    }

    public var description: String {
        var text = "PostgresError(\(code)"
        if let sqlState { text += ", sqlState: \(sqlState)" }
        if let context { text += ", \(context)" }
        return text + ")"
    }

    public var debugDescription: String {
        description + (message.map { " message: \($0)" } ?? "")
    }

    /// True when retrying on a fresh connection may succeed: the connection broke, the
    /// server is shutting down or unavailable, or a serialization failure or deadlock.
    public var isTransient: Bool {
        if code == .connectionLost || code == .connectionFailed || code == .timeout { return true }
        guard let sqlState else { return false }
        return sqlState.hasPrefix("08") || sqlState.hasPrefix("57P") || sqlState == "40001"
            || sqlState == "40P01" || sqlState == "53300"
    }
}
