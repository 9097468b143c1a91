public import Foundation
public import PayhookCore

/// Alipay order creation and close (placeholder until the builders land).
public enum AlipayOrderCreation {
    public static func step(_ order: ChannelOrderRequest, configuration: AlipayConfiguration, now: Date) throws(QueryError) -> CreationStep {
        throw .permanent(.invalidRequest, "not built yet")
    }
    public static func result(_ response: ChannelResponse, order: ChannelOrderRequest, configuration: AlipayConfiguration) throws(QueryError) -> CreationResult {
        throw .permanent(.invalidRequest, "not built yet")
    }
    public static func closeRequest(outTradeNo: String, configuration: AlipayConfiguration, now: Date) throws(QueryError) -> ChannelRequest {
        throw .permanent(.invalidRequest, "not built yet")
    }
    public static func closeResult(_ response: ChannelResponse, outTradeNo: String, configuration: AlipayConfiguration) throws(QueryError) -> CloseResult {
        throw .permanent(.invalidRequest, "not built yet")
    }
}
