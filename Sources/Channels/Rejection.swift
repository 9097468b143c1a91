public import PayhookCore

/// A callback rejected for good: retrying it will not make it genuine.
///
/// `description` names the reason and a short detail; it never contains key material or
/// the body.
public struct Rejection: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: ReasonCode
    /// A short, payload-free explanation (e.g. the missing field's name).
    public var detail: String

    public init(_ reason: ReasonCode, _ detail: String = "") {
        self.reason = reason
        self.detail = detail
    }

    public var description: String {
        detail.isEmpty ? reason.rawValue : "\(reason.rawValue): \(detail)"
    }

    static func malformed(_ detail: String) -> Rejection { Rejection(.malformed, detail) }
}

/// A failed order query, classified for the retry decision.
public struct QueryError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// Try again later: timeout, connection refused, 5xx, channel system error.
        case transient
        /// Retrying will not help: bad request, bad credentials, unverifiable answer.
        case permanent
    }

    /// Stable codes; extensible like ``RejectionReason`` but as a struct so new codes do not
    /// break exhaustive switches elsewhere.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let timeout = Code(rawValue: "timeout")
        public static let connection = Code(rawValue: "connection")
        /// The channel's TLS certificate or handshake was refused (another CA, expired,
        /// another host name, too old a TLS version).
        public static let tls = Code(rawValue: "tls")
        public static let httpStatus = Code(rawValue: "http_status")
        public static let badSignature = Code(rawValue: "bad_signature")
        public static let unknownKey = Code(rawValue: "unknown_key")
        public static let malformedResponse = Code(rawValue: "malformed_response")
        /// The channel answered with a business or system error code.
        public static let channelError = Code(rawValue: "channel_error")
        public static let invalidRequest = Code(rawValue: "invalid_request")
    }

    public var kind: Kind
    public var code: Code
    /// Payload-free detail: the channel's error code, HTTP status, or a field name.
    public var detail: String

    public init(_ kind: Kind, _ code: Code, _ detail: String = "") {
        self.kind = kind
        self.code = code
        self.detail = detail
    }

    public var isTransient: Bool { kind == .transient }

    public static func transient(_ code: Code, _ detail: String = "") -> QueryError {
        QueryError(.transient, code, detail)
    }

    public static func permanent(_ code: Code, _ detail: String = "") -> QueryError {
        QueryError(.permanent, code, detail)
    }

    public var description: String {
        "\(kind.rawValue) \(code.rawValue)" + (detail.isEmpty ? "" : ": \(detail)")
    }
}

extension Rejection {
    /// `text` if it is short and plainly printable (letters, digits, `_ - . /`), else a placeholder:
    /// details quote header values only when they cannot carry payload or control bytes.
    static func quoted(_ text: String, max: Int = 64) -> String {
        let safe = text.utf8.count <= max && text.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x5F || $0 == 0x2D || $0 == 0x2E || $0 == 0x2F
        }
        return safe ? text : "(unprintable)"
    }
}
