public import Foundation
public import PayhookCore

/// WeChat Pay v3 prepay and close (placeholder until the builders land).
public enum WeChatPayOrderCreation {
    public static func step(_ order: ChannelOrderRequest, configuration: WeChatPayConfiguration, now: Date, nonce: String) throws(QueryError) -> CreationStep {
        throw .permanent(.invalidRequest, "not built yet")
    }
    public static func result(_ response: ChannelResponse, order: ChannelOrderRequest, configuration: WeChatPayConfiguration, now: Date, nonce: String) throws(QueryError) -> CreationResult {
        throw .permanent(.invalidRequest, "not built yet")
    }
    public static func closeRequest(outTradeNo: String, configuration: WeChatPayConfiguration, now: Date, nonce: String) throws(QueryError) -> ChannelRequest {
        throw .permanent(.invalidRequest, "not built yet")
    }
    public static func closeResult(_ response: ChannelResponse, outTradeNo: String, configuration: WeChatPayConfiguration, now: Date) throws(QueryError) -> CloseResult {
        throw .permanent(.invalidRequest, "not built yet")
    }
}
