public import Channels
import Foundation

/// The client address of a request: the TCP peer, unless the peer is a trusted proxy;
/// then X-Forwarded-For is read from the right, skipping trusted proxies, and the first
/// address that is not one of them is the client. An untrusted peer's X-Forwarded-For is
/// ignored, so it cannot be spoofed.
public enum ClientAddress {
    /// `forwardedFor` is read only when the peer is a trusted proxy.
    public static func resolve(peer: String, forwardedFor: @autoclosure () -> [String],
                               trustedProxies: [CIDR]) -> String {
        guard !trustedProxies.isEmpty, trustedProxies.containsAddress(peer) else { return peer }
        let hops = forwardedFor()
            .flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        var client = peer
        for hop in hops.reversed() {
            guard CIDR.parse(hop) != nil, !hop.contains("/") else { return client }  // malformed: stop here
            client = hop
            if !trustedProxies.containsAddress(hop) { return hop }
        }
        return client
    }
}
