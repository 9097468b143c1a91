import CallbackQueue
import Foundation
import PayhookCore

enum QueueTestData {
    /// A notify shaped like Alipay's: about 1.5 KB of form body.
    static func callback(_ index: Int, channel: String = "alipay") -> RawCallback {
        let body = "notify_id=\(index)&out_trade_no=T\(index)&total_amount=88.88&"
            + String(repeating: "x", count: 1400)
        return RawCallback(channel: channel, method: "POST", path: "/notify/\(channel)", query: "",
                           headers: [HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded"),
                                     HeaderField(name: "X-Trace", value: "a"), HeaderField(name: "X-Trace", value: "b")],
                           body: Array(body.utf8), sourceIP: "203.0.113.\(index % 250)", peerIP: "127.0.0.1")
    }
}
