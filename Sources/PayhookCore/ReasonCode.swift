/// Why a callback is not done: rejected for good, flagged as a conflict, waiting for a
/// retry, or dead. One type from the adapter to `callbacks.reason`, `order_events.detail`
/// and the metrics' `reason` label.
///
/// The raw values are stable: operators' queries and dashboards use them. Add codes; never
/// rename one. A struct, not an enum, so a new code does not break exhaustive switches.
public struct ReasonCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }
}

// Rejections: the callback is not a genuine notification for this channel.
extension ReasonCode {
    /// The signature does not verify with the key it names.
    public static let badSignature = ReasonCode(rawValue: "bad_signature")
    /// The signature names a key (WeChat `Wechatpay-Serial`) that is not configured.
    public static let unknownKey = ReasonCode(rawValue: "unknown_key")
    /// The signed timestamp is further from the receive time than the configured skew.
    public static let staleTimestamp = ReasonCode(rawValue: "stale_timestamp")
    /// WeChat Pay's deliberate probe signature (`WECHATPAY/SIGNTEST/…`).
    public static let probeSignature = ReasonCode(rawValue: "probe_signature")
    /// The encrypted resource did not decrypt (AEAD tag mismatch, bad nonce or key).
    public static let decryptFailed = ReasonCode(rawValue: "decrypt_failed")
    /// Missing or malformed field, header, encoding, or amount.
    public static let malformed = ReasonCode(rawValue: "malformed")
    /// app id, seller id, mchid or partner id differ from the configuration (a genuine
    /// callback naming another app or merchant; also flagged on the order).
    public static let merchantMismatch = ReasonCode(rawValue: "merchant_mismatch")
    /// A signature algorithm the configuration does not allow (Alipay `RSA`, unknown types).
    public static let unsupportedSignType = ReasonCode(rawValue: "unsupported_sign_type")
    /// The source address is outside the channel's `allowed_ips`.
    public static let ipNotAllowed = ReasonCode(rawValue: "ip_not_allowed")
    /// A callback kind the channel does not send (e.g. a WeChat browser return).
    public static let unsupportedKind = ReasonCode(rawValue: "unsupported_kind")

    /// Every rejection code an adapter can give, in a stable order.
    public static let rejections: [ReasonCode] = [
        .badSignature, .unknownKey, .staleTimestamp, .probeSignature, .decryptFailed, .malformed,
        .merchantMismatch, .unsupportedSignType, .ipNotAllowed, .unsupportedKind,
    ]
}

// Conflicts: genuine evidence that is never applied, flagged on the order.
extension ReasonCode {
    public static let amountMismatch = ReasonCode(rawValue: "amount_mismatch")
    public static let currencyMismatch = ReasonCode(rawValue: "currency_mismatch")
    /// The order belongs to another configured channel.
    public static let channelMismatch = ReasonCode(rawValue: "channel_mismatch")
    /// A second, different channel trade number for an order already paid (a double payment).
    public static let tradeNoMismatch = ReasonCode(rawValue: "trade_no_mismatch")
    /// `paid → closed`.
    public static let statusRegression = ReasonCode(rawValue: "status_regression")
    /// A payment for an order already closed: money came in for an order the site gave up.
    public static let paidAfterClose = ReasonCode(rawValue: "paid_after_close")
    /// The channel's query API does not confirm the notification.
    public static let queryMismatch = ReasonCode(rawValue: "query_mismatch")
}

// The pipeline's own: why a genuine callback waits, or died.
extension ReasonCode {
    /// No adapter is configured for the stored callback's channel.
    public static let unknownChannel = ReasonCode(rawValue: "unknown_channel")
    /// The order is not (yet) in `orders`.
    public static let unknownOrder = ReasonCode(rawValue: "unknown_order")
    /// The query API could not be reached or failed for now.
    public static let queryUnavailable = ReasonCode(rawValue: "query_unavailable")
    /// The query API refused the question for good (bad credentials, unverifiable answer).
    public static let queryFailed = ReasonCode(rawValue: "query_failed")
    /// The channel does not know the notified payment yet.
    public static let queryNotFound = ReasonCode(rawValue: "query_not_found")
    /// The channel still reports the notified payment as pending.
    public static let queryPending = ReasonCode(rawValue: "query_pending")
    /// The apply transaction failed for this callback alone.
    public static let applyFailed = ReasonCode(rawValue: "apply_failed")
    /// The stored row cannot be read back (a corrupt column): an operator must look.
    public static let corruptRow = ReasonCode(rawValue: "corrupt_row")
}

// Refunds.
extension ReasonCode {
    /// A refund that would take back more than the order was paid: flagged, never applied.
    public static let refundExceedsPaid = ReasonCode(rawValue: "refund_exceeds_paid")
    /// A refund reported for an order that is not paid: never read as a payment.
    public static let refundUnpaid = ReasonCode(rawValue: "refund_for_unpaid_order")
    /// A known refund number reported with another amount, or a finished refund reported again
    /// in another state.
    public static let refundMismatch = ReasonCode(rawValue: "refund_mismatch")
}
