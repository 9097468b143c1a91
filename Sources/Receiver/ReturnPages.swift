public import Channels
public import Foundation
import Hummingbird
public import Logging
import NIOCore
import Orders
import PayhookCore
public import Postgres
import Synchronization

/// The synchronous return (`GET /return/{channel}`): the buyer's browser back from the
/// channel. It is verified like a notify and is never evidence of payment on its own: the
/// page says "paid" only when the order already is. Otherwise it says "being confirmed",
/// reloads itself, and stores the return (at most once per order per `storeEvery`) so a
/// worker asks the channel. It links to the site's `return_url` when the order has one.
public final class ReturnPages: Sendable {
    enum State: Equatable { case paid, confirming, closed, unverified, unavailable }

    let adapters: [String: AnyChannelAdapter]
    let database: SerialConnection
    let storeEvery: TimeInterval
    private let lastStored = Mutex<[String: Date]>([:])
    let logger: Logger

    public init(adapters: [AnyChannelAdapter], database: SerialConnection, storeEvery: TimeInterval = 30, logger: Logger) {
        self.adapters = Dictionary(adapters.map { ($0.channelID, $0) }, uniquingKeysWith: { first, _ in first })
        self.database = database
        self.storeEvery = storeEvery
        self.logger = logger
    }

    func page(for callback: RawCallback, enqueue: () async throws -> Int64) async -> Response {
        guard let adapter = adapters[callback.channel],
              case .success(let notification) = adapter.verifyResult(callback) else {
            return Self.page(.unverified, outTradeNo: nil, returnURL: nil)
        }
        let outTradeNo = notification.evidence.outTradeNo
        let order: SiteOrderStore.StoredOrder?
        do {
            order = try await database.run { try SiteOrderStore.find(outTradeNo, on: $0) }
        } catch {
            logger.error("return page: order lookup failed", metadata: ["channel": "\(callback.channel)", "error": "\(error)"])
            return Self.page(.unavailable, outTradeNo: outTradeNo, returnURL: nil)
        }
        guard let order, order.channel == callback.channel else {
            return Self.page(.confirming, outTradeNo: outTradeNo, returnURL: nil)
        }
        switch order.status {
        case .paid, .refunded: return Self.page(.paid, outTradeNo: outTradeNo, returnURL: order.returnURL)
        case .closed: return Self.page(.closed, outTradeNo: outTradeNo, returnURL: order.returnURL)
        case .created: break
        }
        if shouldStore(channel: callback.channel, outTradeNo: outTradeNo) {
            do { _ = try await enqueue() } catch {
                logger.error("return not stored", metadata: ["channel": "\(callback.channel)", "error": "\(error)"])
                forget(channel: callback.channel, outTradeNo: outTradeNo)
            }
        }
        return Self.page(.confirming, outTradeNo: outTradeNo, returnURL: order.returnURL)
    }

    /// Whether this order's return was not stored within `storeEvery` (and marks it stored now).
    package func shouldStore(channel: String, outTradeNo: String, now: Date = Date()) -> Bool {
        let key = channel + "\u{0}" + outTradeNo
        return lastStored.withLock { stored in
            if stored.count > 10_000 { stored = stored.filter { now.timeIntervalSince($0.value) < storeEvery } }
            if let last = stored[key], now.timeIntervalSince(last) < storeEvery { return false }
            stored[key] = now
            return true
        }
    }

    private func forget(channel: String, outTradeNo: String) {
        _ = lastStored.withLock { $0.removeValue(forKey: channel + "\u{0}" + outTradeNo) }
    }

    static func page(_ state: State, outTradeNo: String?, returnURL: String?) -> Response {
        let order = outTradeNo.map { " <b id=\"order\">\(HTMLText.escape($0))</b>" } ?? ""
        let (status, title, text): (HTTPResponse.Status, String, String) = switch state {
        case .paid: (.ok, "Paid", "Your payment for order\(order) is confirmed.")
        case .confirming: (.ok, "Being confirmed",
                           "Your payment for order\(order) is being confirmed with the channel. This page checks again in a few seconds.")
        case .closed: (.ok, "Closed", "Order\(order) is closed. If you paid, the shop will see the payment and contact you.")
        case .unverified: (.badRequest, "Not confirmed",
                           "This return link is not signed by the payment channel. A payment, if any, is confirmed by the channel directly.")
        case .unavailable: (.serviceUnavailable, "Try again", "The payment status cannot be read right now. Reload this page in a moment.")
        }
        let refresh = state == .confirming ? "<meta http-equiv=\"refresh\" content=\"3\">" : ""
        let link = returnURL.map { "<p><a id=\"continue\" href=\"\(HTMLText.escape($0))\">Back to the shop</a></p>" } ?? ""
        let html = """
            <!doctype html><html><head><meta charset="utf-8">\(refresh)<title>\(title)</title></head>
            <body><h1 id="status">\(title)</h1><p>\(text)</p>\(link)</body></html>

            """
        return Response(status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                        body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
    }
}
