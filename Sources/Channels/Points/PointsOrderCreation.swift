public import Foundation
public import PayhookCore

/// The points partner's deduct call (placeholder until the builders land).
public enum PointsOrderCreation {
    public static func step(_ order: ChannelOrderRequest, configuration: PointsConfiguration, now: Date, nonce: String) throws(QueryError) -> CreationStep {
        throw .permanent(.invalidRequest, "not built yet")
    }
    public static func result(_ response: ChannelResponse, order: ChannelOrderRequest, configuration: PointsConfiguration, now: Date) throws(QueryError) -> CreationResult {
        throw .permanent(.invalidRequest, "not built yet")
    }
}
