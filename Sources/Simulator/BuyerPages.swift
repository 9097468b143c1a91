import PayhookCore
import Channels

/// The pages a buyer sees at the simulated channels: plain HTML, no script, no external
/// assets, so a test can read them and a person can click through them.
enum BuyerPages {
    /// A cashier (Alipay page and wap, a scanned QR code, a WeChat Pay phone) showing the
    /// order, with Pay and Cancel buttons posting `out_trade_no` (and `extra` fields) to the routes given.
    static func cashier(title: String, order: ChannelOrder, payAction: String, cancelAction: String?,
                        extra: [(String, String)] = []) -> ChannelResponse {
        let hidden = ([("out_trade_no", order.outTradeNo)] + extra)
            .map { #"<input type="hidden" name="\#(HTMLText.escape($0.0))" value="\#(HTMLText.escape($0.1))">"# }
            .joined()
        var body = """
            <h1>\(HTMLText.escape(title))</h1>
            <p>Order <code id="out_trade_no">\(HTMLText.escape(order.outTradeNo))</code></p>
            <p id="subject">\(HTMLText.escape(order.subject))</p>
            <p>Amount <strong id="amount">\(HTMLText.escape(order.currency)) \(Money.format(minorUnits: order.amountMinor))</strong></p>
            <form method="post" action="\(HTMLText.escape(payAction))">\(hidden)<button id="pay">Pay</button></form>
            """
        if let cancelAction {
            body += #"<form method="post" action="\#(HTMLText.escape(cancelAction))">\#(hidden)<button id="cancel">Cancel</button></form>"#
        }
        return page(title: title, body: body)
    }

    /// A page that only says something, with an optional link onwards.
    static func message(title: String, text: String, link: (label: String, url: String)? = nil, status: Int = 200) -> ChannelResponse {
        var body = "<h1>\(HTMLText.escape(title))</h1><p id=\"message\">\(HTMLText.escape(text))</p>"
        if let link { body += #"<p><a id="back" href="\#(HTMLText.escape(link.url))">\#(HTMLText.escape(link.label))</a></p>"# }
        return page(title: title, body: body, status: status)
    }

    /// The browser's redirect (303, so the next request is a GET).
    static func redirect(to url: String) -> ChannelResponse {
        ChannelResponse(status: 303, headers: [HeaderField(name: "Location", value: url),
                                               HeaderField(name: "Content-Type", value: "text/plain; charset=utf-8")],
                        body: Array("see \(url)\n".utf8))
    }

    private static func page(title: String, body: String, status: Int = 200) -> ChannelResponse {
        let html = """
            <!DOCTYPE html>
            <html><head><meta charset="utf-8"><title>\(HTMLText.escape(title))</title></head>
            <body>\(body)</body></html>

            """
        return ChannelResponse(status: status, headers: [HeaderField(name: "Content-Type", value: "text/html; charset=utf-8")],
                               body: Array(html.utf8))
    }

}
