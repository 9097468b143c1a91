/// Why the site API refused or could not finish a request: a stable `code` the site's code
/// can switch on, a human `message`, and the HTTP status. Messages name fields, never
/// values that could carry secrets.
public struct OrderError: Error, Sendable, Hashable, CustomStringConvertible {
    public var status: Int
    public var code: String
    public var message: String

    public init(_ status: Int, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public var description: String { "\(status) \(code): \(message)" }

    public static func unauthorized() -> OrderError { OrderError(401, "unauthorized", "a valid bearer token is required") }
    public static func bodyTooLarge(_ limit: Int) -> OrderError { OrderError(413, "body_too_large", "the body is over \(limit) bytes") }
    public static func invalidJSON(_ message: String) -> OrderError { OrderError(400, "invalid_json", message) }
    public static func missingField(_ field: String) -> OrderError { OrderError(400, "missing_field", "\(field) is required") }
    public static func invalidField(_ field: String, _ problem: String) -> OrderError {
        OrderError(400, "invalid_field", "\(field) \(problem)")
    }
    public static func unknownField(_ field: String) -> OrderError { OrderError(400, "unknown_field", "\(field) is not a field of this request") }
    public static func invalidAmount(_ problem: String) -> OrderError { OrderError(400, "invalid_amount", "amount \(problem)") }
    public static func amountOutOfRange(_ problem: String) -> OrderError { OrderError(400, "amount_out_of_range", "amount \(problem)") }
    public static func unknownChannel(_ id: String) -> OrderError { OrderError(400, "unknown_channel", "no channel \(id) is configured") }
    public static func unsupportedScene(_ problem: String) -> OrderError { OrderError(400, "unsupported_scene", problem) }
    public static func unsupportedCurrency(_ problem: String) -> OrderError { OrderError(400, "unsupported_currency", problem) }
    public static func invalidOutTradeNo(_ problem: String) -> OrderError { OrderError(400, "invalid_out_trade_no", "out_trade_no \(problem)") }
    public static func missingPayerField(_ field: String, scene: String) -> OrderError {
        OrderError(400, "missing_payer_field", "payer.\(field) is required for scene \(scene)")
    }
    public static func invalidExpiry(_ problem: String) -> OrderError { OrderError(400, "invalid_expiry", problem) }
    public static func orderConflict() -> OrderError {
        OrderError(409, "order_conflict", "out_trade_no is taken by a different request")
    }
    public static func orderNotFound() -> OrderError { OrderError(404, "order_not_found", "no such order") }
    public static func orderPaid() -> OrderError { OrderError(409, "order_paid", "the order is paid and cannot be closed") }
    public static func orderPaying() -> OrderError {
        OrderError(409, "order_paying", "the channel says the buyer is paying; try again later")
    }
    public static func channelRefused(_ detail: String) -> OrderError { OrderError(502, "channel_refused", "the channel refused: \(detail)") }
    public static func channelUnavailable(_ detail: String) -> OrderError {
        OrderError(503, "channel_unavailable", "the channel did not answer usably: \(detail)")
    }
    public static func invalidRefundNo(_ problem: String) -> OrderError { OrderError(400, "invalid_out_refund_no", "out_refund_no \(problem)") }
    public static func refundConflict() -> OrderError {
        OrderError(409, "refund_conflict", "out_refund_no is taken by a different request")
    }
    public static func orderNotRefundable(_ status: String) -> OrderError {
        OrderError(409, "order_not_refundable", "the order is \(status); only a paid order can be refunded")
    }
    public static func refundExceedsPaid(_ remaining: String) -> OrderError {
        OrderError(409, "refund_exceeds_paid", "at most \(remaining) is left to refund (refunds in flight count)")
    }
    public static func databaseUnavailable() -> OrderError { OrderError(503, "database_unavailable", "the database is unavailable") }
    public static func notFound() -> OrderError { OrderError(404, "not_found", "no such route") }
    public static func methodNotAllowed() -> OrderError { OrderError(405, "method_not_allowed", "method not allowed on this route") }
    public static func unsupportedMediaType() -> OrderError {
        OrderError(415, "unsupported_media_type", "the body must be application/json")
    }

    /// Every code the API can answer, for the OpenAPI document's test.
    public static let allCodes = [
        "unauthorized", "body_too_large", "invalid_json", "missing_field", "invalid_field", "unknown_field",
        "invalid_amount", "amount_out_of_range", "unknown_channel", "unsupported_scene", "unsupported_currency",
        "invalid_out_trade_no", "missing_payer_field", "invalid_expiry", "order_conflict", "order_not_found",
        "order_paid", "order_paying", "channel_refused", "channel_unavailable", "database_unavailable", "not_found",
        "method_not_allowed", "unsupported_media_type", "internal_error", "invalid_out_refund_no", "refund_conflict",
        "order_not_refundable", "refund_exceeds_paid",
    ]
}
